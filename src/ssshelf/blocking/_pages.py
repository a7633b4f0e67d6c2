"""Blocking iterators over async ones: one hand-over per page, never ahead.

A hand-over between threads costs tens of microseconds, so handing items
over one by one would make a blocking scan several times slower than an
async one.  Handing over fixed-size chunks would read ahead of the program:
the next page would be fetched before the caller asked for its first item,
so a caller that writes as it scans (or stops early) would see other
results, and pay other requests, than the same loop written with ``await``.

So the async iterator runs in a *gated* context: each storage request it
makes passes :class:`GatedStorage`, which lets it through only while the
caller is waiting for its next item.  Once an item is in hand the gate
closes; the next request the iterator makes (the next page's list) stops
there, and everything gathered so far - the rest of the page - goes to the
caller in one hand-over.  The request goes ahead when the caller asks for
the item after those.  Requests, and their order relative to the caller's
own calls, are exactly those of the async loop.

The gate holds a request back before it reaches the storage, so nothing
below it (a connection, a lock, a cache entry) is held while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

from ..errors import ClosedError
from ..storages.wrapper import StorageWrapper
from ._loop_thread import LoopThread

T = TypeVar("T")
Y = TypeVar("Y")

#: Most items one hand-over carries (a source that never makes a request
#: would otherwise be read to its end in one go).  A page is at most 1,000.
MAX_HANDOVER = 1000

#: The pump whose iterator runs in the current context, if any.
_current_pump: contextvars.ContextVar[PagePump[Any] | None] = contextvars.ContextVar(
    "ssshelf_blocking_pump", default=None
)


class GatedStorage(StorageWrapper):
    """Forwards every request, holding back those of an iterator whose caller
    has not asked for more yet (see the module docstring).  Attributes it
    does not define (backend extras) are the inner storage's."""

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        pump = _current_pump.get()
        if pump is not None:
            await pump.gate()
        return await request()

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return repr(self.inner)


class PagePump(Generic[Y]):
    """Runs one async iterator on the loop and hands its items over in runs.

    Lives on the loop thread: every method but the constructor is called
    there.  :meth:`next_run` waits for the next run of items; :meth:`aclose`
    stops the iterator (its pending request, if any, is never sent).
    """

    def __init__(self, source: AsyncIterable[Y]) -> None:
        self._source = aiter(source)
        self._items: list[Y] = []
        self._ended = False
        self._error: BaseException | None = None
        #: Requests may go ahead (the caller is waiting for an item).
        self._open = False
        #: The caller is waiting (set) or busy with the items it has (clear).
        self._wanted = asyncio.Event()
        self._handed: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def next_run(self) -> tuple[list[Y], bool, BaseException | None]:
        """The next items (at least one unless the iterator ended), whether it
        ended, and the exception it ended with, if any.  Not called again once
        it said the iterator ended."""
        self._handed = asyncio.get_running_loop().create_future()
        self._open = True
        self._wanted.set()
        if self._task is None:
            context = contextvars.copy_context()
            context.run(_current_pump.set, self)
            self._task = asyncio.get_running_loop().create_task(self._produce(), context=context)
        await self._handed
        items, self._items = self._items, []
        error, self._error = self._error, None
        return items, self._ended, error

    async def gate(self) -> None:
        """Wait, if the caller has items in hand, until it asks for more."""
        if not self._open:
            await self._hand_over()

    async def aclose(self) -> None:
        """Stop the iterator; requests held at the gate are never made."""
        self._ended = True
        self._open = True
        self._wanted.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()  # its clean-up closes the source
            await asyncio.gather(task, return_exceptions=True)
        self._items = []

    async def _produce(self) -> None:
        try:
            async for item in self._source:
                self._items.append(item)
                self._open = False
                if len(self._items) >= MAX_HANDOVER:
                    await self._hand_over()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the caller after the items before it
            self._error = exc
        finally:
            self._ended = True
            self._open = True  # the iterator's own clean-up is never held back
            self._wanted.set()
            try:
                await _aclose(self._source)
            finally:
                self._settle()

    async def _hand_over(self) -> None:
        self._settle()
        self._wanted.clear()
        await self._wanted.wait()

    def _settle(self) -> None:
        if self._handed is not None and not self._handed.done():
            self._handed.set_result(None)


async def _aclose(source: AsyncIterator[Any]) -> None:
    close: Callable[[], Awaitable[None]] | None = getattr(source, "aclose", None)
    if close is not None:
        await close()


def iterate(
    loop_thread: LoopThread, open_source: Callable[[], AsyncIterable[Y]], keep_alive: object
) -> Iterator[Y]:
    """A plain iterator over ``open_source()``, run on ``loop_thread``.

    The source is opened at the first ``next()``; one hand-over brings the
    items up to the iterator's next request (a scan that fits in one page
    costs one).  Closing the iterator (or dropping it, or leaving a ``for``
    loop early) stops the source.  ``keep_alive`` (the blocking manager)
    lives as long as the iterator.
    """
    pump: PagePump[Y] | None = None
    ended = False
    try:
        pump, (items, ended, error) = loop_thread.call(_open_pump, open_source)
        while True:
            yield from items
            if error is not None:
                raise error
            if ended:
                return
            items, ended, error = loop_thread.call(pump.next_run)
    finally:
        if pump is not None and not ended and not loop_thread.closed:
            if loop_thread.on_loop_thread():  # dropped by code on the loop itself
                loop_thread.call_soon(pump.aclose)
            else:
                with contextlib.suppress(ClosedError):  # closing: its tasks are cancelled
                    loop_thread.call(pump.aclose)


async def _open_pump(
    open_source: Callable[[], AsyncIterable[Y]],
) -> tuple[PagePump[Y], tuple[list[Y], bool, BaseException | None]]:
    pump = PagePump(open_source())
    try:
        return pump, await pump.next_run()
    except BaseException:  # cancelled (Ctrl-C): the caller never gets this pump
        await pump.aclose()
        raise
