"""StorageWrapper: the base of every storage middleware (cache, retries, counters…)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .base import MAX_LIST_LIMIT, ListPage, Storage, StoredObject, read_fresh

T = TypeVar("T")


class StorageWrapper:
    """Forwards every request to ``inner`` through :meth:`_call`, the one hook
    a subclass overrides to observe, delay or fail requests."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    @property
    def max_key_length(self) -> int:
        return self.inner.max_key_length

    @property
    def supports_conditional_put(self) -> bool:
        return self.inner.supports_conditional_put

    @property
    def supports_conditional_delete(self) -> bool:
        return self.inner.supports_conditional_delete

    @property
    def max_in_flight(self) -> int | None:
        """Most requests the store below sends at once, when it queues the rest."""
        found: int | None = getattr(self.inner, "max_in_flight", None)
        return found

    @property
    def caches_reads(self) -> bool:
        """True when some layer may answer ``get`` from memory (see :func:`~.base.read_fresh`)."""
        return bool(getattr(self.inner, "caches_reads", False))

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        """Make one request (``kind`` is the method name, ``key`` its key or prefix)."""
        return await request()

    async def get(self, key: str) -> StoredObject | None:
        return await self._call("get", key, lambda: self.inner.get(key))

    async def get_fresh(self, key: str) -> StoredObject | None:
        """``get`` that no cache below may answer (see :func:`~.base.read_fresh`)."""
        return await self._call("get", key, lambda: read_fresh(self.inner, key))

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        return await self._call(
            "put",
            key,
            lambda: self.inner.put(key, data, if_absent=if_absent, if_version=if_version),
        )

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        await self._call("delete", key, lambda: self.inner.delete(key, if_version=if_version))

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self._call("delete_many", None, lambda: self.inner.delete_many(keys))

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        return await self._call(
            "list", prefix, lambda: self.inner.list(prefix, after=after, limit=limit)
        )

    async def close(self) -> None:
        await self.inner.close()
