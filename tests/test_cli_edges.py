"""The command line at its edges, as real processes on real files.

Read-only commands never create or alter a store; Ctrl-C during an export
leaves no partial file; every mistake is one line; a terminal gets a
progress line.  Each test runs ``ssshelf`` (the installed console script)
in its own directory beside a manager module of its own.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

SSSHELF = str(Path(sys.executable).with_name("ssshelf"))

MANAGER_MODULE = textwrap.dedent(
    '''
    import asyncio
    import dataclasses
    import os

    from ssshelf import CManager, Collection, IManager
    from ssshelf.storages.wrapper import StorageWrapper
    from ssshelf.testing import LatencyStorage


    class ByN(Collection):
        def key(self, item):
            return (item["n"],)


    class ByName(Collection):
        unique = True

        def key(self, item):
            return item.get("name")


    class Things(CManager):
        item_manager = IManager()
        namespace = "things"
        by_n = ByN()
        by_name = ByName()


    class OneByOne(LatencyStorage):
        """Latency, and no put_many: a bulk load writes its items one by one."""

        @property
        def capabilities(self):
            return dataclasses.replace(super().capabilities, put_many=None)


    class Slow(Things):
        """Each request waits $SLOW seconds, and only ten are in flight at once."""

        max_concurrency = 10

        def __init__(self, storage, **kwargs):
            super().__init__(OneByOne(storage, float(os.environ["SLOW"])), **kwargs)


    class Fussy(Things):
        def __init__(self, storage):
            raise TypeError("Fussy needs a colour")


    class NeverCommits(StorageWrapper):
        """Writes of item objects never get an answer: every write hangs at its commit
        (one by one: no put_many)."""

        @property
        def capabilities(self):
            return dataclasses.replace(super().capabilities, put_many=None)

        async def _call(self, kind, key, request):
            if kind == "put" and key.startswith("things/items/"):
                await asyncio.Event().wait()
            return await request()


    class Stuck(Things):
        def __init__(self, storage, **kwargs):
            super().__init__(NeverCommits(storage), **kwargs)
    '''
)


class Shell:
    """Runs ``ssshelf`` in a directory holding ``things.py`` and store ``things.db``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.store = directory / "things.db"
        self.url = f"sqlite:///{self.store}"
        (directory / "things.py").write_text(MANAGER_MODULE)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSSHELF_")}
        return {**env, "PYTHONWARNINGS": "default", **extra}

    def __call__(self, *argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [SSSHELF, *argv],
            cwd=self.directory,
            env=self.env(),
            input=stdin,
            capture_output=True,
            timeout=60,
            check=False,
        )
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
        )

    def seed(self, count: int) -> None:
        source = self.directory / "seed.jsonl"
        lines = (json.dumps({"pk": f"t{n:05d}", "n": n, "name": f"name{n}"}) for n in range(count))
        source.write_text("\n".join(lines) + "\n")
        done = self("import", str(source), "--url", self.url, "--manager", "things:Things")
        assert done.returncode == 0, done.stderr


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    return Shell(tmp_path)


