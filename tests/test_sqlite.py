"""What SQLiteStorage promises beyond the storage contract.

Opening (several processes at once, readers that change nothing, files that
are not ours), failures that stay with their own request, bounded waits,
cancellation, any event loop and thread, interpreter exit, and the optional
``put_many``.  Everything runs against real SQLite files; another process
or connection holding the file's lock is a real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ssshelf.errors import (
    ConfigurationError,
    InvalidArgument,
    InvalidKeyError,
    PreconditionFailed,
    StorageError,
    StorageUnavailable,
)
from ssshelf.storages import open_storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import (
    MAX_PUT_BATCH,
    PutRequest,
    SQLiteStorage,
    SupportsPutMany,
)
from ssshelf.storages.sqlite import _requests as sqlite_requests
from ssshelf.storages.sqlite._requests import ROWS_A_STATEMENT, Batch, Request
from ssshelf.storages.sqlite._worker import GROUP_LIMIT
from ssshelf.testing import CountingStorage

ROOT = Path(__file__).resolve().parent.parent


# -- helpers -------------------------------------------------------------------------


def file_state(path: Path) -> tuple[str, list[str]]:
    """A file's digest and the names of the files beside it (-wal, -shm, …)."""
    siblings = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))
    return hashlib.sha256(path.read_bytes()).hexdigest(), siblings


