"""One long-lived event loop on a daemon thread, and blocking calls into it.

The shape of anyio's ``BlockingPortal``, with the standard library only.
Any thread may call :meth:`LoopThread.call`; the coroutine is created and
run on the loop thread, and the calling thread blocks until it is done.
What a caller may rely on:

* the result, or the exception the coroutine raised (same object, so same
  type and attributes, its traceback continued by the caller's frames);
* an exception (``KeyboardInterrupt`` above all) raised in the calling
  thread while it waits cancels the operation on the loop, waits for the
  cancellation to finish, then propagates: nothing of the call keeps running
  after it has returned.  Like any cancelled write, it may or may not have
  taken effect;
* a blocking call from the loop thread itself (code the loop runs: an
  ``update_item`` function, a progress callback), or from another loop
  thread that the called one is itself waiting for, raises
  :class:`~ssshelf.errors.ReentrantCallError` instead of deadlocking;
* after :meth:`close` starts, new calls raise
  :class:`~ssshelf.errors.ClosedError`; calls in flight finish first;
* the thread is a daemon: it never keeps the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar

from ..errors import ClosedError, ReentrantCallError

P = ParamSpec("P")
R = TypeVar("R")

#: Longest a blocked caller waits before looking at its pending signals.
_WAIT_SLICE = 0.1
#: Serialises the "who waits for whom" checks between loop threads.
_waits_lock = threading.Lock()
#: The LoopThread whose loop runs on the current thread, if any.
_this_thread = threading.local()


class _Call(Generic[R]):
    """One call's hand-off: started on the loop, waited for by the caller.

    ``_finished`` is a plain lock, acquired at creation and released on the
    loop thread when the outcome is known: the cheapest wake-up there is.
    ``_start``, ``_finish`` and ``_cancel`` all run on the loop thread, in the
    order they were scheduled, so they never race; ``_done`` (set there
    before the release) tells ``_cancel`` that the outcome came first.
    """

    __slots__ = ("_cancelled", "_done", "_error", "_finished", "_result", "_started", "_task")

    #: Makes the hand-off lock (a test may interrupt its waits at chosen points).
    new_lock = staticmethod(threading.Lock)

    def __init__(self) -> None:
        self._finished = self.new_lock()
        self._finished.acquire()
        self._started = False
        self._cancelled = False
        self._done = False
        self._task: asyncio.Future[R] | None = None
        self._result: R | None = None
        self._error: BaseException | None = None

    # -- on the calling thread ------------------------------------------------

    def run(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], args: Any, kwargs: Any
    ) -> R:
        """Have the loop run ``fn(*args, **kwargs)``; wait for its outcome."""
        try:
            loop.call_soon_threadsafe(self._start, fn, args, kwargs)
            # In slices: a signal that arrives just before a wait begins does
            # not interrupt that wait, only the next one (Ctrl-C is never missed).
            while not self._finished.acquire(timeout=_WAIT_SLICE):
                pass
        except BaseException:
            if loop.is_closed():
                raise
            # Interrupted (Ctrl-C), wherever it landed — even just after the
            # wait above returned: cancel on the loop and wait until that is
            # over, so that nothing of this call outlives it (``_cancel``
            # lets this wait through when the outcome was in already).  A
            # second interrupt stops this wait too.
            loop.call_soon_threadsafe(self._cancel)
            self._finished.acquire()
            raise
        error, self._error = self._error, None
        if error is not None:
            try:
                raise error
            finally:
                del error  # no cycle through the traceback's frames
        return self._result  # type: ignore[return-value]  # set when no error

    # -- on the loop thread ---------------------------------------------------

    def _start(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        if self._cancelled:
            return  # _cancel has released the caller already
        self._started = True
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # the caller gets it, whatever it is
            self._error = exc
            self._release()
            return
        if not inspect.isawaitable(result):
            self._result = result
            self._release()
            return
        self._task = task = asyncio.ensure_future(result)
        task.add_done_callback(self._finish)

    def _cancel(self) -> None:
        if self._done:
            # The outcome was in before the interrupt: the caller may have
            # taken the lock already and now waits for it again.  Let it
            # through (if it has not taken it yet, the lock is free anyway).
            with contextlib.suppress(RuntimeError):
                self._finished.release()
            return
        if self._cancelled:
            return
        self._cancelled = True
        if not self._started:
            self._error = asyncio.CancelledError()
            self._release()
        elif self._task is not None:
            self._task.cancel()  # _finish releases the caller

    def _finish(self, task: asyncio.Future[R]) -> None:
        if task.cancelled():
            self._error = asyncio.CancelledError()
        elif (error := task.exception()) is not None:
            self._error = error
        else:
            self._result = task.result()
        self._release()

    def _release(self) -> None:
        self._done = True
        self._finished.release()


class LoopThread:
    """An event loop running on its own daemon thread until :meth:`close`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._loop.set_default_executor(_ExitSafeExecutor(thread_name_prefix=f"{name}:executor"))
        self._state = threading.Condition()
        self._closing = False
        self._in_flight = 0
        #: The loop thread this one's loop thread is blocked on, if any.
        self._waiting_for: LoopThread | None = None
        #: The process the thread runs in: a forked child has none of it.
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has started."""
        return self._closing

    def on_loop_thread(self) -> bool:
        """True when the caller runs on this loop's thread."""
        return getattr(_this_thread, "owner", None) is self

    def call(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` on the loop and return its result."""
        self._refuse_in_forked_child()
        caller: LoopThread | None = getattr(_this_thread, "owner", None)
        try:
            if caller is not None:
                self._refuse_deadlock(caller, fn)
            with self._state:
                if self._closing:
                    raise ClosedError(f"{self.name} is closed; open a new blocking manager")
                self._in_flight += 1
            try:
                call: _Call[R] = _Call()
                try:
                    return call.run(self._loop, fn, args, kwargs)
                except RuntimeError:
                    if self._loop.is_closed():  # shut down under it, at interpreter exit
                        raise ClosedError(f"{self.name} is closed") from None
                    raise
            finally:
                with self._state:
                    self._in_flight -= 1
                    if self._closing and not self._in_flight:
                        self._state.notify_all()
        finally:
            if caller is not None:
                caller._waiting_for = None

    def _refuse_in_forked_child(self) -> None:
        # Checked before taking any lock: one held at the fork stays held here.
        if os.getpid() != self._pid:
            raise ClosedError(
                f"{self.name} was opened in process {self._pid}, before this process "
                "forked, and its loop thread does not exist here; open the blocking "
                "manager in each process after the fork (in the worker, or on first use)"
            )

    def _refuse_deadlock(self, caller: LoopThread, fn: object) -> None:
        """Refuse a call whose wait would never end: from this loop's own
        thread, or closing a cycle of loop threads waiting for each other."""
        with _waits_lock:
            waited: LoopThread | None = self
            while waited is not None:
                if waited is caller:
                    raise ReentrantCallError(_reentrant_message(fn))
                waited = waited._waiting_for
            caller._waiting_for = self

    def call_soon(self, fn: Callable[[], Awaitable[object]]) -> None:
        """Start ``fn()`` on the loop without waiting for it (a best effort:
        nothing happens once the loop has stopped).  Its outcome is dropped."""

        def start() -> None:
            task = asyncio.ensure_future(fn())
            task.add_done_callback(_drop_outcome)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to do
            self._loop.call_soon_threadsafe(start)

    def close(self, last: Callable[[], Awaitable[None]] | None = None) -> None:
        """Refuse new calls, let those in flight finish, run ``last()`` on the
        loop, then stop the loop and join its thread.  Idempotent; an error of
        ``last()`` is raised after the thread has stopped."""
        if os.getpid() != self._pid:
            self._closing = True  # nothing of it runs in this process
            return
        if self.on_loop_thread():
            raise ReentrantCallError(
                "close() was called from code the blocking manager runs on its own "
                "event loop (an update_item function or a callback); close it after "
                "the call that runs that code has returned"
            )
        caller: LoopThread | None = getattr(_this_thread, "owner", None)
        if caller is None:
            self._close(last)
            return
        try:  # another twin's loop thread: waiting here may close a cycle too
            self._refuse_deadlock(caller, self.close)
            self._close(last)
        finally:
            caller._waiting_for = None

    def _close(self, last: Callable[[], Awaitable[None]] | None) -> None:
        with self._state:
            if self._closing:
                first = False
            else:
                first = self._closing = True
            while self._in_flight:
                self._state.wait()
        if not first:
            self._thread.join()
            return
        failure: Exception | None = None
        try:
            if last is not None:
                closing: _Call[None] = _Call()
                try:
                    closing.run(self._loop, last, (), {})
                except Exception as exc:  # raised once the thread is gone
                    failure = exc
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        if failure is not None:
            raise failure

    def close_soon(self, last: Callable[[], Awaitable[None]] | None, timeout: float) -> None:
        """For a blocking manager nobody closed (garbage or interpreter exit):
        as :meth:`close`, but never raising and never waiting longer than
        ``timeout`` seconds; from the loop thread itself, without waiting."""
        if os.getpid() != self._pid:
            self._closing = True
            return
        with self._state:
            if self._closing:
                return
            self._closing = True

        async def shut_down() -> None:
            try:
                if last is not None:
                    await last()
            finally:
                self._loop.stop()

        self.call_soon(shut_down)
        if not self.on_loop_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        _this_thread.owner = self
        loop = self._loop
        asyncio.set_event_loop(loop)
        while True:
            try:
                loop.run_forever()
                break
            except BaseException:
                # KeyboardInterrupt or SystemExit raised by code a call ran
                # (an update_item function): asyncio re-raises them out of the
                # loop after handing them to that call's caller.  Keep serving.
                continue
        try:
            _cancel_remaining_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


class _ExitSafeExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor (``asyncio.to_thread``, DNS look-ups).

    At interpreter exit thread pools take no more work, yet closing a
    storage may need some (``SQLiteStorage.close`` joins its worker in a
    thread).  Then the work runs right here, on the loop thread: nothing else
    is left to run there.
    """

    def submit(
        self, fn: Callable[..., R], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[R]:
        try:
            return super().submit(fn, *args, **kwargs)
        except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
            future: concurrent.futures.Future[R] = concurrent.futures.Future()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)
            return future


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still running (abandoned iterators, calls of a manager
    closed at exit) and let it finish, as ``asyncio.run`` does on its way out."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def _drop_outcome(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise


def _reentrant_message(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return (
        f"blocking call of {name}() from code that the blocking manager runs on its "
        "event loop (an update_item function, a progress callback, an iterable "
        "passed in, or another blocking manager's such code): it would wait for "
        "itself. Pass an async function to update_item to await the async manager "
        "(m.manager) there, or make the call after the outer one has returned."
    )
