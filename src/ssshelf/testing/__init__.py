"""Storage wrappers for tests and measurements: counting, latency, faults, a client queue.

Each wraps any :class:`~ssshelf.storages.base.Storage` and is one itself, so
they stack: ``CountingStorage(LatencyStorage(SQLiteStorage(path), 0.02))``;
each keeps the capabilities of what it wraps (``put_many``, ``get_many``…).
Since every storage method is one call, "the N-th request" means the same
thing on every backend (``CountingStorage`` alone tells a ``get_many`` that
S3 sends as one GET a key from one that is a single request).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from ..errors import OutcomeUnknown, StorageUnavailable
from ..storages.base import Storage, StoredObject, SupportsGetMany, capabilities_of
from ..storages.wrapper import READ_KINDS, StorageWrapper
from .queued import QueuedStorage

T = TypeVar("T")

__all__ = [
    "CountingStorage",
    "FaultyStorage",
    "LatencyStorage",
    "QueuedStorage",
    "SimulatedCrash",
]


class CountingStorage(StorageWrapper):
    """Counts requests by kind (``get``, ``put``, ``delete``, ``delete_many``,
    ``list``, ``put_many``, ``get_many``…) and the dependent round trips they
    formed.

    A round trip is a maximal stretch of time during which at least one
    request was in flight: requests issued together (concurrently) share one,
    requests that wait for each other take one each.  A ``get_many`` counts
    as the store sees it: one ``get_many`` where the inner storage answers it
    in one request (memory, SQLite), one ``get`` a key where it sends one
    request a key (S3); one round trip either way.
    """

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.counts: Counter[str] = Counter()
        self.round_trips = 0
        self._in_flight = 0

    @property
    def total(self) -> int:
        """All requests counted so far."""
        return sum(self.counts.values())

    def reset(self) -> None:
        """Start counting from zero."""
        self.counts.clear()
        self.round_trips = 0

    async def _get_many(self, keys: Sequence[str]) -> list[StoredObject | None]:
        if capabilities_of(self.inner).get_many_in_one_request:
            return await super()._get_many(keys)
        self.counts["get"] += len(keys) - 1  # _call counts the last one
        inner = cast(SupportsGetMany, self.inner)
        return await self._call("get", None, lambda: inner.get_many(keys))

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        self.counts[kind] += 1
        if self._in_flight == 0:
            self.round_trips += 1
        self._in_flight += 1
        try:
            return await request()
        finally:
            self._in_flight -= 1


class LatencyStorage(StorageWrapper):
    """Adds a fixed delay before every request, like a distant store."""

    def __init__(self, inner: Storage, seconds: float) -> None:
        super().__init__(inner)
        self.seconds = seconds

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        await asyncio.sleep(self.seconds)
        return await request()


class SimulatedCrash(Exception):
    """Raised by :class:`FaultyStorage` for every request from the crash on."""


class FaultyStorage(StorageWrapper):
    """Injects failures.

    ``crash_after=N``: requests 1…N go through; request N+1 and every later
    one raise :class:`SimulatedCrash` without reaching the store, as if the
    process had died there.

    ``failure_rate=p``: each request independently fails with
    :class:`~ssshelf.errors.StorageUnavailable` with probability ``p``; half of
    those failures happen *after* the request reached the store (the answer
    was lost, as timeouts do in production): for a write that is
    :class:`~ssshelf.errors.OutcomeUnknown`, as the storage contract says.
    ``seed`` makes it repeatable.

    A ``get_many`` or ``put_many`` is one request here: it fails, or
    crashes, as a whole.
    """

    def __init__(
        self,
        inner: Storage,
        *,
        crash_after: int | None = None,
        failure_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(inner)
        self.crash_after = crash_after
        self.failure_rate = failure_rate
        self.requests = 0
        self.failures = 0
        self._random = random.Random(seed)

    @property
    def crashed(self) -> bool:
        """True once a request was refused because of ``crash_after``."""
        return self.crash_after is not None and self.requests > self.crash_after

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        self.requests += 1
        if self.crash_after is not None and self.requests > self.crash_after:
            raise SimulatedCrash(f"simulated crash at request {self.requests} ({kind} {key!r})")
        if self._fails():
            raise StorageUnavailable(
                f"injected transient failure before {kind}", operation=kind, key=key
            )
        result = await request()
        if self._fails():
            lost = StorageUnavailable if kind in READ_KINDS else OutcomeUnknown
            raise lost(
                f"injected transient failure after {kind} (the request landed)",
                operation=kind,
                key=key,
            )
        return result

    def _fails(self) -> bool:
        if self.failure_rate and self._random.random() < self.failure_rate / 2:
            self.failures += 1
            return True
        return False
