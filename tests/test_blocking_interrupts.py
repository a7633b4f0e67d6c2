"""The blocking twin under interrupts (issue 17, case 4): an interrupt at any
point of a blocking call — before it starts, at each of its await points, or
just as it completes — returns promptly, cancels what was still running, and
leaves the twin usable and the store consistent; from several threads at once.

The main thread gets real signals (``SIGINT`` sent to it at the chosen await
point).  Other threads cannot be signalled, so their wait is interrupted
where the call's hand-off lock is waited for: a lock made for the test
(:attr:`ssshelf.blocking._loop_thread._Call.new_lock`) raises
``KeyboardInterrupt`` in the waiting thread when the call reaches the chosen
point, or just after the wait has returned — the moment a real Ctrl-C can
land in, and the one that used to hang the caller forever.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ssshelf.blocking import SyncManager
from ssshelf.blocking._loop_thread import LoopThread, _Call
from ssshelf.storages.base import Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.wrapper import StorageWrapper

from .models import BookmarkManager, bookmark

T = TypeVar("T")
#: Longest a call may take to return after its interrupt.
PROMPTLY = 10.0


class _Plan(threading.local):
    """What the current thread's next wait does: nothing, raise when
    ``point`` is set, or raise just after the wait returned."""

    point: threading.Event | None = None
    after_wait: bool = False


PLAN = _Plan()


class _InterruptibleLock:
    """A hand-off lock whose waits follow this thread's :data:`PLAN`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan = (PLAN.point, PLAN.after_wait)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        point, after_wait = self._plan
        if not blocking or (point is None and not after_wait):
            return self._lock.acquire(blocking, timeout)
        if after_wait:
            self._plan = (None, False)
            self._lock.acquire()
            raise KeyboardInterrupt("just after the wait returned")
        assert point is not None
        while not self._lock.acquire(timeout=0.001):
            if point.is_set():
                self._plan = (None, False)
                raise KeyboardInterrupt("while waiting")
        return True

    def release(self) -> None:
        self._lock.release()


@pytest.fixture
def interruptible(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_Call, "new_lock", staticmethod(_InterruptibleLock))
    yield
    PLAN.point, PLAN.after_wait = None, False


