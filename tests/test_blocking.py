"""The blocking twin, ``Manager.sync(...)``, on every backend.

The twin runs the async manager on a loop thread of its own, so each test
here is a plain function (no event loop of the test's own), except where a
running loop is the point.  A backend's storage is built unused, so that the
twin's loop is the first to touch it (an S3 client binds to the loop that
opens it).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ssshelf import CManager, Collection
from ssshelf.blocking import SyncCollection, SyncManager
from ssshelf.blocking import _protocols as protocols
from ssshelf.blocking._loop_thread import _Call
from ssshelf.blocking._pages import MAX_HANDOVER, GatedStorage
from ssshelf.errors import (
    AlreadyExistsError,
    ClosedError,
    ConfigurationError,
    InvalidArgument,
    InvalidKeyError,
    ReentrantCallError,
    SSShelfError,
    StorageUnavailable,
    UniqueViolation,
)
from ssshelf.managers import Versioned
from ssshelf.repair import ReindexReport
from ssshelf.storages.base import Storage, capabilities_of
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.wrapper import StorageWrapper
from ssshelf.testing import CountingStorage

from . import dev_mode
from .conftest import BACKENDS, Handle
from .models import BookmarkManager, bookmark

ROOT = Path(__file__).resolve().parent.parent
#: Generous bound on operations that would otherwise hang the suite if a
#: deadlock crept in (not a speed requirement: they finish in milliseconds).
DEADLOCK_GUARD = 60.0


@dataclass
class Backend:
    """One store, and how to get a storage on it that no loop has touched."""

    kind: str
    fresh: Callable[[], Storage]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    kind = request.param
    if kind == "memory":
        store = InMemoryStorage()  # bound to no loop: every "fresh" one is a handle on it
        return Backend(kind, lambda: Handle(store))
    if kind == "sqlite":
        return Backend(kind, lambda: SQLiteStorage(tmp_path / "store.db"))
    endpoint = request.getfixturevalue("s3_endpoint")
    factory = request.getfixturevalue("s3_storage_factory")

    async def new_bucket() -> str:
        created = await factory()
        await created.close()
        return str(created.bucket)

    bucket = asyncio.run(new_bucket())
    return Backend(kind, lambda: endpoint.storage(bucket))


@pytest.fixture
def twin(backend: Backend) -> Iterator[SyncManager[BookmarkManager]]:
    with BookmarkManager.sync(backend.fresh()) as m:
        yield m


def read_async(backend: Backend, read: Callable[[BookmarkManager], Any]) -> Any:
    """What the async manager answers, on its own loop and storage."""

    async def run() -> Any:
        storage = backend.fresh()
        try:
            return await read(BookmarkManager(storage))
        finally:
            await storage.close()

    return asyncio.run(run())


def blocking_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ssshelf-blocking:")]


def tasks_on(m: SyncManager[Any]) -> int:
    """Tasks alive on the twin's loop besides the one asking."""

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1

    return m.call(count)


B1 = bookmark("b1", "https://one.example", "2024-01-01T00:00:00", "py", "db")
B2 = bookmark("b2", "https://two.example", "2024-02-01T00:00:00", "py")
B3 = bookmark("b3", "https://three.example", "2024-03-01T00:00:00", "db")


# -- the same API, the same answers -----------------------------------------------


def test_every_method_answers_as_the_async_manager(
    twin: SyncManager[BookmarkManager], backend: Backend
) -> None:
    version = twin.add_item(B1)
    assert isinstance(version, str)
    twin.create_item(B2)
    assert twin.add_items([B3], progress=lambda n: None) == 1
    assert twin.get_item("b1") == B1
    found = twin.get_item_with_version("b1")
    assert isinstance(found, Versioned) and found == (B1, version)
    assert twin.get_items_by_pk(["b3", "nope", "b1"]) == [B3, None, B1]

    page = twin.newest.get_items(max_keys=2)
    assert page == read_async(backend, lambda m: m.newest.get_items(max_keys=2))
    assert [i["pk"] for i in page["items"]] == ["b3", "b2"] and page["after"] is not None
    keys = twin.by_tag.get_keys(prefix_parts=["py"])
    assert keys == read_async(backend, lambda m: m.by_tag.get_keys(prefix_parts=["py"]))
    entries, cursor = twin.by_tag.list_entries(10)
    assert [e.pk for e in entries] == ["b3", "b1", "b2", "b1"] and cursor is None
    assert twin.by_url.get_item("https://two.example") == B2
    assert twin.verified_items("by_tag", entries) == [B3, B1, B2, B1]
    encoded = entries[0].encoded
    assert twin.item_by_unique("by_url", encoded) is None  # a by_tag key is no URL
    assert twin.call(len, "sync") == 4  # a plain function runs on the loop as it is
    with pytest.raises(TypeError):
        twin.get_item()  # refused as the async method refuses it

    assert twin.update_item("b1", lambda item: {**item, "title": "One"})["title"] == "One"

    async def retitle(item: dict[str, Any]) -> None:
        item["title"] = "Uno"

    assert twin.update_item("b1", retitle)["title"] == "Uno"
    assert twin.remove_item("b2") is True
    assert twin.remove_item("b2") is False
    assert twin.remove_items(["b3", "b2"]) == 1
    assert twin.reindex_item("b1", "newest") is False
    assert twin.check().ok
    assert twin.repair(grace=0).check.ok
    reindexed = twin.reindex("by_tag")
    assert reindexed == ReindexReport("by_tag", items_scanned=1)
    assert reindexed == read_async(backend, lambda m: m.reindex("by_tag"))
    assert read_async(backend, lambda m: m.get_item("b1"))["title"] == "Uno"


