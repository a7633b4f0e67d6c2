"""StorageWrapper: the base of every storage middleware (cache, retries, counters…).

A wrapper is a storage in front of another (``inner``).  It forwards every
request, optional ones included, and the inner storage's capabilities, so
that what it wraps keeps ``put_many``, ``get_many`` and any capability added
later; a subclass overrides only what it changes: the one
:meth:`StorageWrapper._call` hook to observe, delay or fail requests, a
request hook (``_get``, ``_put_many``, …) to answer differently, or
:attr:`StorageWrapper.capabilities` to take one away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from ..errors import PreconditionFailed
from .base import (
    Capabilities,
    ListPage,
    PutRequest,
    Revalidated,
    Storage,
    StoredObject,
    SupportsGetMany,
    SupportsPutMany,
    SupportsRevalidation,
    capabilities_of,
    read_fresh,
)
from .common import BaseStorage

T = TypeVar("T")

#: The kinds of request (``_call``'s ``kind``) that change nothing in the store.
READ_KINDS = frozenset({"get", "get_many", "get_if_changed", "list"})


class StorageWrapper(BaseStorage):
    """Forwards every request to ``inner`` through :meth:`_call`, the one hook
    a subclass overrides to observe, delay or fail requests.

    Arguments are checked here too, before :meth:`_call` sees them, and a
    closed wrapper refuses requests itself (``close()`` closes ``inner``).
    """

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    @property
    def capabilities(self) -> Capabilities:
        """The inner storage's capabilities, as they are now."""
        return capabilities_of(self.inner)

    @property
    def max_key_length(self) -> int:
        return self.inner.max_key_length

    @property
    def max_put_batch(self) -> int:
        """Most writes one ``put_many`` takes (``AttributeError`` when ``inner`` has none)."""
        batch = self.capabilities.put_many
        if batch is None:
            raise AttributeError(f"{self!r} has no put_many: the storage it wraps offers none")
        return batch

    @property
    def max_in_flight(self) -> int | None:
        """Most requests the store below sends at once, when it queues the rest."""
        found: int | None = getattr(self.inner, "max_in_flight", None)
        return found

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        """Make one request (``kind`` is the method name, ``key`` its key or prefix)."""
        return await request()

    async def _get(self, key: str) -> StoredObject | None:
        return await self._call("get", key, lambda: self.inner.get(key))

    async def _get_fresh(self, key: str) -> StoredObject | None:
        return await self._call("get", key, lambda: read_fresh(self.inner, key))

    async def _get_many(self, keys: Sequence[str]) -> list[StoredObject | None]:
        inner = cast(SupportsGetMany, self.inner)
        return await self._call("get_many", None, lambda: inner.get_many(keys))

    async def _get_if_changed(self, key: str, version: str) -> Revalidated:
        inner = cast(SupportsRevalidation, self.inner)
        return await self._call("get_if_changed", key, lambda: inner.get_if_changed(key, version))

    async def _put(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> str:
        return await self._call(
            "put",
            key,
            lambda: self.inner.put(key, data, if_absent=if_absent, if_version=if_version),
        )

    async def _put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
        inner = cast(SupportsPutMany, self.inner)
        return await self._call("put_many", None, lambda: inner.put_many(puts))

    async def _delete(self, key: str, if_version: str | None) -> None:
        await self._call("delete", key, lambda: self.inner.delete(key, if_version=if_version))

    async def _delete_many(self, keys: Sequence[str]) -> None:
        await self._call("delete_many", None, lambda: self.inner.delete_many(keys))

    async def _list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        return await self._call(
            "list", prefix, lambda: self.inner.list(prefix, after=after, limit=limit)
        )

    async def _close(self) -> None:
        await self.inner.close()