def one_error_line(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single ``ssshelf: error:`` line a failed command printed."""
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stderr.startswith("ssshelf: error: "), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip()


READERS = [
    ["ls"],
    ["cat", "things/items/t1"],
    ["get", "t1", "--manager", "things:Things"],
    ["list", "by_n", "--manager", "things:Things"],
    ["check", "--manager", "things:Things"],
    ["stats", "--manager", "things:Things"],
    ["export", "--manager", "things:Things"],
    # Writers that fix a store do not create one either.
    ["repair", "--manager", "things:Things"],
    ["reindex", "by_n", "--manager", "things:Things"],
]


@pytest.mark.parametrize("argv", READERS, ids=lambda argv: argv[0])
def test_a_reader_on_a_missing_file_is_one_line_and_creates_nothing(
    shell: Shell, argv: list[str]
) -> None:
    missing = shell.directory / "typo.db"
    line = one_error_line(shell(*argv, "--url", f"sqlite:///{missing}"))
    assert line == f"ssshelf: error: no SQLite store at {str(missing)!r} (nothing was created)"
    assert sorted(p.name for p in shell.directory.iterdir()) == ["things.py"]


@pytest.mark.parametrize("argv", READERS, ids=lambda argv: argv[0])
def test_a_foreign_sqlite_file_is_refused_and_left_unchanged(shell: Shell, argv: list[str]) -> None:
    foreign = shell.directory / "app.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users (name) VALUES ('ada')")
    db.close()
    before = foreign.read_bytes()
    line = one_error_line(shell(*argv, "--url", f"sqlite:///{foreign}"))
    assert "is not an ssshelf store (it holds other tables: users); nothing was changed" in line
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in shell.directory.iterdir()) == ["app.db", "things.py"]


def test_an_empty_file_is_refused_by_readers_and_import_refuses_a_foreign_file(
    shell: Shell,
) -> None:
    empty = shell.directory / "empty.db"
    empty.write_bytes(b"")
    line = one_error_line(
        shell("check", "--url", f"sqlite:///{empty}", "--manager", "things:Things")
    )
    assert "is not an ssshelf store (it is empty)" in line
    assert empty.read_bytes() == b""

    foreign = shell.directory / "app.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    db.close()
    source = shell.directory / "one.jsonl"
    source.write_text('{"pk": "a", "n": 1}\n')
    done = shell(
        "import", str(source), "--url", f"sqlite:///{foreign}", "--manager", "things:Things"
    )
    assert "nothing was changed" in one_error_line(done)
    with sqlite3.connect(foreign) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
    db.close()
    assert tables == ["users"]


def test_readers_leave_a_store_byte_for_byte_as_it_was(shell: Shell) -> None:
    shell.seed(20)
    before = shell.store.read_bytes()
    for argv in READERS[:7]:
        done = shell(*argv, "--url", shell.url)
        assert done.returncode in (0, 1), done.stderr  # get/cat of t1: nothing there
    assert shell.store.read_bytes() == before
    assert sorted(p.name for p in shell.directory.iterdir()) == [
        "seed.jsonl",
        "things.db",
        "things.py",
    ]


def test_only_import_creates_the_store(shell: Shell) -> None:
    assert shell("check", "--url", shell.url, "--manager", "things:Things").returncode == 2
    assert not shell.store.exists()
    shell.seed(3)
    done = shell("check", "--url", shell.url, "--manager", "things:Things")
    assert done.returncode == 0 and done.stdout.endswith("OK\n")


def test_two_slashes_in_an_sqlite_url_explain_the_three_slash_form(shell: Shell) -> None:
    line = one_error_line(shell("ls", "--url", "sqlite://relative.db"))
    assert line == (
        "ssshelf: error: storage URL 'sqlite://relative.db' needs three slashes before the "
        "path: write sqlite:///relative.db (relative to the current directory) or "
        "sqlite:////absolute/path.db"
    )
    assert not (shell.directory / "relative.db").exists()


def test_ctrl_c_during_an_export_leaves_no_partial_file(shell: Shell) -> None:
    shell.seed(400)
    target = shell.directory / "backup.jsonl"
    target.write_text("the previous backup\n")
    # 400 items at 10 in flight and 50 ms a request: the export takes about 2 s.
    export = subprocess.Popen(
        [SSSHELF, "export", "-o", str(target), "--url", shell.url, "--manager", "things:Slow",
         "--page-size", "400"],
        cwd=shell.directory,
        env=shell.env(SLOW="0.05"),
        stderr=subprocess.PIPE,
        text=True,
        # A shell that started this run in the background made SIGINT ignored,
        # and children inherit that: give the CLI the terminal's Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    partial = wait_for(lambda: [p for p in shell.directory.iterdir() if p.suffix == ".partial"])
    assert partial[0].name.startswith(".backup.jsonl.")
    export.send_signal(signal.SIGINT)
    _, err = export.communicate(timeout=60)
    assert export.returncode == 130
    assert err == "ssshelf: error: interrupted\n", "no RuntimeWarning, no traceback"
    assert target.read_text() == "the previous backup\n"
    assert not [p for p in shell.directory.iterdir() if p.suffix == ".partial"]


def things_jsonl(directory: Path, count: int) -> Path:
    source = directory / "new.jsonl"
    lines = (json.dumps({"pk": f"t{n:05d}", "n": n, "name": f"name{n}"}) for n in range(count))
    source.write_text("\n".join(lines) + "\n")
    return source


def stored(store: Path, prefix: str) -> int:
    """How many objects under ``prefix`` the SQLite store holds now."""
    if not store.exists():
        return 0
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        try:
            row = db.execute(
                "SELECT count(*) FROM objects WHERE key >= ? AND key < ?",
                (prefix.encode(), prefix.encode() + b"\xff"),
            ).fetchone()
        except sqlite3.OperationalError:  # the table is not there yet
            return 0
    return int(row[0])


def interrupted_import(shell: Shell, source: Path, manager: str, **env: str) -> Any:
    return subprocess.Popen(
        [SSSHELF, "import", str(source), "--url", shell.url, "--manager", manager],
        cwd=shell.directory,
        env=shell.env(**env),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_one_ctrl_c_stops_an_import_after_the_writes_in_flight(shell: Shell) -> None:
    source = things_jsonl(shell.directory, 400)
    # 50 ms a request and two items in flight: about 7 items a second.
    run = interrupted_import(shell, source, "things:Slow", SLOW="0.05")
    wait_for(lambda: stored(shell.store, "things/items/") >= 3)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    first, second = err.splitlines()
    assert first.startswith("import: stopping once the writes in flight are done")
    done = int(second.split(" is stored up to line ", 1)[1].split(";", 1)[0])
    assert second == (
        f"import stopped (Ctrl-C): {source} is stored up to line {done}; the writes in flight "
        "were finished, so nothing is left half-written. Run the same import again to go on "
        "(--skip-existing skips what is stored)."
    )
    assert stored(shell.store, "things/items/") == done >= 3, "exactly the lines it names"
    check = shell("check", "--grace", "0", "--url", shell.url, "--manager", "things:Things")
    assert check.returncode == 0 and check.stdout.endswith("OK\n"), check.stdout
    again = shell(
        "import", str(source), "--skip-existing", "--url", shell.url, "--manager", "things:Things"
    )
    assert (again.returncode, again.stderr) == (
        0,
        f"imported {400 - done} items ({done} skipped)\n",
    )


def test_a_second_ctrl_c_stops_at_once_and_says_what_to_run(shell: Shell) -> None:
    source = things_jsonl(shell.directory, 10)
    run = interrupted_import(shell, source, "things:Stuck")
    wait_for(lambda: stored(shell.store, "things/u/") >= 1)  # claims made, commits hang
    run.send_signal(signal.SIGINT)
    assert run.stderr is not None
    assert run.stderr.readline().startswith("import: stopping once the writes in flight are done")
    run.send_signal(signal.SIGINT)  # they never finish: stop now
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    stop, last = err.splitlines()
    options = f"--url {shell.url} --manager things:Stuck"
    assert stop == (
        f"import stopped: lines 1 to 10 of {source} were being written when the writes in "
        "flight were cut off mid-way: some of those lines may be stored, some not. The writes "
        "cut off can leave index entries and unique-value claims behind, which reads "
        f"ignore: `ssshelf check {options}` reports them as problems once they are older than "
        f"the grace period (30 s, in flight until then), until `ssshelf repair {options}` "
        "removes them. Run the same import again to go on (--skip-existing skips what is "
        "stored); it waits up to 30 s for those claims to expire. A single Ctrl-C stops an "
        "import after the writes in flight instead, leaving nothing behind."
    )
    assert last == "ssshelf: error: interrupted"
    check = shell("check", "--grace", "0", "--url", shell.url, "--manager", "things:Things")
    assert check.returncode == 1 and "PROBLEMS FOUND - run: ssshelf repair" in check.stdout
    repair = shell("repair", "--grace", "0", "--url", shell.url, "--manager", "things:Things")
    assert repair.returncode == 0, repair.stderr
    check = shell("check", "--grace", "0", "--url", shell.url, "--manager", "things:Things")
    assert check.returncode == 0, check.stdout


def test_an_import_on_a_terminal_shows_its_lines_out_of_the_total(shell: Shell) -> None:
    source = things_jsonl(shell.directory, 1200)
    leader, follower = pty.openpty()
    try:
        run = subprocess.Popen(
            [SSSHELF, "import", str(source), "--url", shell.url, "--manager", "things:Things"],
            cwd=shell.directory,
            env=shell.env(),
            stderr=follower,
        )
        os.close(follower)
        run.wait(timeout=60)
        drawn = read_all(leader)
    finally:
        os.close(leader)
    assert run.returncode == 0
    assert b"\rimport: [" in drawn and b"/1,200 lines (" in drawn, drawn
    assert drawn.endswith(b"\r\x1b[Kimported 1200 items (0 skipped)\r\n"), drawn


def wait_for(found: object, timeout: float = 30.0) -> list[Path]:
    """Poll ``found()`` until it returns something (the process got that far)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = found()  # type: ignore[operator]
        if result:
            return result  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError("the command never got that far")


def test_a_finished_export_replaces_the_file_and_keeps_its_mode(shell: Shell) -> None:
    shell.seed(3)
    target = shell.directory / "backup.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    done = shell("export", "-o", str(target), "--url", shell.url, "--manager", "things:Things")
    assert done.returncode == 0 and done.stderr == f"exported 3 items to {target}\n"
    assert [json.loads(line)["pk"] for line in target.read_text().splitlines()] == [
        "t00000",
        "t00001",
        "t00002",
    ]
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in shell.directory.iterdir()) == [
        "backup.jsonl",
        "seed.jsonl",
        "things.db",
        "things.py",
    ]