def test_iterators_yield_what_async_iteration_yields(
    twin: SyncManager[BookmarkManager], backend: Backend
) -> None:
    items = [
        bookmark(f"p{i:03}", f"https://{i}.example", f"2024-01-01T00:{i // 60:02}:{i % 60:02}")
        for i in range(45)
    ]
    twin.add_items(items)

    async def all_async(m: BookmarkManager) -> tuple[list[Any], list[Any]]:
        got = [item async for item in m.newest.iter_items(page_size=10)]
        keys = [key async for key in m.by_url.iter_keys(page_size=7)]
        return got, keys

    expected_items, expected_keys = read_async(backend, all_async)
    assert list(twin.newest.iter_items(page_size=10)) == expected_items
    assert list(twin.by_url.iter_keys(page_size=7)) == expected_keys
    assert len(expected_items) == 45
    assert list(twin.by_url.iter_items(prefix_parts=["https://none.example"])) == []


def test_typed_surface_names_every_async_method() -> None:
    """The blocking methods are listed by name (their types are derived):
    adding an async method to CManager or Collection fails here until it
    has its blocking twin and protocol."""

    def async_api(cls: type) -> set[str]:
        return {
            name
            for name, value in vars(cls).items()
            if not name.startswith("_")
            and (inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value))
        }

    manager_api = async_api(CManager) - {"close"}  # the twin's close() closes it
    assert manager_api <= set(vars(SyncManager)), manager_api - set(vars(SyncManager))
    collection_api = async_api(Collection)
    assert collection_api <= set(vars(SyncCollection)), collection_api - set(vars(SyncCollection))
    protocol_members = {
        name
        for protocol in vars(protocols).values()
        if isinstance(protocol, type) and protocol.__module__ == protocols.__name__
        for name in vars(protocol)
        if not name.startswith("_")
    }
    assert manager_api | collection_api == protocol_members

    # The listed methods only give type checkers their signatures: the
    # generic path, which serves everything else, would behave the same.
    with BookmarkManager.sync("memory://") as m:
        m.add_item(B1)
        for name in manager_api:
            assert callable(m.__getattr__(name)), name
        for name in collection_api:
            assert callable(m.newest.__getattr__(name)), name
        assert m.__getattr__("get_item")("b1") == m.get_item("b1") == B1
        generic_pages = m.newest.__getattr__("iter_items")(page_size=1)
        assert list(generic_pages) == list(m.newest.iter_items(page_size=1)) == [B1]


def test_what_a_subclass_adds_is_reached_generically(backend: Backend) -> None:
    class Tagged(Collection):
        def key(self, item: dict[str, Any]) -> Any:
            return [(tag,) for tag in item["tags"]]

        async def tally(self, tag: str) -> int:
            return len((await self.get_keys(prefix_parts=[tag]))["keys"])

    class Extended(BookmarkManager):
        tagged = Tagged()

        async def urls(self) -> list[str]:
            return [item["url"] async for item in self.newest.iter_items()]

        async def pks(self) -> AsyncIterator[str]:
            async for _, pk in self.newest.iter_keys():
                yield pk

        async def get_item(self, pk: Any) -> Any:
            found = await super().get_item(pk)
            return None if found is None else {**found, "seen": True}

    with Extended.sync(backend.fresh()) as m:
        m.add_items([B1, B2])
        assert m.urls() == ["https://two.example", "https://one.example"]
        assert list(m.pks()) == ["b2", "b1"]
        assert m.tagged.tally("py") == 2
        assert m.call(m.manager.tagged.tally, "db") == 1
        assert list(m.iterate(m.manager.pks)) == ["b2", "b1"]
        assert m.get_item("b1") == {**B1, "seen": True}  # the override, not CManager's
        assert set(m.collections) == {"newest", "by_tag", "by_url", "tagged"}
        assert m.collections["tagged"].tally("db") == 1
        # help() shows the async signature
        assert inspect.signature(m.urls) == inspect.signature(m.manager.urls)
        assert inspect.signature(m.tagged.tally) == inspect.signature(m.manager.tagged.tally)