class _Points(StorageWrapper):
    """Each request of the call under test (its key holds ``marker``) is an
    await point: at the ``at``-th, ``fire()`` sends the interrupt, and the
    request waits there to be cancelled."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.marker = "\0"
        self.count = 0
        self.at: int | None = None
        self.fire: Callable[[], None] = lambda: None
        self.cancelled_at: int | None = None

    def aim(self, marker: str, at: int, fire: Callable[[], None]) -> None:
        self.marker, self.count, self.at, self.fire = marker, 0, at, fire
        self.cancelled_at = None

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        if self.marker not in (key or ""):
            return await request()
        self.count += 1
        if self.count == self.at:
            here = self.count
            self.fire()
            try:
                await asyncio.Event().wait()  # the call is here when the interrupt lands
            except asyncio.CancelledError:
                self.cancelled_at = here
                raise
        return await request()


def _stores(tmp_path: Path) -> dict[str, Callable[[], Storage]]:
    memory = InMemoryStorage()
    return {"memory": lambda: memory, "sqlite": lambda: SQLiteStorage(tmp_path / "i.db")}


def _returns_promptly(call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` in a thread; what it raised, failing if it does not return."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PROMPTLY)
    assert not thread.is_alive(), "the blocking call hung after its interrupt"
    return outcome[0]


# -- the hand-off itself -------------------------------------------------------------


def test_an_interrupt_just_as_the_call_completes_returns(interruptible: None) -> None:
    loop_thread = LoopThread("interrupted")
    try:

        async def done() -> str:
            return "done"

        def call() -> None:
            PLAN.after_wait = True
            loop_thread.call(done)

        assert isinstance(_returns_promptly(call), KeyboardInterrupt)
        assert loop_thread.call(done) == "done", "the loop thread keeps serving"
    finally:
        loop_thread.close()


async def _steps(points: int, at: int, reached: threading.Event, seen: list[int]) -> int:
    """``points`` await points; at the ``at``-th it waits to be interrupted."""
    for step in range(points):
        if step == at:
            reached.set()
        try:
            await asyncio.sleep(0.01 if step != at else 60)
        except asyncio.CancelledError:
            seen.append(step)
            raise
    return points


def test_an_interrupt_at_every_await_point_cancels_there(interruptible: None) -> None:
    loop_thread = LoopThread("interrupted")
    points = 4
    try:
        for at in range(points + 1):
            reached = threading.Event()
            seen: list[int] = []

            def call(
                reached: threading.Event = reached, seen: list[int] = seen, reached_at: int = at
            ) -> None:
                PLAN.point = reached
                loop_thread.call(_steps, points, reached_at, reached, seen)

            raised = _returns_promptly(call)
            if at < points:
                assert isinstance(raised, KeyboardInterrupt)
                assert seen == [at], "cancelled at the point the interrupt met"
            else:
                assert raised is None  # no interrupt: it finished
    finally:
        loop_thread.close()


# -- a manager's calls, at each of their requests, from several threads ---------------


def _write(
    twin: SyncManager[BookmarkManager],
    points: _Points,
    at: int,
    n: int,
    errors: list[BaseException | None],
) -> None:
    """One thread's add_item; thread 0's is interrupted at its request ``at``."""
    item = bookmark(f"t{at}n{n}", f"https://t{at}n{n}", "2024-01-02T00:00:00", "red")
    reached = threading.Event()
    if n == 0:
        points.aim(f"t{at}n0", at, reached.set)

    def call() -> None:
        if n == 0:
            PLAN.point = reached  # the plan of the thread that waits
        twin.add_item(item)

    errors.append(_returns_promptly(call))


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_interrupted_writes_from_several_threads_leave_a_usable_twin_and_a_sound_store(
    interruptible: None, tmp_path: Path, kind: str
) -> None:
    points = _Points(_stores(tmp_path)[kind]())
    with BookmarkManager.sync(points) as twin:
        twin.add_item(bookmark("seed", "https://seed", "2024-01-01T00:00:00", "red"))
        for at in range(1, 5):  # each request with its key: entries, claim, the commit
            errors: list[BaseException | None] = []
            threads = [
                threading.Thread(target=_write, args=(twin, points, at, n, errors))
                for n in range(3)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(PROMPTLY * 2)
            assert len(errors) == 3
            assert all(e is None or isinstance(e, KeyboardInterrupt) for e in errors), errors
            assert sum(isinstance(e, KeyboardInterrupt) for e in errors) <= 1
            points.at = None
        # the twin still serves, and the store is sound once repaired
        assert twin.get_item("seed") is not None
        twin.repair(grace=0)
        assert twin.check(grace=0).ok


def test_ctrl_c_on_the_main_thread_at_every_request_of_a_write(tmp_path: Path) -> None:
    """Real SIGINT, sent to the main thread when an add_item reaches each of its requests."""
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread() is threading.main_thread()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    points = _Points(SQLiteStorage(tmp_path / "sig.db"))
    with BookmarkManager.sync(points) as twin:
        for at in range(1, 5):
            points.aim(f"s{at}", at, lambda: signal.pthread_kill(main, signal.SIGINT))
            item = bookmark(f"s{at}", f"https://s{at}", "2024-01-02T00:00:00", "red")
            with pytest.raises(KeyboardInterrupt):
                twin.add_item(item)
            assert points.cancelled_at == at, "the request it was waiting on was cancelled"
            points.at = None
        twin.repair(grace=0)
        assert twin.check(grace=0).ok
        twin.add_item(bookmark("after", "https://after", "2024-01-03T00:00:00"))
        assert twin.get_item("after") is not None