def test_export_into_a_missing_directory_names_the_file_given(shell: Shell) -> None:
    shell.seed(1)
    (shell.directory / "adir").mkdir()
    line = one_error_line(
        shell("export", "-o", "adir", "--url", shell.url, "--manager", "things:Things")
    )
    assert line == "ssshelf: error: Is a directory: adir"
    assert not [p for p in shell.directory.iterdir() if p.suffix == ".partial"]
    target = shell.directory / "no" / "such" / "backup.jsonl"
    line = one_error_line(
        shell("export", "-o", str(target), "--url", shell.url, "--manager", "things:Things")
    )
    assert line == f"ssshelf: error: No such file or directory: {target}"


def test_a_terminal_gets_a_progress_line_that_is_cleared_at_the_end(shell: Shell) -> None:
    shell.seed(50)
    leader, follower = pty.openpty()
    try:
        check = subprocess.Popen(
            [SSSHELF, "check", "--url", shell.url, "--manager", "things:Things"],
            cwd=shell.directory,
            env=shell.env(),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
        )
        os.close(follower)
        out, _ = check.communicate(timeout=60)
        drawn = read_all(leader)
    finally:
        os.close(leader)
    assert check.returncode == 0 and out.endswith("OK\n")
    assert drawn.startswith(b"\rcheck: ") and b" objects (" in drawn
    assert drawn.endswith(b"\r\x1b[K"), "the line is erased before the report"
    assert b"\r" not in out.encode(), "stdout (a pipe) gets no progress"