def test_attributes_without_a_twin_say_where_to_look(twin: SyncManager[BookmarkManager]) -> None:
    with pytest.raises(AttributeError, match=r"m\.manager\.namespace"):
        twin.namespace  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        twin.nope  # noqa: B018
    with pytest.raises(AttributeError, match=r"m\.newest\.collection\.unique"):
        twin.newest.unique  # noqa: B018
    with pytest.raises(AttributeError):
        twin._known  # noqa: B018
    with pytest.raises(AttributeError):
        twin.newest._manager  # noqa: B018
    assert repr(twin) == "<SyncManager of BookmarkManager (open)>"
    assert repr(twin.newest) == "<SyncCollection 'newest'>"
    assert isinstance(twin.manager.storage, GatedStorage)
    assert repr(twin.manager.storage) == repr(twin.manager.storage.inner)
    assert twin.manager.storage.inner is not None
    assert twin.manager.storage.max_key_length > 0


def test_a_collection_the_twin_would_hide_is_refused() -> None:
    class Urls(Collection):
        def key(self, item: dict[str, Any]) -> Any:
            return item["url"]

    class Clashing(BookmarkManager):
        iterate = Urls()

    with pytest.raises(ConfigurationError, match="collection 'iterate'"):
        Clashing.sync("memory://")
    assert not blocking_threads()


# -- opening and closing ------------------------------------------------------------


def test_opens_what_a_url_names_and_closes_it(tmp_path: Path) -> None:
    path = tmp_path / "twin.db"
    with BookmarkManager.sync(f"sqlite:///{path}") as m:
        m.add_item(B1)
        assert isinstance(m.manager.storage.inner, SQLiteStorage)
        assert [t for t in threading.enumerate() if t.name == f"ssshelf-sqlite:{path}"]
    assert m.closed
    assert not [t for t in threading.enumerate() if t.name.startswith(f"ssshelf-sqlite:{tmp_path}")]
    assert not blocking_threads()
    with BookmarkManager.sync(f"sqlite:///{path}") as again:
        assert again.get_item("b1") == B1


def test_url_from_the_environment_and_manager_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSSHELF_URL", f"sqlite:///{tmp_path}/env.db")
    with BookmarkManager.sync(clock=lambda: 1_000.0) as m:
        m.add_item(B1)
        assert m.manager.clock() == 1_000.0
    assert (tmp_path / "env.db").exists()


def test_s3_url_opens_a_client_on_the_twins_loop(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "s3" not in BACKENDS:
        pytest.skip("S3 backend not selected")
    endpoint = request.getfixturevalue("s3_endpoint")
    factory = request.getfixturevalue("s3_storage_factory")

    async def new_bucket() -> str:
        created = await factory()
        await created.close()
        return str(created.bucket)

    bucket = asyncio.run(new_bucket())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", endpoint.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", endpoint.secret_key)
    url = f"s3://{bucket}/app?endpoint={endpoint.url}&region={endpoint.region}"
    with BookmarkManager.sync(url) as m:
        m.add_item(B1)
        assert m.manager.storage.bucket == bucket  # a backend's own attribute shows through
    with BookmarkManager.sync(url) as m:
        assert [i["pk"] for i in m.newest.iter_items()] == ["b1"]


