"""One set of resources per event loop, released when that loop shuts down.

Connections, locks and events belong to the loop that made them, so an
``S3Storage`` keeps one :class:`LoopState` per loop that uses it: successive
``asyncio.run`` calls and threads each running their own loop all work.  A
loop's state is released when the loop shuts down its async generators
(``asyncio.run`` and ``asyncio.Runner`` do), by an async generator parked for
that purpose; a program that never calls ``close()`` therefore leaves no
connection open and no warning behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ._pool import ConnectionPool


@dataclass
class LoopState:
    """What one event loop uses: its connections (which bound the requests in
    flight) and a wake-up on close."""

    pool: ConnectionPool
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    lifetime: AsyncIterator[None] | None = None


class PerLoop:
    """:class:`LoopState` by event loop."""

    def __init__(self, make_pool: Callable[[], ConnectionPool]) -> None:
        self._make_pool = make_pool
        self._states: dict[asyncio.AbstractEventLoop, LoopState] = {}
        self._lock = threading.Lock()

    def get(self) -> LoopState | None:
        """The running loop's state, if it has one."""
        return self._states.get(asyncio.get_running_loop())

    async def create(self) -> LoopState:
        """The running loop's state, made now if it has none."""
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is not None:
            return state
        state = LoopState(self._make_pool())
        with self._lock:
            for old_loop in [old for old in self._states if old.is_closed()]:
                # A loop closed without shutting down its async generators.
                self._states.pop(old_loop).pool.closed = True
            self._states[loop] = state
        state.lifetime = self._lifetime(loop, state)
        await state.lifetime.__anext__()
        return state

    async def _lifetime(
        self, loop: asyncio.AbstractEventLoop, state: LoopState
    ) -> AsyncIterator[None]:
        try:
            yield
        finally:
            with self._lock:
                if self._states.get(loop) is state:
                    del self._states[loop]
            state.closing.set()
            state.pool.close()
            await asyncio.sleep(0)  # let the aborted connections finish closing

    async def close_all(self) -> None:
        """Close every loop's connections and wake its waiters (a loop in another
        thread is asked to do it itself)."""
        with self._lock:
            states = list(self._states.items())
            self._states.clear()
        current = asyncio.get_running_loop()
        for loop, state in states:
            if loop is current:
                state.closing.set()
                state.pool.close()
            elif not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed in the meantime
                    loop.call_soon_threadsafe(_close, state)
        await asyncio.sleep(0)


def _close(state: LoopState) -> None:
    state.closing.set()
    state.pool.close()