def tables(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return sorted(row[0] for row in db.execute("SELECT name FROM sqlite_master"))


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holds the file's write lock meanwhile."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    finally:
        db.execute("ROLLBACK")
        db.close()


def lock_is_free(path: Path) -> bool:
    """Another connection can take the write lock at once."""
    db = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling) until ``condition()`` holds; fail after 20 s."""
    for _ in range(20_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


class Gate(Request):
    """A request that holds the worker thread inside its group commit until
    opened: requests sent meanwhile queue up and then run as one group."""

    __slots__ = ("entered", "opened")
    operation = "gate"

    def __init__(self) -> None:
        self.key = None
        self.entered = threading.Event()
        self.opened = threading.Event()

    def run(self, batch: Batch) -> None:
        self.entered.set()
        self.opened.wait(20)


@contextlib.asynccontextmanager
async def one_group(storage: SQLiteStorage) -> AsyncIterator[None]:
    """Requests sent inside the block run in one group commit, after it."""
    gate = Gate()
    answered = storage._worker.submit(gate)
    await eventually(gate.entered.is_set, "the worker reached the gate")
    try:
        yield
        await asyncio.sleep(0)  # let the tasks created in the block send their requests
    finally:
        gate.opened.set()
        await answered


def started(*coroutines: Any) -> list[asyncio.Task[Any]]:
    return [asyncio.ensure_future(c) for c in coroutines]


async def modified(path: Path, key: str) -> float:
    with contextlib.closing(sqlite3.connect(path)) as db:
        (value,) = db.execute(
            "SELECT modified FROM objects WHERE key = ?", (key.encode(),)
        ).fetchone()
        return float(value)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "store.db", timeout=10)
    try:
        yield storage
    finally:
        await storage.close()


# -- opening ---------------------------------------------------------------------------


def _open_rounds(directory: str, rounds: int, index: int, barrier: Any, out: Any) -> None:
    """One of several processes: each round, open a fresh file with the others at once."""

    async def round_trip(path: str) -> None:
        storage = SQLiteStorage(path)
        await storage.put(f"process-{index}", b"hello", if_absent=True)
        await storage.close()

    for number in range(rounds):
        barrier.wait(60)
        try:
            asyncio.run(round_trip(os.path.join(directory, f"round-{number}.db")))
            out.put((number, index, "ok"))
        except Exception as exc:
            out.put((number, index, f"{type(exc).__name__}: {exc}"))


def test_processes_opening_a_new_file_at_the_same_moment_all_succeed(tmp_path: Path) -> None:
    processes, rounds = 4, 20
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    out = context.Queue()
    workers = [
        context.Process(target=_open_rounds, args=(str(tmp_path), rounds, i, barrier, out))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        results = [out.get(timeout=120) for _ in range(processes * rounds)]
    finally:
        for worker in workers:
            worker.join(30)
            if worker.exitcode is None:
                worker.kill()
    assert [w.exitcode for w in workers] == [0] * processes
    failures = [r for r in results if r[2] != "ok"]
    assert failures == []
    for number in range(rounds):
        with contextlib.closing(sqlite3.connect(tmp_path / f"round-{number}.db")) as db:
            keys = sorted(row[0].decode() for row in db.execute("SELECT key FROM objects"))
            (mode,) = db.execute("PRAGMA journal_mode").fetchone()
        assert keys == [f"process-{i}" for i in range(processes)]
        assert mode == "wal"


def test_opening_a_file_locked_too_long_says_so(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    path.write_bytes(b"")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another connection is creating the database
    try:
        for create in (True, False):
            with pytest.raises(StorageUnavailable, match="stayed locked by another connection"):
                SQLiteStorage(path, timeout=0.2, create=create)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert tables(path) == []


async def test_opening_retries_until_the_lock_is_released(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    path.write_bytes(b"")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, holder.execute, ("ROLLBACK",))
    release.start()
    try:
        storage = await asyncio.to_thread(SQLiteStorage, path, timeout=20)
    finally:
        release.join()
        holder.close()
    await storage.put("k", b"v")
    await storage.close()
    assert tables(path) == ["objects"]


def test_a_reader_never_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    openers: list[Callable[[], object]] = [
        lambda: SQLiteStorage(path, create=False),
        lambda: open_storage(f"sqlite:///{path}", create=False),
    ]
    for opener in openers:
        with pytest.raises(ConfigurationError) as info:
            opener()
        assert str(info.value) == f"no SQLite store at {str(path)!r} (nothing was created)"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("create", [True, False])
def test_a_foreign_sqlite_file_is_refused_unchanged(tmp_path: Path, create: bool) -> None:
    path = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('keep me')")
        db.commit()
    before = file_state(path)
    with pytest.raises(
        ConfigurationError, match=r"not an ssshelf store \(it holds other tables: notes\)"
    ):
        SQLiteStorage(path, create=create)
    assert file_state(path) == before
    assert tables(path) == ["notes"]


@pytest.mark.parametrize("create", [True, False])
def test_a_table_named_like_ours_but_not_ours_is_refused(tmp_path: Path, create: bool) -> None:
    path = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE objects (id INTEGER PRIMARY KEY, name TEXT)")
        db.commit()
    before = file_state(path)
    with pytest.raises(ConfigurationError, match="its table 'objects' has columns id, name"):
        SQLiteStorage(path, create=create)
    assert file_state(path) == before


def test_a_file_of_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE objects (key BLOB, data BLOB, version TEXT, modified REAL)")
        db.execute("PRAGMA application_id = 42")
        db.commit()
    before = file_state(path)
    with pytest.raises(ConfigurationError, match="another application"):
        SQLiteStorage(path)
    assert file_state(path) == before


@pytest.mark.parametrize("create", [True, False])
def test_a_file_that_is_not_a_database_is_refused_unchanged(tmp_path: Path, create: bool) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not an SQLite database, it is a text file\n" * 100)
    before = file_state(path)
    with pytest.raises(ConfigurationError) as info:
        SQLiteStorage(path, create=create)
    message = str(info.value)
    assert "notes.txt" in message and "not an SQLite database" in message
    assert "\n" not in message
    assert file_state(path) == before


async def test_a_damaged_database_and_a_directory_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    storage = SQLiteStorage(path)
    await storage.put("k", b"v")
    await storage.close()
    raw = bytearray(path.read_bytes())
    raw[100:4096] = b"\xa5" * (4096 - 100)  # the schema page
    path.write_bytes(bytes(raw))
    with pytest.raises(ConfigurationError, match="damaged"):
        SQLiteStorage(path, create=False)
    with pytest.raises(ConfigurationError, match="unable to open database file"):
        SQLiteStorage(tmp_path)


async def test_an_empty_file_is_a_new_store_for_writers_only(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="it is empty"):
        SQLiteStorage(path, create=False)
    assert path.read_bytes() == b"" and file_state(path)[1] == ["empty.db"]
    storage = SQLiteStorage(path)
    await storage.put("k", b"v")
    await storage.close()
    reader = SQLiteStorage(path, create=False)
    assert (await reader.get("k")) is not None
    await reader.close()


async def test_a_reader_changes_nothing_not_even_the_journal_mode(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = SQLiteStorage(path)
    await writer.put("a/1", b"one")
    await writer.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=DELETE")  # a store written before WAL was the rule
    before = file_state(path)
    reader = SQLiteStorage(path, create=False)
    obj = await reader.get("a/1")
    page = await reader.list("a/")
    await reader.close()
    assert obj is not None and obj.data == b"one" and page.keys == ["a/1"]
    assert file_state(path) == before
    assert path.read_bytes()[18:20] == b"\x01\x01"  # still a rollback-journal file


async def test_a_reader_of_a_wal_store_leaves_its_bytes_alone(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = SQLiteStorage(path)
    await writer.put("a/1", b"one")
    await writer.close()
    before = file_state(path)
    reader = SQLiteStorage(path, create=False)
    assert (await reader.list()).keys == ["a/1"]
    await reader.close()
    assert file_state(path) == before


def test_a_path_that_is_not_a_file_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for path in (":memory:", "file:x.db?mode=ro"):
        with pytest.raises(ConfigurationError, match="give a file path"):
            SQLiteStorage(path)
    assert list(tmp_path.iterdir()) == []


def test_bad_timeout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="timeout"):
        SQLiteStorage(tmp_path / "x.db", timeout=0)
    assert list(tmp_path.iterdir()) == []


# -- a failure stays with its request ---------------------------------------------------


async def test_an_unreadable_row_fails_its_request_alone(
    store: SQLiteStorage, tmp_path: Path
) -> None:
    path = tmp_path / "store.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO objects VALUES (?, ?, ?, ?)", (b"bad", b"x", "v1", 1e20))
        db.commit()
    async with one_group(store):
        tasks = started(store.put("a", b"1"), store.get("bad"), store.put("b", b"2"))
    first, bad, second = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(first, str) and isinstance(second, str)
    assert isinstance(bad, StorageError) and not isinstance(bad, PreconditionFailed)
    assert (bad.operation, bad.key) == ("get", "bad")
    assert "OverflowError" in str(bad) and isinstance(bad.__cause__, OverflowError)
    assert await modified(path, "a") == await modified(path, "b")  # one group commit
    # the worker lives on, and holds no lock between requests
    assert (await store.get("a")) is not None
    with pytest.raises(StorageError, match="OverflowError"):
        await store.get("bad")
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO objects VALUES (?, ?, ?, ?)", (b"text", "not bytes", "v1", 1.0))
        db.commit()
    with pytest.raises(StorageError, match="TypeError: the row holds str data"):
        await store.get("text")
    with pytest.raises(StorageError, match="TypeError: the row of 'text' holds str data") as info:
        await store.get_many(["a", "text"])
    assert (info.value.operation, info.value.key) == ("get_many", None)
    assert lock_is_free(path)


async def test_a_refused_row_fails_its_put_alone(store: SQLiteStorage, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON objects WHEN NEW.key = x'626164'"
            " BEGIN SELECT RAISE(ABORT, 'no such key here'); END"
        )
    async with one_group(store):
        tasks = started(
            store.put("a", b"1"), store.put("bad", b"x"), store.put("b", b"2", if_absent=True)
        )
    first, bad, second = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(first, str) and isinstance(second, str)
    assert isinstance(bad, StorageError) and (bad.operation, bad.key) == ("put", "bad")
    assert "no such key here" in str(bad) and isinstance(bad.__cause__, sqlite3.IntegrityError)
    assert await store.get("bad") is None
    assert (await store.list()).keys == ["a", "b"]


async def test_a_failed_delete_many_undoes_its_own_deletes(
    store: SQLiteStorage, tmp_path: Path
) -> None:
    for key in ("k1", "k2", "k3", "other"):
        await store.put(key, b"x")
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as db:
        db.execute(
            "CREATE TRIGGER keep BEFORE DELETE ON objects WHEN OLD.key = x'6b33'"
            " BEGIN SELECT RAISE(ABORT, 'k3 stays'); END"
        )
    async with one_group(store):
        tasks = started(store.delete_many(["k1", "k2", "k3"]), store.delete("other"))
    failed, deleted = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(failed, StorageError) and failed.operation == "delete_many"
    assert "k3 stays" in str(failed)
    assert deleted is None
    assert (await store.list()).keys == ["k1", "k2", "k3"]


async def test_a_put_many_with_a_refused_row_applies_nothing(
    store: SQLiteStorage, tmp_path: Path
) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON objects WHEN NEW.key = x'626164'"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    async with one_group(store):
        tasks = started(
            store.put_many([PutRequest("x1", b""), PutRequest("bad", b""), PutRequest("x2", b"")]),
            store.put("y", b""),
        )
    failed, alone = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(failed, StorageError)
    assert (failed.operation, failed.key) == ("put_many", "bad")
    assert "none of the batch was applied" in str(failed)
    assert isinstance(alone, str)
    assert (await store.list()).keys == ["y"]


async def test_a_transaction_sqlite_rolls_back_fails_the_whole_group(
    store: SQLiteStorage, tmp_path: Path
) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as db:
        db.execute(
            "CREATE TRIGGER undo BEFORE INSERT ON objects WHEN NEW.key = x'626164'"
            " BEGIN SELECT RAISE(ROLLBACK, 'everything goes'); END"
        )
    async with one_group(store):
        tasks = started(store.put("a", b"1"), store.put("bad", b"x"), store.get("a"))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result, operation in zip(results, ("put", "put", "get"), strict=True):
        assert isinstance(result, StorageError), result
        assert result.operation == operation
        assert "rolled back the transaction" in str(result) and "not applied" in str(result)
    assert (await store.list()).keys == []
    for alone in (store.put("bad", b"x"), store.put_many([PutRequest("bad", b"x")])):
        async with one_group(store):
            tasks = started(alone, store.get("a"))
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            assert isinstance(result, StorageError) and "rolled back" in str(result)
    assert isinstance(await store.put("a", b"again"), str)


async def test_if_the_worker_dies_every_request_fails_at_once(
    store: SQLiteStorage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Fatal(Request):
        __slots__ = ()
        operation = "fatal"

        def __init__(self) -> None:
            self.key = "boom"

        def run(self, batch: Batch) -> None:
            raise SystemExit("a bug")

    await store.put("kept", b"1")
    async with one_group(store):
        fatal = asyncio.ensure_future(store._worker.submit(Fatal()))
        same_group = started(store.put("lost", b"x"))
    results = await asyncio.gather(fatal, *same_group, return_exceptions=True)
    for result in results:
        assert isinstance(result, StorageError) and "stopped on SystemExit('a bug')" in str(result)
    assert "not applied" in str(results[1])
    for request in (store.get("kept"), store.put("later", b""), store.list()):
        with pytest.raises(StorageError, match="unusable: its worker thread stopped"):
            await request
    assert lock_is_free(tmp_path / "store.db")
    assert any("SQLite worker" in r.getMessage() for r in caplog.records)
    await store.close()
    reopened = SQLiteStorage(tmp_path / "store.db")
    assert (await reopened.list()).keys == ["kept"]
    await reopened.close()


# -- bounded waits ----------------------------------------------------------------------


async def test_a_write_waits_for_a_locked_file_no_longer_than_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    storage = SQLiteStorage(path, timeout=0.3)
    await storage.put("a", b"1")
    with write_lock(path):
        with pytest.raises(StorageUnavailable) as info:
            await storage.put("b", b"2")
        message = str(info.value)
        assert "stayed locked by another connection for over 0.3 s" in message
        assert "not applied" in message and info.value.key == "b"
        obj = await storage.get("a")  # WAL: readers do not wait for the writer
        assert obj is not None
    assert await storage.get("b") is None
    assert isinstance(await storage.put("b", b"2"), str)
    await storage.close()


async def test_a_commit_blocked_by_a_reader_of_a_rollback_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = SQLiteStorage(path)
    await writer.put("a", b"1")
    await writer.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    storage = SQLiteStorage(path, timeout=0.3, create=False)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM objects").fetchone()  # holds a shared lock
    try:
        with pytest.raises(StorageUnavailable, match=r"could not commit.*not applied"):
            await storage.put("b", b"2")
    finally:
        reader.execute("ROLLBACK")
        reader.close()
    assert await storage.get("b") is None
    await storage.put("b", b"2")
    await storage.close()


# -- cancellation ------------------------------------------------------------------------


async def test_a_request_whose_caller_gave_up_in_the_queue_never_runs(
    store: SQLiteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    async with one_group(store):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(store.put("timed-out", b"x"), 0.01)
        cancelled = asyncio.ensure_future(store.put("cancelled", b"x"))
        await asyncio.sleep(0)
        cancelled.cancel()
        kept = asyncio.ensure_future(store.put("kept", b"x"))
    assert isinstance(await kept, str)
    assert cancelled.cancelled()
    assert (await store.list()).keys == ["kept"]
    gc.collect()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_request_cancelled_while_waiting_for_the_lock_never_runs(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    storage = SQLiteStorage(path, timeout=10)
    with write_lock(path):
        waiting = asyncio.ensure_future(storage.put("late", b"x"))
        await asyncio.sleep(0)  # it is sent
        await eventually(lambda: storage._worker.queued == 0, "the worker took the put")
        await asyncio.sleep(0.05)  # it is waiting for the lock by now (or soon will be)
        waiting.cancel()
    await storage.put("after", b"x")
    assert waiting.cancelled()
    assert (await storage.list()).keys == ["after"]
    await storage.close()


# -- any event loop, any thread, interpreter exit ----------------------------------------------


def test_one_storage_serves_successive_event_loops(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "store.db")
    version = asyncio.run(storage.put("k", b"v"))
    obj = asyncio.run(storage.get("k"))
    assert obj is not None and obj.version == version
    asyncio.run(storage.close())
    asyncio.run(storage.close())


def test_threads_with_their_own_loops_share_one_storage(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "store.db")
    wins: list[str] = []
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        async def run() -> None:
            results = await asyncio.gather(
                *(storage.put(f"k{i}", str(number).encode(), if_absent=True) for i in range(50)),
                return_exceptions=True,
            )
            for i, result in enumerate(results):
                if isinstance(result, str):
                    wins.append(f"k{i}")
                elif not isinstance(result, PreconditionFailed):
                    errors.append(result)

        asyncio.run(run())

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(wins) == sorted(f"k{i}" for i in range(50))  # each key won exactly once
    asyncio.run(storage.close())


async def test_a_loop_closed_before_its_answer_arrived_is_skipped_quietly(
    store: SQLiteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    async with one_group(store):
        asyncio.run_coroutine_threadsafe(store.put("orphan", b"x"), loop)
        await eventually(lambda: store._worker.queued == 1, "the orphan was sent")
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        pending = asyncio.all_tasks(loop)
        loop.close()
    assert (await store.get("orphan")) is not None  # it ran: its caller never gave up
    assert store._worker.alive
    del pending
    ours = [r for r in caplog.records if r.name.startswith("ssshelf")]
    assert ours == []


async def test_a_storage_dropped_without_close_releases_its_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    storage = SQLiteStorage(path)
    await storage.put("k", b"v")
    worker = storage._worker
    del storage
    gc.collect()
    assert await asyncio.to_thread(worker.join, 20)
    assert file_state(path)[1] == ["store.db"]  # the last connection checkpointed the WAL


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


def test_an_unclosed_storage_does_not_hold_up_exit(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    done = _run_python(
        f"""
        import asyncio, sqlite3
        from ssshelf.storages.sqlite import SQLiteStorage

        storage = SQLiteStorage({str(path)!r}, timeout=60)
        asyncio.run(storage.put("answered", b"kept"))
        blocker = sqlite3.connect({str(path)!r}, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN IMMEDIATE")

        async def leave_one_waiting():
            asyncio.ensure_future(storage.put("never", b"x"))
            await asyncio.sleep(0.05)

        asyncio.run(leave_one_waiting())
        print("leaving")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "leaving" and done.stderr == ""
    with contextlib.closing(sqlite3.connect(path)) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM objects")]
    assert keys == [b"answered"]


# -- put_many: an optional capability ------------------------------------------------


async def test_put_many_answers_each_write_on_its_own_condition(store: SQLiteStorage) -> None:
    assert isinstance(store, SupportsPutMany)
    assert not isinstance(InMemoryStorage(), SupportsPutMany)
    old = await store.put("old", b"0")
    taken = await store.put("taken", b"0")
    answers = await store.put_many(
        [
            PutRequest("new", b"1"),
            PutRequest("taken", b"1", if_absent=True),
            PutRequest("old", b"1", if_version=old),
            PutRequest("fresh", b"1", if_absent=True),
            PutRequest("missing", b"1", if_version="nope"),
        ]
    )
    assert [type(a) for a in answers] == [str, PreconditionFailed, str, str, PreconditionFailed]
    refused = answers[1]
    assert isinstance(refused, PreconditionFailed) and refused.key == "taken"
    for key, answer in zip(
        ["new", "old", "fresh"], [answers[0], answers[2], answers[3]], strict=True
    ):
        obj = await store.get(key)
        assert obj is not None and obj.data == b"1" and obj.version == answer
    still = await store.get("taken")
    assert still is not None and still.version == taken and still.data == b"0"
    assert await store.get("missing") is None


async def test_put_many_of_all_new_keys_in_one_go(store: SQLiteStorage, tmp_path: Path) -> None:
    puts = [PutRequest(f"k{i:04d}", str(i).encode(), if_absent=True) for i in range(MAX_PUT_BATCH)]
    versions = await store.put_many(puts)
    assert len(set(versions)) == MAX_PUT_BATCH and all(isinstance(v, str) for v in versions)
    await store.close()
    reopened = SQLiteStorage(tmp_path / "store.db")
    page = await reopened.list("k", limit=1000)
    assert page.keys == [p.key for p in puts]
    await reopened.close()


async def test_put_many_past_one_statement_keeps_each_condition(store: SQLiteStorage) -> None:
    """Rows go in a few hundred a statement; a refused one deep in a later
    statement is found and refused alone, and plain puts overwrite."""
    count = 2 * ROWS_A_STATEMENT + 50
    taken_at = ROWS_A_STATEMENT + 37
    before = await store.put(f"n{taken_at:04d}", b"old")
    overwritten = await store.put("p0003", b"old")
    news = [PutRequest(f"n{i:04d}", b"new", if_absent=True) for i in range(count)]
    answers = await store.put_many(news)
    assert [i for i, a in enumerate(answers) if isinstance(a, PreconditionFailed)] == [taken_at]
    kept = await store.get(f"n{taken_at:04d}")
    assert kept is not None and kept.data == b"old" and kept.version == before
    plains = [PutRequest(f"p{i:04d}", str(i).encode()) for i in range(count)]
    versions = await store.put_many(plains)
    assert all(isinstance(v, str) for v in versions)
    page = await store.list("p", limit=1000)
    assert len(page.keys) == count
    replaced = await store.get("p0003")
    assert replaced is not None and replaced.data == b"3" and replaced.version != overwritten
    assert (await store.get("n0001")) is not None


async def test_put_many_requests_of_one_group_go_in_together(store: SQLiteStorage) -> None:
    """Writes of distinct keys queued together (put_many requests and puts)
    are applied in one try: a few multi-row INSERTs, whatever the requests."""
    statements: list[str] = []
    store._worker._db.set_trace_callback(statements.append)  # called on the worker's thread
    entries = [PutRequest(f"e{i:04d}", b"") for i in range(700)]
    claims = [PutRequest(f"r{i:04d}", b"c", if_absent=True) for i in range(300)]
    async with one_group(store):
        tasks = started(
            store.put_many(entries[:500]),
            store.put_many(entries[500:] + claims),
            store.put("alone", b"a", if_absent=True),
        )
    first, second, alone = await asyncio.gather(*tasks)
    assert len(first) == 500 and len(second) == 500 and isinstance(alone, str)
    assert all(isinstance(v, str) for v in [*first, *second])
    inserts = [s for s in statements if s.startswith("INSERT")]
    rows = ROWS_A_STATEMENT
    assert len(inserts) == -(-700 // rows) + -(-301 // rows), inserts  # one try, no retry
    assert not any(s.startswith("ROLLBACK") for s in statements)
    assert [len((await store.list(p, limit=1000)).keys) for p in "aer"] == [1, 700, 300]


async def test_a_refusal_in_a_group_of_put_many_answers_each_on_its_own(
    store: SQLiteStorage,
) -> None:
    before = await store.put("r0250", b"taken")
    claims = [PutRequest(f"r{i:04d}", b"c", if_absent=True) for i in range(400)]
    plains = [PutRequest(f"p{i:04d}", b"p") for i in range(400)]
    async with one_group(store):
        tasks = started(
            store.put_many(plains),
            store.put_many(claims),
            store.put("r0250", b"again", if_absent=True),
            store.put("q", b"q"),
        )
    plain, claimed, again, alone = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(plain, list) and all(isinstance(v, str) for v in plain)
    assert isinstance(claimed, list)
    assert [i for i, a in enumerate(claimed) if not isinstance(a, str)] == [250]
    assert isinstance(claimed[250], PreconditionFailed)
    assert isinstance(again, PreconditionFailed) and isinstance(alone, str)
    kept = await store.get("r0250")
    assert kept is not None and (kept.data, kept.version) == (b"taken", before)
    assert [len((await store.list(p, limit=1000)).keys) for p in "pqr"] == [400, 1, 400]


async def test_put_many_requests_sharing_a_key_keep_their_order(store: SQLiteStorage) -> None:
    async with one_group(store):
        tasks = started(
            store.put_many([PutRequest("a", b"1"), PutRequest("k", b"first")]),
            store.put_many([PutRequest("k", b"second"), PutRequest("b", b"2")]),
            store.put_many([PutRequest("k", b"third", if_absent=True)]),
        )
    first, second, third = await asyncio.gather(*tasks)
    assert isinstance(third[0], PreconditionFailed)
    stored = await store.get("k")
    assert stored is not None and (stored.data, stored.version) == (b"second", second[0])
    assert first[1] != second[0]


async def test_put_many_refuses_bad_input_before_writing(store: SQLiteStorage) -> None:
    assert await store.put_many([]) == []
    with pytest.raises(InvalidArgument, match="distinct keys"):
        await store.put_many([PutRequest("a", b"1"), PutRequest("a", b"2")])
    with pytest.raises(InvalidArgument, match=f"at most {MAX_PUT_BATCH}"):
        await store.put_many([PutRequest(f"k{i}", b"") for i in range(MAX_PUT_BATCH + 1)])
    with pytest.raises(InvalidKeyError):
        await store.put_many([PutRequest("a", b"1"), PutRequest("", b"2")])
    with pytest.raises(InvalidArgument, match="if_absent or if_version"):
        await store.put_many([PutRequest("a", b"1", if_absent=True, if_version="v")])
    with pytest.raises(InvalidArgument, match="data must be bytes"):
        await store.put_many([PutRequest("a", "text")])  # type: ignore[arg-type]
    assert (await store.list()).keys == []


# -- group commit ---------------------------------------------------------------------------


async def test_writes_of_one_key_in_one_group_keep_their_order(
    store: SQLiteStorage, tmp_path: Path
) -> None:
    async with one_group(store):
        tasks = started(
            store.put("k", b"1"),
            store.put("other", b""),
            store.put("k", b"2"),
            store.put("k", b"3", if_absent=True),
            store.delete("other"),
            store.put("other", b"again", if_absent=True),
        )
    first, _, second, refused, _, again = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(refused, PreconditionFailed)
    assert isinstance(first, str) and isinstance(second, str) and first != second
    obj = await store.get("k")
    assert obj is not None and obj.data == b"2" and obj.version == second
    other = await store.get("other")
    assert other is not None and other.data == b"again" and other.version == again


async def test_a_key_of_a_str_subclass_is_a_key(store: SQLiteStorage) -> None:
    class Key(str):
        pass

    version = await store.put(Key("sub"), b"v")
    obj = await store.get("sub")
    assert obj is not None and obj.version == version


async def test_conditional_puts_of_one_group_fail_alone(store: SQLiteStorage) -> None:
    base = await store.put("versioned", b"0")
    await store.put("exists", b"0")
    async with one_group(store):
        tasks = started(
            *(store.put(f"n{i}", b"", if_absent=True) for i in range(5)),
            store.put("exists", b"1", if_absent=True),
            store.put("versioned", b"1", if_version=base),
            store.put("versioned2", b"1", if_version=base),
            store.delete("exists", if_version="stale"),
        )
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, str) for r in results[:5])
    assert isinstance(results[5], PreconditionFailed) and results[5].key == "exists"
    assert isinstance(results[6], str)
    assert isinstance(results[7], PreconditionFailed) and results[7].key == "versioned2"
    assert isinstance(results[8], PreconditionFailed) and results[8].operation == "delete"
    assert (await store.list()).keys == ["exists", *(f"n{i}" for i in range(5)), "versioned"]


