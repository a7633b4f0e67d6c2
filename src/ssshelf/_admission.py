"""Admission of writes on a store that queues requests of its own.

S3Storage sends at most ``max_in_flight`` requests at once; the rest wait in
its queue, first come first served.  A burst of writes would fill that queue
with the first rounds of many tries, and each try's commit would wait behind
the first rounds of the tries started after it, until its commit window ran
out.  Admission keeps that from happening: a try is admitted only when the
requests it will make fit in the store's slots beside those of the tries
already admitted, and holds them until it is over.  Under overload writes
then wait *before* they start (outside their commit window) and slow down;
they do not fail.

Tries of every manager that shares one storage object share its admission.
A store that queues nothing (memory, SQLite) has none.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import weakref
from collections.abc import AsyncIterator

from .storages.base import Storage

__all__ = ["Admission", "admission_for"]


class Admission:
    """``capacity`` request slots, taken a try at a time, first come first served."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.available = self.capacity
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @contextlib.asynccontextmanager
    async def admit(self, units: int) -> AsyncIterator[None]:
        """Hold ``units`` slots (at most the capacity) while inside."""
        units = min(max(1, units), self.capacity)
        await self._acquire(units)
        try:
            yield
        finally:
            self._release(units)

    async def _acquire(self, units: int) -> None:
        if not self._waiting and self.available >= units:
            self.available -= units
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (units, granted)
        self._waiting.append(entry)
        try:
            await granted
        except BaseException:
            if granted.done() and not granted.cancelled():
                self._release(units)  # granted just as it was cancelled: give it back
            else:
                self._waiting.remove(entry)
                self._wake()
            raise

    def _release(self, units: int) -> None:
        self.available += units
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self.available >= self._waiting[0][0]:
            units, granted = self._waiting.popleft()
            self.available -= units
            granted.set_result(None)


_ADMISSIONS: weakref.WeakKeyDictionary[
    Storage, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Admission]
] = weakref.WeakKeyDictionary()


def admission_for(storage: Storage) -> Admission | None:
    """The admission of writes on ``storage`` in the running event loop, or
    ``None`` when the store sends every request at once."""
    capacity: int | None = getattr(storage, "max_in_flight", None)
    if not capacity:
        return None
    per_loop = _ADMISSIONS.setdefault(storage, weakref.WeakKeyDictionary())
    loop = asyncio.get_running_loop()
    found = per_loop.get(loop)
    if found is None:
        found = per_loop[loop] = Admission(capacity)
    return found
