"""The one thread that talks to an SQLite file: group commit, one answer per request.

Requests queue up while the thread is busy; it then runs everything queued
(up to :data:`GROUP_LIMIT`) in one transaction, so a burst of writes costs
one fsync.  What a caller may rely on:

* **Each request gets its own answer.**  A request that fails, in any way,
  fails alone (its partial effects undone by a savepoint); only a failure of
  the transaction itself (SQLite rolling it back, a failed commit) fails the
  whole group, and then every request says whether it may have been applied.
* **Bounded waits.**  A request not started within ``timeout`` seconds of
  being sent (the file locked by another connection, or a long queue) fails
  with :class:`StorageUnavailable` and was not applied.
* **Cancellation.**  A request whose caller was cancelled (or timed out)
  before the thread reached it is never run.  One the thread has already
  started finishes, and its answer goes nowhere.
* **Any event loop, any thread.**  Each answer goes back to the loop that
  asked, once per group for all of that loop's requests; a loop that has
  closed in the meantime is skipped without a word.
* **It never hangs.**  If the thread stops for any reason, pending and later
  requests fail at once with a clear error, and the file is closed (its locks
  released).  At interpreter exit an open store gets :data:`EXIT_WAIT` seconds
  to finish and close its file; the thread never holds exit up longer.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ...errors import (
    OutcomeUnknown,
    SSShelfError,
    StorageClosed,
    StorageError,
    StorageUnavailable,
)
from ._codes import is_busy
from ._requests import (
    Batch,
    Put,
    PutMany,
    Request,
    TransactionLost,
    apply_all,
    rows_a_statement,
    unexpected,
)

log = logging.getLogger("ssshelf")

#: Most requests run in one transaction.
GROUP_LIMIT = 512
#: Seconds :meth:`Worker.close` waits for the thread to end once it has answered.
_LAST_ACT = 1.0
#: Seconds interpreter exit waits, in all, for open stores to close their files.
EXIT_WAIT = 2.0
#: Stands for the answer of a request that was not run (its caller gave up).
_SKIPPED = object()
_OPEN, _CLOSING, _STOPPED = "open", "closing", "stopped"


class _Stop:
    """Asks the thread to finish what is queued before it, then close the file."""

    __slots__ = ("future", "loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None, future: asyncio.Future[None] | None
    ) -> None:
        self.loop = loop
        self.future = future


class Worker:
    """Owns ``connection`` and runs every request on it, on a thread of its own."""

    def __init__(self, connection: sqlite3.Connection, *, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._db = connection
        self._rows_a_statement = rows_a_statement(connection)
        self._queue: queue.SimpleQueue[Request | _Stop] = queue.SimpleQueue()
        self._state = _OPEN
        self._transition = threading.Lock()  # guards the changes of _state
        self._failure: BaseException | None = None
        self._busy_ms = -1
        self._locked = False
        self._committing = False
        self._thread = threading.Thread(
            target=self._serve, name=f"ssshelf-sqlite:{path}", daemon=True
        )
        _LIVE.add(self)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Requests waiting for the thread (a snapshot)."""
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        """The thread is running (it stops after :meth:`stop` or a failure)."""
        return self._thread.is_alive()

    # -- the caller's side ----------------------------------------------------

    def submit(self, request: Request) -> asyncio.Future[Any]:
        """Queue ``request``; the returned future gets its answer on this loop."""
        if self._state is not _OPEN:
            raise self._unusable(request)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request.loop = loop
        request.future = future
        request.deadline = time.monotonic() + self.timeout
        self._queue.put(request)
        if self._state is _STOPPED:  # the thread ended meanwhile: it may have missed this one
            self._fail_queued()
        return future

    def stop(self) -> None:
        """Ask the thread to finish what is queued and close the file (no waiting)."""
        with self._transition:
            if self._state is not _OPEN:
                return
            self._state = _CLOSING
        self._queue.put(_Stop(None, None))

    async def close(self) -> None:
        """:meth:`stop`, then wait until the file is closed.  Safe to call twice,
        from any event loop."""
        with self._transition:
            if self._state is _STOPPED:
                return
            self._state = _CLOSING
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Stop(loop, future))
        if self._state is _STOPPED:
            self._fail_queued()
        await future
        # Answering the stop is the thread's last act: it has ended, or is
        # about to, so that the caller finds it gone (never a long wait).
        self._thread.join(_LAST_ACT)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; ``True`` if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _unusable(self, request: Request) -> StorageError:
        if self._failure is not None:
            return request.failed(
                f"the store {self.path!r} is unusable: its worker thread stopped on "
                f"{self._failure!r}; open the store again"
            )
        return request.failed(f"the store {self.path!r} is closed", kind=StorageClosed)

    # -- the thread -------------------------------------------------------------

    def _serve(self) -> None:
        stops: list[_Stop] = []
        batch: list[Request] = []
        try:
            while not stops:
                batch = self._next_batch(stops)
                if batch:
                    self._run_batch(batch)
                batch = []
        except BaseException as exc:  # a bug, or SystemExit from a request: never hang
            self._failure = exc
            log.error("ssshelf: the SQLite worker for %r stopped", self.path, exc_info=exc)
        finally:
            with self._transition:
                self._state = _STOPPED
            try:
                self._db.close()  # rolls back an open transaction, releases the locks
            except Exception as exc:
                log.warning("ssshelf: closing SQLite store %r: %s", self.path, exc)
            self._deliver(batch, [self._orphaned(r) for r in batch])
            self._fail_queued()
            for stop in stops:
                _answer_stop(stop)

    def _next_batch(self, stops: list[_Stop]) -> list[Request]:
        item = self._queue.get()
        batch: list[Request] = []
        while True:
            if isinstance(item, _Stop):
                stops.append(item)
                return batch
            batch.append(item)
            if len(batch) >= GROUP_LIMIT:
                return batch
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch

    def _run_batch(self, batch: list[Request]) -> None:
        live = [r for r in batch if not r.future.done()]
        if live:
            live = self._begin(live, any(r.writes for r in live))
        if not live:
            return
        now = time.time()
        context = Batch(
            self._db, now, datetime.fromtimestamp(now, UTC), self.path, self._rows_a_statement
        )
        outcomes: list[object]
        try:
            outcomes = self._execute(live, context)
        except Exception as exc:
            self._rollback()
            cause = (exc.__cause__ if isinstance(exc, TransactionLost) else None) or exc
            outcomes = [self._lost(r, cause) for r in live]
        else:
            self._committing = True
            failure = self._commit()
            if failure is not None:
                outcomes = [self._commit_failed(r, failure) for r in live]
        self._deliver(live, outcomes)
        self._committing = False

    def _begin(self, live: list[Request], writes: bool) -> list[Request]:
        """Start the transaction; requests past their deadline fail instead."""
        while True:
            now = time.monotonic()
            expired = [r for r in live if r.deadline <= now]
            if expired:
                self._deliver(expired, [self._expired(r) for r in expired])
                live = [r for r in live if r.deadline > now]
                if not live:
                    return live
            wait = min(r.deadline for r in live) - now
            self._set_busy_timeout(wait)
            try:
                self._db.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    reason = f"could not start a transaction in {self.path!r}: {exc}"
                    self._deliver(live, [r.failed(reason) for r in live])
                    return []
                self._locked = True
                if time.monotonic() - now < wait / 2:  # SQLite did not wait: do it here
                    time.sleep(min(0.01, wait))
                continue
            self._locked = False
            return live

    def _set_busy_timeout(self, seconds: float) -> None:
        milliseconds = max(1, int(seconds * 1000))
        if abs(milliseconds - self._busy_ms) > 10:
            self._db.execute(f"PRAGMA busy_timeout = {milliseconds}")
            self._busy_ms = milliseconds

    def _execute(self, live: list[Request], context: Batch) -> list[object]:
        """Run each request.  A stretch of writes of distinct keys (puts and
        put_many requests) is tried as one: every write applied together in a
        few statements, or, when any of them is refused or fails, nothing of
        that try kept and each request run on its own."""
        outcomes: list[object] = []
        index, count = 0, len(live)
        while index < count:
            stretch = _distinct_writes(live, index)
            if len(stretch) <= 1:
                outcomes.append(self._run_one(live[index], context))
                index += 1
                continue
            index += len(stretch)
            skipped = [r.future.done() for r in stretch]
            runnable = [r for r, skip in zip(stretch, skipped, strict=True) if not skip]
            if apply_all(context, [p for r in runnable for p in r.writes_of()]):
                outcomes.extend(
                    _SKIPPED if skip else r.applied()
                    for r, skip in zip(stretch, skipped, strict=True)
                )
            else:
                outcomes.extend(self._run_one(r, context) for r in stretch)
        return outcomes

    def _run_one(self, request: Request, context: Batch) -> object:
        if request.future.done():
            return _SKIPPED
        db = context.db
        if request.partial:
            db.execute("SAVEPOINT ssshelf_request")
        try:
            outcome = request.run(context)
        except TransactionLost:
            raise
        except Exception as exc:
            if not db.in_transaction:
                raise TransactionLost(exc) from exc
            if request.partial:
                db.execute("ROLLBACK TO ssshelf_request")
            outcome = exc if isinstance(exc, SSShelfError) else unexpected(request, exc, self.path)
        if request.partial:
            db.execute("RELEASE ssshelf_request")
        return outcome

    def _commit(self) -> sqlite3.Error | None:
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            return exc
        return None

    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as exc:  # SQLite rolls back by itself when it cannot
                log.warning("ssshelf: rollback in SQLite store %r failed: %s", self.path, exc)

    # -- answers ----------------------------------------------------------------

    def _expired(self, request: Request) -> StorageError:
        if self._locked:
            reason = "stayed locked by another connection"
        else:
            reason = "was too busy to start the request"
        return request.failed(
            f"the file {self.path!r} {reason} for over {self.timeout:g} s (timeout); not applied",
            kind=StorageUnavailable,
        )

    def _lost(self, request: Request, cause: BaseException) -> StorageError:
        error = request.failed(
            f"SQLite rolled back the transaction in {self.path!r} "
            f"({type(cause).__name__}: {cause}); not applied"
        )
        error.__cause__ = cause
        return error

    def _commit_failed(self, request: Request, cause: sqlite3.Error) -> StorageError:
        if is_busy(cause):
            error = request.failed(
                f"could not commit: {self.path!r} is locked by another connection; not applied",
                kind=StorageUnavailable,
            )
        elif request.writes:
            error = request.failed(
                f"the commit in {self.path!r} failed ({cause}); the write may or may not "
                "have been applied",
                kind=OutcomeUnknown,
            )
        else:
            error = request.failed(f"the commit in {self.path!r} failed ({cause})")
        error.__cause__ = cause
        return error

    def _orphaned(self, request: Request) -> StorageError:
        """The answer of a request of the batch the thread died in."""
        if self._committing and request.writes:
            return request.failed(
                f"the worker thread of {self.path!r} stopped on {self._failure!r} while "
                "committing; the write may or may not have been applied",
                kind=OutcomeUnknown,
            )
        return request.failed(
            f"the worker thread of {self.path!r} stopped on {self._failure!r}; not applied"
        )

    def _fail_queued(self) -> None:
        """Answer everything left in the queue: the thread will not run it."""
        left: list[Request] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Stop):
                _answer_stop(item)
            else:
                left.append(item)
        self._deliver(left, [self._unusable(r) for r in left])

    def _deliver(self, requests: Sequence[Request], outcomes: Sequence[object]) -> None:
        """Send the answers home: one callback per event loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
        for request, outcome in zip(requests, outcomes, strict=True):
            if outcome is not _SKIPPED:
                by_loop.setdefault(request.loop, []).append((request.future, outcome))
        for loop, answers in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these
                loop.call_soon_threadsafe(_settle, answers)


def _distinct_writes(live: list[Request], index: int) -> list[Put | PutMany]:
    """The requests from ``live[index]`` on that are puts or put_many
    requests writing distinct keys."""
    keys: set[bytes] = set()
    stretch: list[Put | PutMany] = []
    for request in itertools.islice(live, index, None):
        if type(request) is Put:
            if request.raw in keys:
                break
            keys.add(request.raw)
        elif type(request) is PutMany:
            if not keys.isdisjoint(request.raws):
                break
            keys |= request.raws
        else:
            break
        stretch.append(request)
    return stretch


def _settle(answers: list[tuple[asyncio.Future[Any], object]]) -> None:
    """On the caller's loop: give each waiting future its answer."""
    for future, outcome in answers:
        if future.done():  # its caller gave up
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _answer_stop(stop: _Stop) -> None:
    if stop.loop is not None and stop.future is not None:
        answers: list[tuple[asyncio.Future[Any], object]] = [(stop.future, None)]
        with contextlib.suppress(RuntimeError):
            stop.loop.call_soon_threadsafe(_settle, answers)


_LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Give open stores a moment to finish and close their files; never more."""
    workers = list(_LIVE)
    for worker in workers:
        worker.stop()
    deadline = time.monotonic() + EXIT_WAIT
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