async def test_more_requests_than_one_group_takes(store: SQLiteStorage) -> None:
    count = GROUP_LIMIT + 100
    async with one_group(store):
        tasks = started(*(store.put(f"k{i:04d}", b"", if_absent=True) for i in range(count)))
    versions = await asyncio.gather(*tasks)
    assert len(set(versions)) == count
    assert len((await store.list(limit=1000)).keys) == count


async def test_a_group_whose_callers_all_gave_up_runs_nothing(store: SQLiteStorage) -> None:
    async with one_group(store):
        tasks = started(store.put("a", b""), store.get("a"), store.delete_many(["a"]))
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await store.put("b", b"")
    assert (await store.list()).keys == ["b"]


async def test_a_request_already_running_when_its_caller_gives_up_finishes(
    store: SQLiteStorage,
) -> None:
    """The documented window: its answer goes nowhere, and nothing complains."""
    second = Gate()
    async with one_group(store):
        running = asyncio.ensure_future(store.put("started", b"x"))
        await asyncio.sleep(0)
        held = asyncio.ensure_future(store._worker.submit(second))
    await eventually(second.entered.is_set, "the put ran and the worker reached the gate")
    running.cancel()
    second.opened.set()
    await held
    assert (await store.get("started")) is not None
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_a_request_the_worker_could_not_start_in_time_fails_unapplied(
    tmp_path: Path,
) -> None:
    storage = SQLiteStorage(tmp_path / "store.db", timeout=0.2)
    gate = Gate()
    answered = storage._worker.submit(gate)
    await eventually(gate.entered.is_set, "the worker reached the gate")
    late = asyncio.ensure_future(storage.put("late", b"x"))
    await asyncio.sleep(0.3)  # longer than the timeout: the put expires in the queue
    gate.opened.set()
    await answered
    with pytest.raises(StorageUnavailable, match=r"too busy to start the request.*not applied"):
        await late
    assert await storage.get("late") is None
    await storage.close()