def test_bad_arguments_fail_at_once_and_leave_no_thread(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown storage URL"):
        BookmarkManager.sync("nope://x")
    with pytest.raises(InvalidArgument, match="sqlite:///"):
        BookmarkManager.sync(tmp_path / "x.db")

    class NoItems(CManager):
        pass

    with pytest.raises(ConfigurationError, match="item_manager"):
        NoItems.sync(f"sqlite:///{tmp_path}/y.db")
    with pytest.raises(TypeError):
        BookmarkManager.sync("memory://", no_such_option=1)
    assert not blocking_threads()
    assert not [t for t in threading.enumerate() if t.name.startswith(f"ssshelf-sqlite:{tmp_path}")]


def test_closed_twin_refuses_calls_and_iterators(backend: Backend) -> None:
    m = BookmarkManager.sync(backend.fresh())
    m.add_items([B1, B2])
    pages = m.newest.iter_items(page_size=1)
    assert next(pages) == B2
    m.close()
    m.close()  # idempotent
    assert not blocking_threads()
    assert repr(m) == "<SyncManager of BookmarkManager (closed)>"
    with pytest.raises(ClosedError, match="closed"):
        m.get_item("b1")
    with pytest.raises(ClosedError):
        next(pages)
    with pytest.raises(ClosedError):
        next(m.newest.iter_items())
    assert isinstance(ClosedError("x"), RuntimeError)
    assert isinstance(ClosedError("x"), SSShelfError)


def test_close_lets_calls_in_flight_finish(backend: Backend) -> None:
    m = BookmarkManager.sync(backend.fresh())
    m.add_item(B1)
    entered, release = threading.Event(), threading.Event()
    results: list[Any] = []

    async def wait_for_release(item: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        await asyncio.to_thread(release.wait)
        return {**item, "title": "late"}

    writer = threading.Thread(target=lambda: results.append(m.update_item("b1", wait_for_release)))
    writer.start()
    assert entered.wait(DEADLOCK_GUARD)
    closer = threading.Thread(target=m.close)
    closer.start()
    while not m.closed:  # until close() has begun
        closer.join(0.001)
    assert closer.is_alive()  # and it waits: the update is still running
    with pytest.raises(ClosedError):
        m.get_item("b1")  # new calls are refused meanwhile
    release.set()
    writer.join(DEADLOCK_GUARD)
    closer.join(DEADLOCK_GUARD)
    assert results and results[0]["title"] == "late"
    assert not closer.is_alive() and not blocking_threads()
    assert read_async(backend, lambda a: a.get_item("b1"))["title"] == "late"


class _FailsToClose(StorageWrapper):
    async def close(self) -> None:
        await self.inner.close()
        raise StorageUnavailable("the store hung up while closing", operation="close")


def test_a_failure_to_close_is_raised_once_the_thread_has_stopped(backend: Backend) -> None:
    m = BookmarkManager.sync(_FailsToClose(backend.fresh()))
    m.add_item(B1)
    with pytest.raises(StorageUnavailable, match="hung up"):
        m.close()
    assert m.closed and not blocking_threads()
    m.close()  # already closed: nothing more to report


def test_one_twin_may_close_another_from_its_callback(tmp_path: Path) -> None:
    a = BookmarkManager.sync("memory://")
    b = BookmarkManager.sync(f"sqlite:///{tmp_path}/b.db")
    try:
        a.add_item(B1)
        a.update_item("b1", lambda item: b.close())
        assert b.closed
    finally:
        a.close()
    assert not blocking_threads()


def test_a_twin_nobody_closed_is_closed_when_collected(tmp_path: Path) -> None:
    m = BookmarkManager.sync(f"sqlite:///{tmp_path}/gc.db")
    m.add_item(B1)
    thread = blocking_threads()[0]
    del m
    gc.collect()
    thread.join(DEADLOCK_GUARD)
    assert not thread.is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith(f"ssshelf-sqlite:{tmp_path}")]


def test_a_temporary_twin_lives_as_long_as_its_iterator(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tmp.db"
    with BookmarkManager.sync(url) as m:
        m.add_items([B1, B2, B3])
    pages = BookmarkManager.sync(url).newest.iter_items(page_size=1)
    gc.collect()
    assert [item["pk"] for item in pages] == ["b3", "b2", "b1"]
    del pages
    gc.collect()
    for thread in blocking_threads():
        thread.join(DEADLOCK_GUARD)
    assert not blocking_threads()


_EXIT_SCRIPT = """
import sys, threading, asyncio
from tests.models import BookmarkManager, bookmark
m = BookmarkManager.sync(sys.argv[1])
m.add_item(bookmark("x", "https://x.example", "2024-01-01T00:00:00"))
started = threading.Event()
async def forever(item):
    started.set()
    await asyncio.Event().wait()
def call_forever():
    try:
        m.update_item("x", forever)
    except BaseException as exc:  # the twin is shut down under it at exit
        print("in flight at exit:", type(exc).__name__, file=sys.stderr)
# a call that never ends, in a thread of the program's own, then exit
threading.Thread(target=call_forever, daemon=True).start()
started.wait()
print("exiting")
"""


def test_interpreter_exits_with_a_twin_open_and_a_call_in_flight(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _EXIT_SCRIPT, f"sqlite:///{tmp_path}/exit.db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLOCK_GUARD,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "exiting"
    assert "Traceback" not in done.stderr and "never retrieved" not in done.stderr


_FORK_SCRIPT = """
import os, sys
from ssshelf.errors import ClosedError
from tests.models import BookmarkManager, bookmark
m = BookmarkManager.sync(sys.argv[1])
m.add_item(bookmark("x", "https://x.example", "2024-01-01T00:00:00"))
child = os.fork()
if child == 0:  # a pre-forking server's worker
    try:
        m.get_item("x")
    except ClosedError as exc:
        print("child:", exc)
        sys.exit(0)
    sys.exit(1)
_, status = os.waitpid(child, 0)
print("parent:", m.get_item("x")["pk"], os.waitstatus_to_exitcode(status))
m.close()
"""


_UNCLOSED_SCRIPT = """
import sys
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.wrapper import StorageWrapper
from ssshelf.storages.wrapper import StorageWrapper
from tests.models import BookmarkManager, bookmark

class Announced(StorageWrapper):
    async def close(self):
        await self.inner.close()  # SQLite joins its worker in a thread: at exit too
        print("storage closed")

m = BookmarkManager.sync(Announced(SQLiteStorage(sys.argv[1])))
m.add_item(bookmark("x", "https://x.example", "2024-01-01T00:00:00"))
print("exiting without close()")
"""


def test_a_twin_left_open_at_exit_closes_its_storage(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _UNCLOSED_SCRIPT, str(tmp_path / "open.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLOCK_GUARD,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["exiting without close()", "storage closed"]
    dev_mode.assert_clean(done.stderr)


def test_a_forked_child_is_told_to_open_its_own(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT, f"sqlite:///{tmp_path}/fork.db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLOCK_GUARD,
    )
    assert done.returncode == 0, done.stderr
    assert "before this process forked" in done.stdout
    assert "open the blocking manager in each process after the fork" in done.stdout
    assert "parent: x 0" in done.stdout


# -- threads and event loops -------------------------------------------------------------


def test_many_threads_share_one_twin(twin: SyncManager[BookmarkManager], backend: Backend) -> None:
    counter = bookmark("counter", "https://counter.example", "2020-01-01T00:00:00", n=0)
    twin.add_item(counter)
    threads, per_thread = 6, 8
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def increment(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "n": item["n"] + 1}

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                pk = f"t{t}-{i}"
                twin.add_item(bookmark(pk, f"https://{pk}.example", f"2024-01-0{t + 1}T00:00:0{i}"))
                twin.update_item("counter", increment, retries=100)
                assert twin.get_item(pk)["pk"] == pk
                assert len(list(twin.by_url.iter_keys(page_size=5))) >= 1
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(DEADLOCK_GUARD * 2)
    assert not errors, errors
    assert twin.get_item("counter")["n"] == threads * per_thread
    assert len(list(twin.newest.iter_items())) == threads * per_thread + 1
    assert twin.check().ok
    assert read_async(backend, lambda m: m.get_item("counter"))["n"] == threads * per_thread


def test_works_inside_a_running_event_loop(twin: SyncManager[BookmarkManager]) -> None:
    async def notebook_cell() -> list[str]:
        twin.add_item(B1)  # no "this event loop is already running", no deadlock
        return [item["pk"] for item in twin.newest.iter_items()]

    assert asyncio.run(notebook_cell()) == ["b1"]


async def test_works_from_an_async_test_too(tmp_path: Path) -> None:
    with BookmarkManager.sync(f"sqlite:///{tmp_path}/async.db") as m:
        m.add_item(B2)
        assert m.get_item("b2") == B2


# -- callbacks run on the loop: calling back in is refused -----------------------------


def test_blocking_calls_from_callbacks_are_refused(twin: SyncManager[BookmarkManager]) -> None:
    twin.add_items([B1, B2])
    with pytest.raises(ReentrantCallError, match=r"get_item\(\) from code"):
        twin.update_item("b1", lambda item: twin.get_item("b2"))
    with pytest.raises(ReentrantCallError):
        twin.add_items([B3], progress=lambda n: twin.check())
    assert twin.get_item("b3") == B3  # progress is reported once the item is written
    with pytest.raises(ReentrantCallError):
        twin.add_items(twin.newest.iter_items())  # its own pages, read on its own loop
    with pytest.raises(ReentrantCallError, match="close"):
        twin.update_item("b1", lambda item: twin.close())
    assert isinstance(ReentrantCallError("x"), RuntimeError)
    assert twin.get_item("b1") == B1  # no update was written
    assert tasks_on(twin) == 0

    async def with_the_async_manager(item: dict[str, Any]) -> dict[str, Any]:
        other = await twin.manager.get_item("b2")  # awaiting on the loop is fine
        return {**item, "title": other["url"]}

    assert twin.update_item("b1", with_the_async_manager)["title"] == B2["url"]


def test_one_twin_may_feed_another_but_a_cycle_is_refused(tmp_path: Path) -> None:
    with (
        BookmarkManager.sync(f"sqlite:///{tmp_path}/a.db") as a,
        BookmarkManager.sync(f"sqlite:///{tmp_path}/b.db") as b,
    ):
        a.add_items([B1, B2, B3])
        assert b.add_items(a.newest.iter_items(page_size=2)) == 3  # b's loop reads a
        assert [i["pk"] for i in b.newest.iter_items()] == ["b3", "b2", "b1"]

        outcome: list[BaseException | Any] = []

        def b_calls_a(item: dict[str, Any]) -> Any:
            return a.get_item("b1")  # a's loop is waiting for b: refused

        def a_calls_b(item: dict[str, Any]) -> Any:
            return b.update_item("b1", b_calls_a)

        def run() -> None:
            try:
                outcome.append(a.update_item("b1", a_calls_b))
            except BaseException as exc:
                outcome.append(exc)

        runner = threading.Thread(target=run)
        runner.start()
        runner.join(DEADLOCK_GUARD)
        assert not runner.is_alive(), "deadlocked"
        assert isinstance(outcome[0], ReentrantCallError)
        assert a.get_item("b2") == B2 and b.get_item("b2") == B2  # both still serve


def test_system_exit_from_a_callback_reaches_the_caller(twin: SyncManager[BookmarkManager]) -> None:
    twin.add_item(B1)

    def leave(item: Any) -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit) as exited:
        twin.update_item("b1", leave)
    assert exited.value.code == 3
    assert twin.get_item("b1") == B1  # the loop still runs


# -- errors, cancellation ------------------------------------------------------------------


def test_errors_keep_their_type_attributes_and_traceback(
    twin: SyncManager[BookmarkManager],
) -> None:
    twin.add_item(B1)
    with pytest.raises(AlreadyExistsError) as exists:
        twin.create_item(B1)
    assert exists.value.pk == "b1"
    frames = [frame.name for frame in traceback.extract_tb(exists.value.__traceback__)]
    assert "test_errors_keep_their_type_attributes_and_traceback" in frames
    assert "create_item" in frames  # the async manager's own frames are kept
    with pytest.raises(UniqueViolation) as taken:
        twin.add_item({**B2, "url": B1["url"]})
    assert (taken.value.collection, taken.value.value, taken.value.owner) == (
        "by_url",
        B1["url"],
        "b1",
    )
    with pytest.raises(InvalidKeyError):
        twin.newest.get_items(prefix_parts=[object()])
    with pytest.raises(KeyError):
        twin.update_item("missing", lambda item: item)


def _interrupt_main_when(event: threading.Event) -> threading.Thread:
    """Ctrl-C for the main thread once ``event`` is set, while it waits for a call
    of the twin.

    A signal that arrives just before the main thread blocks in that wait
    (after the interpreter last looked for signals) does not wake it: the
    wait ends only when a signal arrives during it.  On a busy machine that
    happens, and the test then hung until its timeout.  So the signal is sent
    again while the main thread is still in that first wait a second later.
    """
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread() is threading.main_thread()
    # A process started in the background by a shell ignores SIGINT (and so
    # Python installs no handler for it): make Ctrl-C raise here as it does
    # in a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def interrupt() -> None:
        if not event.wait(DEADLOCK_GUARD):
            return
        for _ in range(int(DEADLOCK_GUARD)):
            signal.pthread_kill(main, signal.SIGINT)
            if not _waits_for_a_call(main, timeout=1.0):
                return

    thread = threading.Thread(target=interrupt)
    thread.start()
    return thread


def _first_wait_line() -> int:
    """The line of ``_Call.run`` where the calling thread waits for the loop."""
    lines, start = inspect.getsourcelines(_Call.run)
    return next(start + n for n, line in enumerate(lines) if "_finished.acquire()" in line)


_FIRST_WAIT = _first_wait_line()


def _waits_for_a_call(thread: int, *, timeout: float) -> bool:
    """Whether ``thread`` is still in its first wait for the loop after ``timeout``
    seconds (it leaves it as soon as a signal reaches it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread)
        if frame is None or frame.f_code is not _Call.run.__code__:
            return False
        if frame.f_lineno != _FIRST_WAIT:
            return False
        time.sleep(0.02)
    return True


def test_ctrl_c_cancels_the_operation_on_the_loop(twin: SyncManager[BookmarkManager]) -> None:
    twin.add_item(B1)
    entered = threading.Event()
    seen: list[str] = []

    async def never_done(item: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return item

    interrupter = _interrupt_main_when(entered)
    with pytest.raises(KeyboardInterrupt):
        twin.update_item("b1", never_done)
    interrupter.join()
    assert seen == ["cancelled"]  # cancelled before the call returned
    assert tasks_on(twin) == 0
    assert twin.get_item("b1") == B1
    assert twin.check().ok


def test_ctrl_c_while_iterating_stops_the_iterator(backend: Backend) -> None:
    slow = _HeldLists(backend.fresh())
    with BookmarkManager.sync(slow) as m:
        m.add_items([B1, B2, B3])
        slow.hold.set()
        interrupter = _interrupt_main_when(slow.held)
        with pytest.raises(KeyboardInterrupt):
            next(m.newest.iter_items())  # the very first page
        interrupter.join()
        assert tasks_on(m) == 0
        slow.hold.clear()
        slow.held.clear()

        pages = m.newest.iter_items(page_size=1)
        assert next(pages) == B3
        slow.hold.set()
        interrupter = _interrupt_main_when(slow.held)
        with pytest.raises(KeyboardInterrupt):
            next(pages)
        interrupter.join()
        with pytest.raises(StopIteration):
            next(pages)
        assert tasks_on(m) == 0
        slow.hold.clear()
        assert [i["pk"] for i in m.newest.iter_items()] == ["b3", "b2", "b1"]


class _HeldLists(CountingStorage):
    """Counts requests; while ``hold`` is set, a list request waits forever
    (until cancelled) and sets ``held``."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.hold = threading.Event()
        self.held = threading.Event()

    async def list(self, prefix: str = "", *, after: str | None = None, limit: int = 1000) -> Any:
        if self.hold.is_set():
            self.held.set()
            await asyncio.Event().wait()
        return await super().list(prefix, after=after, limit=limit)


# -- iterators: one page at a time, exactly the async requests ----------------------------


def item_reads(storage: CountingStorage, pages: int, items: int) -> dict[str, int]:
    """The requests that read the items of ``pages`` pages (``items`` in all):
    one ``get_many`` a page where the store answers it in one request
    (memory, SQLite), one ``get`` an item otherwise (S3)."""
    if capabilities_of(storage.inner).get_many_in_one_request:
        return {"get_many": pages}
    return {"get": items}


def test_iteration_requests_a_page_only_when_its_first_item_is_asked_for(
    backend: Backend,
) -> None:
    counting = CountingStorage(backend.fresh())
    with BookmarkManager.sync(counting) as m:
        m.add_items(
            bookmark(f"p{i}", f"https://{i}.example", f"2024-01-01T00:00:{i:02}") for i in range(7)
        )
        counting.reset()
        pages = m.newest.iter_items(page_size=3)
        assert counting.total == 0  # nothing before the first next()
        taken = [next(pages)]
        assert counting.counts == {"list": 1, **item_reads(counting, 1, 3)}  # one page
        taken += [next(pages), next(pages)]
        assert counting.counts == {"list": 1, **item_reads(counting, 1, 3)}  # it was in hand
        taken.append(next(pages))
        assert counting.counts == {"list": 2, **item_reads(counting, 2, 6)}
        taken += list(pages)
        assert [i["pk"] for i in taken] == [f"p{i}" for i in range(6, -1, -1)]
        scanned = dict(counting.counts)

    async def scan_async() -> dict[str, int]:
        counted = CountingStorage(backend.fresh())
        manager = BookmarkManager(counted)
        assert len([i async for i in manager.newest.iter_items(page_size=3)]) == 7
        await counted.close()
        return dict(counted.counts)

    assert scanned == asyncio.run(scan_async())


def test_an_abandoned_iterator_stops_and_leaves_nothing_running(backend: Backend) -> None:
    counting = CountingStorage(backend.fresh())
    with BookmarkManager.sync(counting) as m:
        m.add_items(
            bookmark(f"p{i}", f"https://{i}.example", f"2024-01-01T00:00:{i:02}") for i in range(5)
        )
        counting.reset()
        for item in m.newest.iter_items(page_size=2):
            if item["pk"] == "p3":
                break  # leaving the loop drops the iterator
        gc.collect()
        assert tasks_on(m) == 0
        assert counting.counts == {"list": 1, **item_reads(counting, 1, 2)}

        pages = m.newest.iter_items(page_size=2)
        next(pages)
        pages.close()
        assert tasks_on(m) == 0

        never_started = m.newest.iter_items()
        del never_started
        assert tasks_on(m) == 0


def test_any_async_iterable_is_handed_over_in_bounded_runs(
    twin: SyncManager[BookmarkManager],
) -> None:
    total = MAX_HANDOVER * 2 + 5

    async def numbers() -> AsyncIterator[int]:
        for n in range(total):  # never makes a request: runs are bounded anyway
            yield n

    assert list(twin.iterate(numbers)) == list(range(total))

    class Countdown:  # an async iterator with no aclose()
        def __init__(self) -> None:
            self.left = 3

        def __aiter__(self) -> Countdown:
            return self

        async def __anext__(self) -> int:
            if not self.left:
                raise StopAsyncIteration
            self.left -= 1
            return self.left

    assert list(twin.iterate(Countdown)) == [2, 1, 0]
    started = twin.iterate(Countdown)
    assert next(started) == 2
    started.close()

    class Broken(Exception):
        pass

    async def fails_after_two() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise Broken("third")

    got: list[int] = []
    with pytest.raises(Broken, match="third"):
        got.extend(twin.iterate(fails_after_two))
    assert got == [1, 2]  # what came before the error arrives first
    assert tasks_on(twin) == 0


def test_an_iterator_dropped_on_its_own_loop_thread_is_closed(
    twin: SyncManager[BookmarkManager],
) -> None:
    twin.add_items([B1, B2, B3])
    pages: Iterator[Any] | None = twin.newest.iter_items(page_size=1)
    assert pages is not None and next(pages) == B3

    def drop_it_here(item: dict[str, Any]) -> dict[str, Any]:
        nonlocal pages
        pages = None  # the last reference goes on the loop thread, which cannot wait
        return item

    twin.update_item("b1", drop_it_here)
    # Its clean-up could only be started there, not waited for: it runs next.
    for _ in range(100):
        if tasks_on(twin) == 0:
            break
    assert tasks_on(twin) == 0


# -- typing -------------------------------------------------------------------------------

_TYPED_USAGE = """
from typing import Any
from dataclasses import dataclass
from ssshelf import CManager, Collection, IManager
from ssshelf.blocking import SyncManager
from tests.models import BookmarkManager

m = BookmarkManager.sync("memory://")
reveal_type(m.manager)
reveal_type(m.add_item)
reveal_type(m.get_item_with_version("a"))
reveal_type(m.check())
reveal_type(m.newest)
reveal_type(m.newest.iter_items(page_size=10))
reveal_type(m.newest.get_items())
reveal_type(m.call(m.manager.newest.get_item, "x"))
m.add_item({"pk": "a"}, if_version=3)
m.newest.get_items(max_keys="ten")
m.newest.no_such_method()
m.add_itme({"pk": "a"})
n: int = m.add_item({"pk": "a"})


@dataclass
class Note:
    pk: str


class Notes(CManager):
    item_manager = IManager()

    async def get_item(self, pk: str) -> Note | None:
        return None

    async def add_item(self, item: Note, *, if_version: str | None = None) -> str:
        return ""


notes = Notes.sync()
reveal_type(notes.get_item("a"))
notes.add_item(42)
with Notes.sync() as twin:
    reveal_type(twin)
"""

_EXPECTED_MYPY = [
    'Revealed type is "tests.models.BookmarkManager"',
    'Revealed type is "def (item: Any, *, if_version: str | None =) -> str"',
    "fallback=ssshelf.managers.Versioned[Any]] | None",
    'Revealed type is "ssshelf.repair.CheckReport"',
    "SyncCollection[ssshelf.collections.Collection[Any]]",
    'Revealed type is "typing.Iterator[Any]"',
    "TypedDict(ssshelf.collections.ItemsPage, {",  # key order varies by mypy run
    'Revealed type is "Any | None"',
    'Argument "if_version" to "add_item" of "SyncManager" has incompatible type "int"',
    'Argument "max_keys" to "get_items" of "SyncCollection" has incompatible type "str"',
    '"SyncCollection[Collection[Any]]" has no attribute "no_such_method"',
    '"SyncCollection[Collection[Any]]" not callable',
    'Incompatible types in assignment (expression has type "str", variable has type "int")',
    'Revealed type is "test_typed.Note | None"',
    'Argument 1 to "add_item" of "SyncManager" has incompatible type "int"; expected "Note"',
    'Revealed type is "ssshelf.blocking._manager.SyncManager[test_typed.Notes]"',
]


def test_type_checkers_see_the_async_signatures(tmp_path: Path) -> None:
    example = tmp_path / "test_typed.py"
    example.write_text(_TYPED_USAGE)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(example)],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [re.sub(r"^.*?:\d+: (error|note): ", "", line) for line in done.stdout.splitlines()]
    lines = [re.sub(r"  \[[a-z-]+\]$", "", line).replace("builtins.", "") for line in lines]
    for expected in _EXPECTED_MYPY:
        assert any(expected in line for line in lines), (expected, done.stdout)
    unexpected = [
        line for line in lines if not any(expected in line for expected in _EXPECTED_MYPY)
    ]
    assert not unexpected, done.stdout


# -- the documentation ---------------------------------------------------------------------


@pytest.mark.parametrize("machine", ["idle", "loaded"])
def test_docs_examples_run(tmp_path: Path, machine: str) -> None:
    """Every example of docs/blocking.md, under ``-X dev``: no warning that means a bug.

    "loaded": every callback is reported as slow, as asyncio's debug mode
    does on a busy machine; that must not fail the examples."""
    text = (ROOT / "docs" / "blocking.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    path = [str(ROOT)]
    if machine == "loaded":
        path.insert(0, str(dev_mode.loaded_machine(tmp_path / "site")))
        blocks = blocks[:1]  # the check, not the examples, is what this run is about
    env = {
        **os.environ,
        "SSSHELF_URL": f"sqlite:///{tmp_path}/docs.db",
        "PYTHONPATH": os.pathsep.join(path),
    }
    for code in blocks:
        done = subprocess.run(
            [sys.executable, "-X", "dev", "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{code}\n{done.stderr}"
        dev_mode.assert_clean(done.stderr, code)
        if machine == "loaded":
            assert dev_mode.SLOW_CALLBACK.search(done.stderr), "the load was not simulated"


_BUGGY_SCRIPT = """
import asyncio, gc

async def forgotten():
    pass

async def main():
    forgotten()  # never awaited
    open("/dev/null")  # never closed
    await asyncio.sleep(0)

asyncio.run(main())
gc.collect()
"""


def test_the_dev_mode_check_sees_bugs_on_a_loaded_machine(tmp_path: Path) -> None:
    """What ``assert_clean`` lets through is timing only: the warnings that mean
    a bug still fail it, mixed with slow-callback reports."""
    site = dev_mode.loaded_machine(tmp_path / "site")
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _BUGGY_SCRIPT],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert dev_mode.SLOW_CALLBACK.search(done.stderr), done.stderr
    found = "\n".join(dev_mode.problems(done.stderr))
    assert "was never awaited" in found and "ResourceWarning" in found, found
    with pytest.raises(AssertionError, match="-X dev reported"):
        dev_mode.assert_clean(done.stderr)
    dev_mode.assert_clean("Executing <Task pending name='Task-1'> took 0.123 seconds\n")


def test_benchmark_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.blocking_overhead", "--calls", "50", "--items", "30"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for row in ("awaited", "blocking twin", "asyncio.run per call", "iter_items"):
        assert row in done.stdout, done.stdout
