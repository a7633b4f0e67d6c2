"""The CLI's progress line and key-part syntax."""

from __future__ import annotations

import asyncio
import io
import os
from datetime import date, datetime
from functools import partial
from pathlib import Path

import pytest

from ssshelf.cli.console import Console
from ssshelf.cli.importing import count_lines
from ssshelf.cli.progress import Progress, count_keys, duration, total_from
from ssshelf.cli.render import parse_part
from ssshelf.errors import InvalidArgument, StorageUnavailable
from ssshelf.keys import Desc
from ssshelf.storages.inmemory import InMemoryStorage


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_and_clears_the_line() -> None:
    terminal = FakeTerminal()
    progress = Progress("check", terminal)
    assert progress.enabled
    progress(1234)
    assert terminal.getvalue().startswith("\rcheck: 1,234 objects (")
    assert terminal.getvalue().endswith("/s)\x1b[K")
    progress(1300)
    assert "1,300" not in terminal.getvalue(), "at most ten frames a second"
    progress.close()
    assert terminal.getvalue().endswith("\r\x1b[K")
    drawn = terminal.getvalue()
    progress.close()
    assert terminal.getvalue() == drawn, "closing twice erases once"


def test_progress_stays_silent_off_a_terminal() -> None:
    for stream in (io.StringIO(), _closed()):
        progress = Progress("export", stream)
        assert not progress.enabled
        progress(10)
        progress.close()
        assert progress.done == 10
    assert _plain().getvalue() == ""


def _plain() -> io.StringIO:
    stream = io.StringIO()
    Progress("x", stream)(5)
    return stream


def _closed() -> io.StringIO:
    stream = io.StringIO()
    stream.close()
    return stream


def test_progress_renders_a_bar_and_the_time_left_when_the_total_is_known() -> None:
    progress = Progress("import", io.StringIO(), total=20_000, unit="lines", enabled=True)
    progress.done = 5_000
    line = progress.render(now=progress._started + 2)
    assert line == "import: [#######-----------------------] 5,000/20,000 lines (2,500/s, ETA 6s)"
    progress.done = 20_000
    assert progress.render(now=progress._started + 8).endswith("20,000/20,000 lines (2,500/s)")
    progress.done = 0
    assert progress.render(now=progress._started + 1).endswith("0/20,000 lines (0/s)")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.4, "0s"), (6.4, "6s"), (59.6, "1m00s"), (125, "2m05s"), (3725, "1h02m")],
)
def test_the_time_left_reads_like_a_clock(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


async def test_the_total_is_counted_beside_the_work_on_a_terminal() -> None:
    storage = InMemoryStorage()
    for n in range(1_234):
        await storage.put(f"things/items/{n:05d}", b"")
    await storage.put("things/other", b"")
    drawn = Progress("export", FakeTerminal(), unit="items")
    async with total_from(drawn, partial(count_keys, storage, "things/items/")):
        for _ in range(1_000):  # a few turns of the loop: two list requests
            if drawn.total is not None:
                break
            await asyncio.sleep(0)
    assert drawn.total == 1_234
    piped = Progress("export", io.StringIO(), unit="items")
    async with total_from(piped, partial(count_keys, storage, "things/items/")):
        await asyncio.sleep(0.01)
    assert piped.total is None, "nothing is counted for a line that is not drawn"


async def test_a_count_that_fails_leaves_the_line_without_a_total() -> None:
    async def unavailable() -> int:
        raise StorageUnavailable("down", operation="list")

    progress = Progress("export", FakeTerminal(), unit="items")
    async with total_from(progress, unavailable):
        await asyncio.sleep(0.01)
    assert progress.total is None


def test_an_import_file_is_counted_in_lines_and_rewound(tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    source.write_bytes(b'{"pk": "a"}\n\n{"pk": "b"}')  # a blank line, no final newline
    with source.open("rb") as stream:
        assert count_lines(stream) == 3
        assert stream.readline() == b'{"pk": "a"}\n', "rewound"
        assert count_lines(stream) == 2, "from where the import reads on"
        assert stream.readline() == b"\n"
    source.write_bytes(b"")
    with source.open("rb") as stream:
        assert count_lines(stream) == 0
    read, write = os.pipe()
    with os.fdopen(read, "rb") as pipe, os.fdopen(write, "wb"):
        assert count_lines(pipe) is None, "a pipe's length is not known"
    assert count_lines(io.BytesIO(b"x\n")) is None


def test_a_stream_without_isatty_is_no_terminal() -> None:
    class Bare:
        def write(self, text: str) -> int:
            raise AssertionError("never drawn")

        def flush(self) -> None:
            raise AssertionError("never drawn")

    progress = Progress("x", Bare(), enabled=None)  # type: ignore[arg-type]
    progress(1)
    assert not progress.enabled


def test_console_writes_bytes_as_text_without_a_binary_buffer() -> None:
    out = io.StringIO()
    Console(out=out).write_bytes(b"caf\xc3\xa9 \xff")
    assert out.getvalue() == "café \\xff"


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("plain", "plain"),
        ("http://x", "http://x"),
        ("int:-42", -42),
        ("bool:True", True),
        ("bool:false", False),
        ("date:2024-05-01", date(2024, 5, 1)),
        ("datetime:2024-05-01T12:30:00", datetime(2024, 5, 1, 12, 30)),
        ("str:int:42", "int:42"),
        ("desc:int:5", Desc(5)),
        ("desc:news", Desc("news")),
    ],
)
def test_parse_part_reads_tagged_parts(text: str, part: object) -> None:
    assert parse_part(text) == part


@pytest.mark.parametrize("text", ["int:x", "bool:yes", "date:May", "datetime:soon"])
def test_parse_part_rejects_malformed_tagged_parts(text: str) -> None:
    with pytest.raises(InvalidArgument, match=f"key part {text!r}"):
        parse_part(text)
