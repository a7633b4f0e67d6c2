"""RetryingStorage: retry transient failures in front of any storage.

Requests failing with :class:`~ssshelf.errors.StorageUnavailable` are retried
with exponential backoff and full jitter, a bounded number of times.  A
conditional write that failed *after* reaching the store (a lost answer) can
come back "precondition failed" on its retry because its first attempt
landed; this wrapper recognises that case — the object then holds exactly the
bytes that were sent — and reports success.  (ssshelf writes distinct bytes
for every item and reservation write, which is what makes the test sound.)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import PreconditionFailed, StorageUnavailable
from .base import Storage
from .wrapper import StorageWrapper

T = TypeVar("T")


class RetryingStorage(StorageWrapper):
    """Retries :class:`.StorageUnavailable` up to ``attempts`` times in all."""

    def __init__(
        self,
        inner: Storage,
        *,
        attempts: int = 8,
        base_delay: float = 0.02,
        max_delay: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(inner)
        self._rng = rng if rng is not None else random.Random()
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return await request()
            except StorageUnavailable:
                if attempt == self.attempts:
                    raise
            await asyncio.sleep(
                self._rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
            )
        raise AssertionError("unreachable")

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        sent_once = False

        async def request() -> str:
            nonlocal sent_once
            try:
                return await self.inner.put(key, data, if_absent=if_absent, if_version=if_version)
            except PreconditionFailed:
                if not sent_once:
                    raise
                landed = await self.inner.get(key)
                if landed is not None and landed.data == data:
                    return landed.version
                raise
            finally:
                sent_once = True

        return await self._call("put", key, request)

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        sent_once = False

        async def request() -> None:
            nonlocal sent_once
            try:
                await self.inner.delete(key, if_version=if_version)
            except PreconditionFailed:
                if not sent_once or await self.inner.get(key) is not None:
                    raise
            finally:
                sent_once = True

        await self._call("delete", key, request)