async def test_close_twice_at_once_and_requests_after_close(store: SQLiteStorage) -> None:
    await store.put("k", b"v")
    await asyncio.gather(store.close(), store.close())
    assert not store._worker.alive
    with pytest.raises(StorageError, match="is closed"):
        await store.put("k", b"w")


# -- the bulk-load benchmark cannot rot -----------------------------------------------------


def test_the_bulk_benchmark_writes_the_same_rows_every_way(tmp_path: Path) -> None:
    from benchmarks import sqlite_bulk

    n, source = 120, tmp_path / "manager.db"
    results = {"manager": sqlite_bulk.run_child("manager", source, n, None, True)}
    for variant in sqlite_bulk.VARIANTS[1:]:
        results[variant] = sqlite_bulk.run_child(
            variant, tmp_path / f"{variant}.db", n, source, False
        )
    assert {v: r["rows"] for v, r in results.items()} == {v: 4 * n for v in sqlite_bulk.VARIANTS}
    assert results["put"]["group_commits_of_the_manager"] >= 2
    profile = results["manager"]["profile"]
    assert any("add_items" in f["function"] for f in profile["top_cumulative"])
    with contextlib.closing(sqlite3.connect(tmp_path / "put_many.db")) as db:
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


# -- get_many: many keys, one request ------------------------------------------------


async def test_get_many_reads_past_one_statement_in_one_request(store: SQLiteStorage) -> None:
    keys = [f"g/{i:04d}" for i in range(1000)]
    await store.put_many([PutRequest(k, k.encode()) for k in keys[::2]])
    counting = CountingStorage(store)
    wanted = [*reversed(keys[2:]), "g/0002", "g/0002"]  # more than one SELECT, repeats
    found = await counting.get_many(wanted)
    assert [o.data if o else None for o in found] == [
        k.encode() if int(k[2:]) % 2 == 0 else None for k in wanted
    ]
    assert counting.counts == {"get_many": 1}
    moments = {o.read_at for o in found if o is not None}
    assert len(moments) == 1  # one transaction: one moment


async def test_get_many_in_statements_of_few_keys(
    store: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As where SQLite allows few parameters a statement: more statements, one request."""
    keys = [f"few/{i}" for i in range(30)]
    await store.put_many([PutRequest(k, k.encode()) for k in keys[:20]])
    monkeypatch.setattr(sqlite_requests, "KEYS_A_STATEMENT", 7)
    found = await store.get_many([*keys, "few/3"])
    assert [o.key if o else None for o in found] == [*keys[:20], *[None] * 10, "few/3"]
