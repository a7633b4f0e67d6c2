"""The CLI's progress line and key-part syntax."""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest

from ssshelf.cli.console import Console
from ssshelf.cli.progress import Progress
from ssshelf.cli.render import parse_part
from ssshelf.errors import InvalidArgument
from ssshelf.keys import Desc


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


def test_progress_renders_a_bar_when_the_total_is_known() -> None:
    progress = Progress("import", io.StringIO(), total=200, unit="items", enabled=True)
    progress.done = 50
    line = progress.render(now=progress._started + 2)
    assert line == "import: [#######-----------------------] 50/200 items (25/s)"


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
