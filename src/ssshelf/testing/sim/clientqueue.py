"""A client's own request queue: at most so many requests in flight.

A real client bounds the requests it has on the wire (``S3Storage`` by its
connection pool and ``max_in_flight``); the others wait in its queue, not
sent.  :class:`RequestQueue` models that for one simulated actor: at most
``limit`` requests sent and not answered, the rest waiting first come, first
served.  A request given up while it waits (its caller cancelled, a timeout)
is never sent; the operation it belongs to records that, and how long its
requests waited, so the checks can tell a write that failed because its own
client was busy from one a fault touched.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from ...errors import NotSent
from ...storages import sending
from .history import Op

if TYPE_CHECKING:
    from .store import Request
    from .trace import Trace

T = TypeVar("T")


class RequestQueue:
    """At most ``limit`` requests of one client in flight; the others wait, in order."""

    def __init__(
        self,
        limit: int,
        loop: asyncio.AbstractEventLoop,
        trace: Trace,
        actor: str,
        current_op: Callable[[], Op | None],
    ) -> None:
        if limit < 1:
            raise ValueError(f"a client needs at least one request in flight, got {limit}")
        self.limit = limit
        self.loop = loop
        self.trace = trace
        self.actor = actor
        self.current_op = current_op
        #: Requests sent and not answered (slots taken).
        self.busy = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        #: The most requests that ever waited at once.
        self.longest = 0

    async def send(self, send: Callable[[], Awaitable[T]], request: Request) -> T:
        """Wait for a slot (first come, first served), then ``send()`` in it.

        As S3Storage does, a request that cannot be sent by the deadline its
        caller set (:func:`ssshelf.storages.sending.send_by`) raises
        :class:`~ssshelf.errors.NotSent`, and the send is noted
        (:func:`ssshelf.storages.sending.sent`)."""
        deadline = sending.send_deadline()
        if deadline is not None and self.loop.time() >= deadline:
            self._never_sent(request, 0.0, "not sent by its deadline")
            raise NotSent(f"{request.describe()}: its deadline had passed", operation="sim")
        if self.busy < self.limit and not self._waiting:
            self.busy += 1
        else:
            await self._wait(request, deadline)
        sending.sent()
        try:
            return await send()
        finally:
            self._release()

    async def _wait(self, request: Request, deadline: float | None) -> None:
        turn: asyncio.Future[None] = self.loop.create_future()
        self._waiting.append(turn)
        self.longest = max(self.longest, len(self._waiting))
        started = self.loop.time()
        op = self.current_op()
        try:
            if deadline is None:
                await turn
            else:
                async with asyncio.timeout_at(deadline):
                    await turn
        except (asyncio.CancelledError, TimeoutError) as stopped:
            if turn.done() and not turn.cancelled():
                self._release()  # the slot came with the cancellation: pass it on
            else:
                self._waiting.remove(turn)
            waited = self.loop.time() - started
            if isinstance(stopped, TimeoutError):
                self._never_sent(request, waited, "not sent by its deadline")
                raise NotSent(
                    f"{request.describe()}: not sent by the deadline its caller set",
                    operation="sim",
                ) from None
            self._never_sent(request, waited, "never sent")
            raise
        waited = self.loop.time() - started
        if op is not None:
            op.queued += waited

    def _never_sent(self, request: Request, waited: float, what: str) -> None:
        """Record a request given up while it waited (``what`` says why)."""
        op = self.current_op()
        op_id = "-"
        if op is not None:
            op.queued += waited
            op.unsent.append(f"{request.describe()} after {waited:.6f}s")
            op_id = op.id
        self.trace.add(
            self.loop.time(),
            self.actor,
            f"{what}: {request.describe()} [{op_id}] given up after {waited:.6f}s "
            "in the client's queue",
        )

    def _release(self) -> None:
        """A request answered: its slot goes to the first one waiting."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.busy -= 1