def read_all(fd: int) -> bytes:
    chunks = []
    while select.select([fd], [], [], 5)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other end closed (Linux answers EIO)
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_pipe_gets_no_progress(shell: Shell) -> None:
    shell.seed(50)
    done = shell("check", "--url", shell.url, "--manager", "things:Things")
    assert done.returncode == 0 and done.stderr == ""


# -- what cat and ls say ------------------------------------------------------------


def test_cat_says_what_an_index_entry_and_a_reservation_are(shell: Shell) -> None:
    shell.seed(2)
    keys = shell("ls", "things/c/by_n/", "--url", shell.url).stdout.split()
    entry = json.loads(shell("cat", keys[1], "--url", shell.url).stdout)
    write = keys[1].rsplit("!", 1)[1]
    assert entry == {
        "index_entry": {
            "namespace": "things",
            "collection": "by_n",
            "key": [1],
            "pk": "t00001",
            "write": write,
        }
    }
    assert shell("cat", keys[1], "--raw", "--url", shell.url).stdout == ""
    reservation = shell("ls", "things/u/by_name/", "--url", shell.url).stdout.split()[0]
    shown = json.loads(shell("cat", reservation, "--url", shell.url).stdout)
    assert shown["reservation"] == {
        "namespace": "things",
        "collection": "by_name",
        "value": ["name0"],
    }
    assert shown["holder"]["pk"] == "t00000"


