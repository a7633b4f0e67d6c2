"""QueuedStorage: a client with a queue of its own in front of any storage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..storages import sending
from ..storages.base import Storage
from ..storages.wrapper import StorageWrapper

T = TypeVar("T")


class QueuedStorage(StorageWrapper):
    """Sends at most ``max_in_flight`` requests at once, each taking ``seconds``;
    the others wait their turn, first come first served, as S3Storage's
    requests wait for one of its connection slots.  A request that cannot be
    sent by the deadline its caller set (:func:`ssshelf.storages.sending.send_by`)
    raises :class:`~ssshelf.errors.NotSent` and changes nothing.  Shows, on
    any backend, what a burst of writes does to a client's own queue."""

    def __init__(self, inner: Storage, *, max_in_flight: int, seconds: float = 0.0) -> None:
        super().__init__(inner)
        self._max_in_flight = max_in_flight
        self.seconds = seconds
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self._max_in_flight)
        async with sending.slot(slots, kind):
            if self.seconds:
                await asyncio.sleep(self.seconds)
            return await request()
