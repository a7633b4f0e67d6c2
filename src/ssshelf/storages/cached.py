"""A read cache in front of any storage: ``CachedStorage(inner)``.

``CachedStorage`` keeps recently read objects in this process's memory so a
repeated ``get`` of the same key costs no request::

    from ssshelf.storages.cached import CachedStorage
    from ssshelf.storages.sqlite import SQLiteStorage

    storage = CachedStorage(SQLiteStorage("app.db"), max_entries=50_000, ttl=30.0)

What a caller may rely on
-------------------------

* It is a :class:`~ssshelf.storages.base.Storage`: the same five requests, the
  same errors, and the inner storage's ``max_key_length`` and capabilities
  (``put_many``, ``get_many``, conditional writes…), with ``caches_reads``.
* ``get`` of a cached key makes no request.  ``get_many`` answers the keys
  it holds and asks the inner storage for the others in one ``get_many``
  (an entry whose ``ttl`` ran out is fetched again there, not revalidated).
  The cache is an LRU bounded both by ``max_entries`` and by ``max_bytes``
  (object bytes plus key bytes plus a small fixed overhead per entry); an
  object larger than ``max_bytes`` is never cached.  With ``ttl`` (seconds),
  an entry older than that is checked again with the inner storage before it
  is served.
* Writes made **through this wrapper** keep it exact: a successful ``put``
  (or write of a ``put_many``) caches the new bytes and version; ``delete``
  and ``delete_many`` replace the entry by a tombstone, so a later ``get``
  answers ``None`` without a request and never returns the deleted copy.
  A write that fails (a conditional put that lost, a timeout whose outcome
  is unknown) drops the entry, so the next ``get`` asks the inner storage: a
  failure never leaves a wrong entry.  A ``get`` that was already in flight
  when a write completed does not store what it read; two writes of the same
  key in flight at once drop the entry rather than guess which one the store
  kept.
* ``list`` is never cached: it always goes to the inner storage.
* Misses (``None``) are cached only with ``cache_misses=True``; tombstones of
  this process's own deletes are always kept (within the same bounds).
* ``should_cache(key)`` narrows what is cached (for example only item objects,
  not index entries); other keys pass straight through.

What it does not see
--------------------

The cache knows only the writes that go through it.  A write by **another
process** (or another ``CachedStorage`` on the same store) is invisible until
the entry is evicted or its ``ttl`` runs out; without ``ttl`` a cached object
may be served stale for as long as it stays in the cache.  Use a ``ttl`` when
other writers exist, call :meth:`CachedStorage.invalidate` when you know a key
changed, and keep the cache out of read-modify-write paths that must see the
latest version: a conditional ``put`` with a stale ``if_version`` still fails
safely at the store (the cache never answers a write), it just costs a retry.

Conditional revalidation (optional extension)
---------------------------------------------

A backend may offer, besides the contract's methods, one more request (its
capabilities name ``get_if_changed``; wrappers forward it)::

    async def get_if_changed(self, key: str, version: str) -> StoredObject | None | NotModified

It returns :data:`~ssshelf.storages.base.NOT_MODIFIED` when ``key`` is still
at ``version``, the current object when it changed, or ``None`` when it is
gone.  On S3 this would be a ``GetObject`` with ``IfNoneMatch: <etag>``,
which answers ``304 Not Modified`` without a body (S3Storage does not offer
it yet).  When the inner storage has it, an entry whose
``ttl`` ran out is revalidated with it (one request, no body transferred when
nothing changed); otherwise the object is simply fetched again with ``get``.
See :class:`RevalidatingStorage`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, cast, runtime_checkable

from ..errors import DeleteFailed, InvalidArgument, PreconditionFailed
from .base import (
    NOT_MODIFIED,
    Capabilities,
    ListPage,
    NotModified,
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
from .wrapper import StorageWrapper

__all__ = [
    "NOT_MODIFIED",
    "CacheStats",
    "CachedStorage",
    "NotModified",
    "ReadKeyCacheInMemory",
    "Revalidated",
    "RevalidatingStorage",
]

#: Bytes counted for each entry on top of its key and data (bookkeeping).
ENTRY_OVERHEAD = 128


@runtime_checkable
class RevalidatingStorage(Storage, Protocol):
    """A storage that can answer "has this key changed since ``version``?" in one request."""

    async def get_if_changed(self, key: str, version: str) -> Revalidated:
        """:data:`~ssshelf.storages.base.NOT_MODIFIED` if ``key`` is at ``version``,
        else its object or ``None``."""
        ...


@dataclass(slots=True)
class CacheStats:
    """Counters since the cache was made (or last :meth:`CachedStorage.clear`)."""

    hits: int = 0
    misses: int = 0
    revalidations: int = 0
    not_modified: int = 0
    evictions: int = 0
    entries: int = 0
    bytes: int = 0


@dataclass(slots=True)
class _Entry:
    obj: StoredObject | None  # None: a cached miss or a tombstone of our own delete
    size: int
    expires_at: float | None


@dataclass(slots=True)
class _Fill:
    """A read in flight; a write completing meanwhile makes its result unsafe to store."""

    valid: bool = True


@dataclass(slots=True)
class _Write:
    """A write in flight; another write of the same key at the same time sets ``overlapped``."""

    overlapped: bool = False


@dataclass(slots=True)
class _Flights:
    fills: list[_Fill] = field(default_factory=list)
    writes: list[_Write] = field(default_factory=list)


class CachedStorage(StorageWrapper):
    """An LRU read cache in front of ``inner``; see the module docstring for its guarantees.

    :param inner: the storage to cache.
    :param max_entries: most objects (and tombstones) kept.
    :param max_bytes: most bytes kept (data + key + ``ENTRY_OVERHEAD`` (128) each).
    :param ttl: seconds an entry is served before it is checked again; ``None``
        serves it until evicted (right only when no other process writes).
    :param cache_misses: also remember keys that were not found.
    :param should_cache: only keys for which it returns true are cached.
    :param clock: monotonic seconds, for the ``ttl`` (tests inject a fake one).
    """

    def __init__(
        self,
        inner: Storage,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        ttl: float | None = None,
        cache_misses: bool = False,
        should_cache: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise InvalidArgument(f"max_entries must be at least 1, got {max_entries}")
        if max_bytes < 1:
            raise InvalidArgument(f"max_bytes must be at least 1, got {max_bytes}")
        if ttl is not None and not ttl > 0:
            raise InvalidArgument(f"ttl must be positive seconds or None, got {ttl}")
        super().__init__(inner)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.cache_misses = cache_misses
        self._should_cache = should_cache
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._flights: dict[str, _Flights] = {}
        self._stats = CacheStats()

    @property
    def capabilities(self) -> Capabilities:
        """The inner storage's, and ``caches_reads``."""
        return replace(capabilities_of(self.inner), caches_reads=True)

    # -- inspection and manual control ---------------------------------------

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counters, with the current entry and byte counts."""
        s = self._stats
        return CacheStats(
            s.hits,
            s.misses,
            s.revalidations,
            s.not_modified,
            s.evictions,
            len(self._entries),
            self._bytes,
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def invalidate(self, key: str) -> None:
        """Forget ``key`` (for example after learning another process changed it)."""
        self._drop(key)
        self._invalidate_fills(key)

    def clear(self) -> None:
        """Forget every entry and reset the counters."""
        self._entries.clear()
        self._bytes = 0
        self._stats = CacheStats()
        for flights in self._flights.values():
            for fill in flights.fills:
                fill.valid = False

    # -- the contract ----------------------------------------------------------

    async def _get(self, key: str) -> StoredObject | None:
        """The cached object when fresh, else one request to the inner storage."""
        if not self._cacheable(key):
            return await self.inner.get(key)
        entry = self._entries.get(key)
        if entry is not None:
            if entry.expires_at is None or self._clock() < entry.expires_at:
                self._entries.move_to_end(key)
                self._stats.hits += 1
                return entry.obj
            if entry.obj is not None and capabilities_of(self.inner).get_if_changed:
                return await self._revalidate(key, entry.obj)
        return await self._fill(key, self.inner.get(key))

    async def _get_fresh(self, key: str) -> StoredObject | None:
        """Ask the inner storage, whatever is cached, and cache what it answers."""
        if not self._cacheable(key):
            return await read_fresh(self.inner, key)
        return await self._fill(key, read_fresh(self.inner, key))

    async def _get_many(self, keys: Sequence[str]) -> list[StoredObject | None]:
        """The cached objects that are fresh; the others in one ``get_many``
        of the inner storage (each key once), cached as ``get`` caches."""
        answers: list[StoredObject | None] = [None] * len(keys)
        wanted: dict[str, list[int]] = {}
        now = self._clock() if self.ttl is not None else 0.0
        entries = self._entries
        for index, key in enumerate(keys):
            entry = entries.get(key) if self._cacheable(key) else None
            if entry is not None and (entry.expires_at is None or now < entry.expires_at):
                entries.move_to_end(key)
                self._stats.hits += 1
                answers[index] = entry.obj
            else:
                wanted.setdefault(key, []).append(index)
        if not wanted:
            return answers
        asked = list(wanted)
        fills = {key: self._begin_fill(key) for key in asked if self._cacheable(key)}
        self._stats.misses += len(fills)
        try:
            found = await cast(SupportsGetMany, self.inner).get_many(asked)
        finally:
            for key, fill in fills.items():
                self._end_fill(key, fill)
        for key, obj in zip(asked, found, strict=True):
            for index in wanted[key]:
                answers[index] = obj
            filled = fills.get(key)
            if filled is not None and filled.valid:
                if obj is not None or self.cache_misses:
                    self._store(key, obj)
                else:
                    self._drop(key)
        return answers

    async def _fill(self, key: str, request: Awaitable[StoredObject | None]) -> StoredObject | None:
        self._stats.misses += 1
        fill = self._begin_fill(key)
        try:
            obj = await request
        finally:
            self._end_fill(key, fill)
        if fill.valid:
            if obj is not None or self.cache_misses:
                self._store(key, obj)
            else:
                self._drop(key)
        return obj

    async def _put(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> str:
        """Write through to the inner storage; cache the new bytes once it succeeds."""
        if not self._cacheable(key):
            return await self.inner.put(key, data, if_absent=if_absent, if_version=if_version)
        write = self._begin_write(key)
        try:
            version = await self.inner.put(key, data, if_absent=if_absent, if_version=if_version)
        except BaseException:
            self._end_write(key, write)
            self._drop(key)
            raise
        self._end_write(key, write)
        if write.overlapped:
            self._drop(key)
        else:
            # The store's clock is not known here: no last_modified, so no age.
            self._store(key, StoredObject(key, bytes(data), version))
        return version

    async def _put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
        """Write through to the inner storage's ``put_many``; cache each write
        that was applied, drop each that was refused (and all when it raises)."""
        tracked = [(put, self._begin_write(put.key)) for put in puts if self._cacheable(put.key)]
        try:
            answers = await cast(SupportsPutMany, self.inner).put_many(puts)
        except BaseException:
            for put, write in tracked:
                self._end_write(put.key, write)
                self._drop(put.key)
            raise
        by_key = dict(zip((put.key for put in puts), answers, strict=True))
        for put, write in tracked:
            self._end_write(put.key, write)
            answer = by_key[put.key]
            if write.overlapped or not isinstance(answer, str):
                self._drop(put.key)
            else:
                self._store(put.key, StoredObject(put.key, bytes(put.data), answer))
        return answers

    async def _delete(self, key: str, if_version: str | None) -> None:
        """Delete through the inner storage; remember the key as deleted."""
        if not self._cacheable(key):
            await self.inner.delete(key, if_version=if_version)
            return
        write = self._begin_write(key)
        try:
            await self.inner.delete(key, if_version=if_version)
        except BaseException:
            self._end_write(key, write)
            self._drop(key)
            raise
        self._end_write(key, write)
        self._settle_delete(key, write)

    async def _delete_many(self, keys: Sequence[str]) -> None:
        """Delete through the inner storage; remember each deleted key as deleted.

        Keys named in a :class:`~ssshelf.errors.DeleteFailed` are dropped from
        the cache (their state is unknown); the others are remembered as deleted.
        """
        tracked = [(key, self._begin_write(key)) for key in keys if self._cacheable(key)]
        try:
            await self.inner.delete_many(keys)
        except DeleteFailed as exc:
            for key, write in tracked:
                self._end_write(key, write)
                if key in exc.failures:
                    self._drop(key)
                else:
                    self._settle_delete(key, write)
            raise
        except BaseException:
            for key, write in tracked:
                self._end_write(key, write)
                self._drop(key)
            raise
        for key, write in tracked:
            self._end_write(key, write)
            self._settle_delete(key, write)

    async def _list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        """Always one request to the inner storage: listings are never cached."""
        return await self.inner.list(prefix, after=after, limit=limit)

    async def _close(self) -> None:
        """Forget every entry and close the inner storage."""
        self.clear()
        await self.inner.close()

    # -- internals -------------------------------------------------------------

    def _cacheable(self, key: str) -> bool:
        return self._should_cache is None or self._should_cache(key)

    async def _revalidate(self, key: str, cached: StoredObject) -> StoredObject | None:
        self._stats.revalidations += 1
        fill = self._begin_fill(key)
        try:
            result = await cast(SupportsRevalidation, self.inner).get_if_changed(
                key, cached.version
            )
        finally:
            self._end_fill(key, fill)
        if result is NOT_MODIFIED:
            self._stats.not_modified += 1
            if fill.valid:
                self._store(key, cached)
            return cached
        if fill.valid:
            if result is not None or self.cache_misses:
                self._store(key, result)
            else:
                self._drop(key)
        return result

    def _settle_delete(self, key: str, write: _Write) -> None:
        if write.overlapped:
            self._drop(key)
        else:
            self._store(key, None)

    def _flights_of(self, key: str) -> _Flights:
        flights = self._flights.get(key)
        if flights is None:
            flights = self._flights[key] = _Flights()
        return flights

    def _release(self, key: str, flights: _Flights) -> None:
        if not flights.fills and not flights.writes:
            del self._flights[key]

    def _begin_fill(self, key: str) -> _Fill:
        fill = _Fill()
        self._flights_of(key).fills.append(fill)
        return fill

    def _end_fill(self, key: str, fill: _Fill) -> None:
        flights = self._flights[key]
        flights.fills.remove(fill)
        self._release(key, flights)

    def _begin_write(self, key: str) -> _Write:
        write = _Write()
        flights = self._flights_of(key)
        if flights.writes:
            write.overlapped = True
            for other in flights.writes:
                other.overlapped = True
        flights.writes.append(write)
        return write

    def _end_write(self, key: str, write: _Write) -> None:
        flights = self._flights[key]
        flights.writes.remove(write)
        for fill in flights.fills:
            fill.valid = False
        self._release(key, flights)

    def _invalidate_fills(self, key: str) -> None:
        flights = self._flights.get(key)
        if flights is not None:
            for fill in flights.fills:
                fill.valid = False

    def _store(self, key: str, obj: StoredObject | None) -> None:
        size = ENTRY_OVERHEAD + len(key.encode("utf-8")) + (len(obj.data) if obj else 0)
        self._drop(key)
        if size > self.max_bytes:
            return
        expires_at = None if self.ttl is None else self._clock() + self.ttl
        self._entries[key] = _Entry(obj, size, expires_at)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size
            self._stats.evictions += 1

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size


#: The seed's name for the read cache, kept working.
ReadKeyCacheInMemory = CachedStorage