def test_ls_with_no_match_says_so_and_names_the_prefixes_there_are(shell: Shell) -> None:
    shell.seed(2)
    done = shell("ls", "bookmarks/", "--url", shell.url)
    assert (done.returncode, done.stdout) == (0, "")
    assert (
        done.stderr == "no keys starting with 'bookmarks/'; the store's keys start with: things/\n"
    )
    done = shell("ls", "things/items/", "--after", "things/items/t00001", "--url", shell.url)
    assert done.stderr == (
        "no keys starting with 'things/items/' after 'things/items/t00001'; "
        "the store's keys start with: things/\n"
    )
    done = shell("ls", "things/items/", "--json", "--url", shell.url)
    assert json.loads(done.stdout)["keys"] == ["things/items/t00000", "things/items/t00001"]


def test_ls_on_an_empty_store_says_it_is_empty(shell: Shell) -> None:
    source = shell.directory / "none.jsonl"
    source.write_text("")
    assert (
        shell("import", str(source), "--url", shell.url, "--manager", "things:Things").returncode
        == 0
    )
    done = shell("ls", "--url", shell.url)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "no keys: the store is empty\n")


# -- every mistake is one line --------------------------------------------------------


def test_a_manager_module_that_fails_to_import_is_one_line(shell: Shell) -> None:
    shell.seed(1)
    (shell.directory / "broken.py").write_text("from ssshelf import CManager\nclass X(CManager:\n")
    line = one_error_line(shell("stats", "--url", shell.url, "--manager", "broken:X"))
    assert line.startswith("ssshelf: error: module 'broken' for --manager failed while importing: ")
    assert "SyntaxError" in line and "broken.py, line 2" in line
    (shell.directory / "raising.py").write_text("raise RuntimeError('no config')\n")
    line = one_error_line(shell("stats", "--url", shell.url, "--manager", "raising:X"))
    assert line.endswith("failed while importing: RuntimeError: no config")


def test_a_manager_that_cannot_be_made_is_one_line(shell: Shell) -> None:
    shell.seed(1)
    line = one_error_line(shell("stats", "--url", shell.url, "--manager", "things:Fussy"))
    assert line == (
        "ssshelf: error: cannot create things:Fussy over the store: TypeError: Fussy needs a colour"
    )


def test_an_import_file_that_is_not_utf8_names_its_line(shell: Shell) -> None:
    source = shell.directory / "latin1.jsonl"
    source.write_bytes(b'{"pk": "a", "n": 1}\n{"pk": "caf\xe9", "n": 2}\n')
    done = shell("import", str(source), "--url", shell.url, "--manager", "things:Things")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"ssshelf: error: {source}, line 2: not UTF-8 text (invalid continuation byte at byte 12)"
    )
    done = shell("import", "-", "--url", shell.url, "--manager", "things:Things",
                 stdin=b'\xef\xbb\xbf{"pk": "b", "n": 3}\n')  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "imported 1 items (0 skipped)\n"), "a BOM is fine"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["repair", "--grace", "-1"], "argument --grace: must be 0 or more seconds, got '-1'"),
        (["repair", "--grace", "soon"], "argument --grace: not a number of seconds: 'soon'"),
        (
            ["list", "by_n", "--after", "garbage"],
            "--after 'garbage' is not a cursor of collection 'by_n'; use the one the previous "
            "page printed (or leave --after out to start at the beginning)",
        ),
    ],
)
def test_more_mistakes_are_one_line(shell: Shell, argv: list[str], message: str) -> None:
    shell.seed(1)
    line = one_error_line(shell(*argv, "--url", shell.url, "--manager", "things:Things"))
    assert message in line


def test_a_cursor_of_another_collection_is_refused(shell: Shell) -> None:
    shell.seed(3)
    base = ["--url", shell.url, "--manager", "things:Things"]
    hint = shell("list", "by_n", "--limit", "1", *base).stderr
    cursor = hint.rsplit("--after ", 1)[1].strip().strip("'")
    assert shell("list", "by_n", "--after", cursor, *base).returncode == 0
    line = one_error_line(shell("list", "by_name", "--after", cursor[:3], *base))
    assert "is not a cursor of collection 'by_name'" in line
