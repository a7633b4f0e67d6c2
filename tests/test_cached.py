"""The read cache: hits cost no request, own writes keep it exact, failures never poison it.

Most tests run on the embedded backends (``local_storage``: in-memory and an
SQLite file); the races use a gated in-memory store so the interleaving is
exact.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest

from ssshelf.errors import DeleteFailed, InvalidArgument, PreconditionFailed, StorageUnavailable
from ssshelf.storages.base import MAX_LIST_LIMIT, ListPage, Storage, StoredObject
from ssshelf.storages.cached import (
    ENTRY_OVERHEAD,
    NOT_MODIFIED,
    CachedStorage,
    CacheStats,
    ReadKeyCacheInMemory,
    Revalidated,
    RevalidatingStorage,
)
from ssshelf.storages.inmemory import InMemoryStorage


class Counting:
    """Counts the requests that reach the wrapped storage, by kind."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()
        self.max_key_length = inner.max_key_length
        self.supports_conditional_put = inner.supports_conditional_put
        self.supports_conditional_delete = inner.supports_conditional_delete
        self.closed = False

    async def get(self, key: str) -> StoredObject | None:
        self.counts["get"] += 1
        return await self.inner.get(key)

    async def put(
        self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        self.counts["put"] += 1
        return await self.inner.put(key, data, if_absent=if_absent, if_version=if_version)

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        self.counts["delete"] += 1
        await self.inner.delete(key, if_version=if_version)

    async def delete_many(self, keys: Sequence[str]) -> None:
        self.counts["delete_many"] += 1
        await self.inner.delete_many(keys)

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        self.counts["list"] += 1
        return await self.inner.list(prefix, after=after, limit=limit)

    async def close(self) -> None:
        self.closed = True
        await self.inner.close()


class Revalidating(Counting):
    """A counting store with the optional ``get_if_changed`` extension."""

    async def get_if_changed(self, key: str, version: str) -> Revalidated:
        self.counts["get_if_changed"] += 1
        obj = await self.inner.get(key)
        if obj is not None and obj.version == version:
            return NOT_MODIFIED
        return obj


class Gated(Counting):
    """Requests of the kinds in ``hold`` wait for ``gate`` (set by the test)."""

    def __init__(self, inner: Storage, *hold: str) -> None:
        super().__init__(inner)
        self.hold = set(hold)
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def _wait(self, kind: str) -> None:
        if kind in self.hold:
            self.started.set()
            await self.gate.wait()

    async def get(self, key: str) -> StoredObject | None:
        obj = await self.inner.get(key)  # read now, answer later: a slow response
        await self._wait("get")
        self.counts["get"] += 1
        return obj

    async def put(
        self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        await self._wait("put")
        return await super().put(key, data, if_absent=if_absent, if_version=if_version)

    async def get_if_changed(self, key: str, version: str) -> Revalidated:
        obj = await self.inner.get(key)
        await self._wait("get_if_changed")
        if obj is not None and obj.version == version:
            return NOT_MODIFIED
        return obj


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def counted(local_storage: Storage) -> Counting:
    return Counting(local_storage)


# -- hits and misses ------------------------------------------------------------


async def test_hits_do_not_reach_the_inner_storage(counted: Counting) -> None:
    await counted.inner.put("items/1", b"one")
    cache = CachedStorage(counted)
    first = await cache.get("items/1")
    for _ in range(5):
        again = await cache.get("items/1")
        assert again == first
    assert first is not None and first.data == b"one"
    assert counted.counts["get"] == 1
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.entries) == (5, 1, 1)
    assert stats.bytes == ENTRY_OVERHEAD + len("items/1") + 3


async def test_misses_are_not_cached_by_default(counted: Counting) -> None:
    cache = CachedStorage(counted)
    assert await cache.get("nope") is None
    assert await cache.get("nope") is None
    assert counted.counts["get"] == 2
    assert "nope" not in cache


async def test_misses_are_cached_when_asked(counted: Counting) -> None:
    cache = CachedStorage(counted, cache_misses=True)
    assert await cache.get("nope") is None
    assert await cache.get("nope") is None
    assert counted.counts["get"] == 1
    await cache.put("nope", b"now here")
    obj = await cache.get("nope")
    assert obj is not None and obj.data == b"now here"
    assert counted.counts["get"] == 1


async def test_put_caches_the_new_bytes_and_version(counted: Counting) -> None:
    cache = CachedStorage(counted)
    version = await cache.put("k", b"v1")
    obj = await cache.get("k")
    assert obj is not None and (obj.key, obj.data, obj.version) == ("k", b"v1", version)
    # The cache cannot know the store's clock for its own write: no age.
    assert obj.last_modified is None and obj.age is None
    assert counted.counts["get"] == 0
    stored = await counted.inner.get("k")
    assert stored is not None and stored.version == version


async def test_list_is_never_cached(counted: Counting) -> None:
    cache = CachedStorage(counted)
    await cache.put("p/a", b"")
    await cache.put("p/b", b"")
    for _ in range(3):
        page = await cache.list("p/", limit=10)
        assert page.keys == ["p/a", "p/b"]
    assert counted.counts["list"] == 3
    page = await cache.list("p/", after="p/a", limit=1)
    assert page.keys == ["p/b"]


# -- deletes are never served stale --------------------------------------------


async def test_delete_is_remembered_and_never_served_stale(counted: Counting) -> None:
    cache = CachedStorage(counted)
    await cache.put("k", b"old")
    assert await cache.get("k") is not None
    await cache.delete("k")
    assert await cache.get("k") is None
    assert counted.counts["get"] == 0
    assert await counted.inner.get("k") is None


class Lagging(Counting):
    """An eventually consistent store: reads keep returning a deleted object."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.ghosts: dict[str, StoredObject] = {}

    async def get(self, key: str) -> StoredObject | None:
        obj = await super().get(key)
        return obj if obj is not None else self.ghosts.get(key)

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        obj = await self.inner.get(key)
        await super().delete(key, if_version=if_version)
        if obj is not None:
            self.ghosts[key] = obj

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            obj = await self.inner.get(key)
            if obj is not None:
                self.ghosts[key] = obj
        await super().delete_many(keys)


async def test_a_lagging_store_never_shows_our_own_deletes() -> None:
    store = Lagging(InMemoryStorage())
    await store.put("a", b"A")
    await store.put("b", b"B")
    await store.put("c", b"C")
    cache = CachedStorage(store)
    assert await cache.get("a") is not None  # cached
    await cache.delete("a")
    await cache.delete_many(["b", "c"])  # b and c were never cached
    assert await store.get("a") is not None  # the store itself still shows the ghost
    assert [await cache.get(k) for k in ("a", "b", "c")] == [None, None, None]


async def test_delete_many_remembers_every_key(counted: Counting) -> None:
    cache = CachedStorage(counted)
    for key in ("a", "b", "c"):
        await cache.put(key, key.encode())
    await cache.delete_many(["a", "b", "zz-missing"])
    assert await cache.get("a") is None
    assert await cache.get("b") is None
    assert await cache.get("zz-missing") is None
    c = await cache.get("c")
    assert c is not None and c.data == b"c"
    assert counted.counts["get"] == 0


class RefusingDeletes(Counting):
    """``delete_many`` refuses the keys in ``refuse``, or fails outright with ``error``."""

    def __init__(self, inner: Storage, refuse: set[str], error: Exception | None = None) -> None:
        super().__init__(inner)
        self.refuse = refuse
        self.error = error

    async def delete_many(self, keys: Sequence[str]) -> None:
        if self.error is not None:
            raise self.error
        await super().delete_many([k for k in keys if k not in self.refuse])
        if self.refuse & set(keys):
            raise DeleteFailed("refused", failures={k: "AccessDenied" for k in self.refuse})


async def test_delete_many_partial_failure_drops_the_refused_keys() -> None:
    store = RefusingDeletes(InMemoryStorage(), {"b"})
    cache = CachedStorage(store)
    await cache.put("a", b"A")
    await cache.put("b", b"B")
    with pytest.raises(DeleteFailed):
        await cache.delete_many(["a", "b"])
    assert await cache.get("a") is None  # deleted: tombstone, no request
    assert store.counts["get"] == 0
    b = await cache.get("b")  # refused: unknown to the cache, asked again
    assert b is not None and b.data == b"B"
    assert store.counts["get"] == 1


async def test_delete_many_failure_drops_every_key() -> None:
    store = RefusingDeletes(InMemoryStorage(), set(), StorageUnavailable("down"))
    cache = CachedStorage(store)
    await cache.put("a", b"A")
    with pytest.raises(StorageUnavailable):
        await cache.delete_many(["a"])
    assert "a" not in cache
    a = await cache.get("a")
    assert a is not None and store.counts["get"] == 1


# -- failed writes never poison the cache ----------------------------------------


async def test_failed_conditional_put_drops_the_entry(counted: Counting) -> None:
    cache = CachedStorage(counted)
    v1 = await cache.put("k", b"mine")
    v2 = await counted.inner.put("k", b"theirs")  # another process, unseen by the cache
    with pytest.raises(PreconditionFailed):
        await cache.put("k", b"stale update", if_version=v1)
    obj = await cache.get("k")
    assert obj is not None and (obj.data, obj.version) == (b"theirs", v2)
    assert counted.counts["get"] == 1


async def test_failed_if_absent_put_does_not_cache_the_rejected_bytes(counted: Counting) -> None:
    cache = CachedStorage(counted)
    await counted.inner.put("k", b"first")
    with pytest.raises(PreconditionFailed):
        await cache.put("k", b"second", if_absent=True)
    obj = await cache.get("k")
    assert obj is not None and obj.data == b"first"


async def test_failed_conditional_delete_drops_the_entry(counted: Counting) -> None:
    cache = CachedStorage(counted)
    v1 = await cache.put("k", b"mine")
    await counted.inner.put("k", b"theirs")
    with pytest.raises(PreconditionFailed):
        await cache.delete("k", if_version=v1)
    obj = await cache.get("k")
    assert obj is not None and obj.data == b"theirs"


async def test_conditional_writes_that_hold_update_the_cache(counted: Counting) -> None:
    cache = CachedStorage(counted)
    v1 = await cache.put("k", b"one", if_absent=True)
    v2 = await cache.put("k", b"two", if_version=v1)
    obj = await cache.get("k")
    assert obj is not None and (obj.data, obj.version) == (b"two", v2)
    await cache.delete("k", if_version=v2)
    assert await cache.get("k") is None
    assert counted.counts["get"] == 0


# -- eviction --------------------------------------------------------------------


async def test_eviction_by_entries_is_least_recently_used(counted: Counting) -> None:
    cache = CachedStorage(counted, max_entries=3)
    for key in ("a", "b", "c"):
        await cache.put(key, b"x")
    await cache.get("a")  # a is now the most recently used
    await cache.put("d", b"x")  # evicts b
    assert "b" not in cache
    assert all(k in cache for k in ("a", "c", "d"))
    assert len(cache) == 3 and cache.stats.evictions == 1
    await cache.get("b")
    assert counted.counts["get"] == 1
    assert "c" not in cache  # b came back, c was least recent


async def test_eviction_by_bytes(counted: Counting) -> None:
    per_entry = ENTRY_OVERHEAD + 1 + 100
    cache = CachedStorage(counted, max_bytes=per_entry * 2 + ENTRY_OVERHEAD + 1)
    for key in ("a", "b", "c"):
        await cache.put(key, b"x" * 100)
    assert len(cache) == 2 and "a" not in cache
    assert cache.stats.bytes == per_entry * 2
    await cache.put("b", b"")  # smaller now: makes room again
    await cache.put("d", b"x" * 100)
    assert all(k in cache for k in ("b", "c", "d"))


async def test_objects_larger_than_the_budget_are_not_cached(counted: Counting) -> None:
    cache = CachedStorage(counted, max_bytes=ENTRY_OVERHEAD + 50)
    await cache.put("small", b"s")
    await cache.put("big", b"b" * 100)
    assert "small" in cache and "big" not in cache
    big = await cache.get("big")
    assert big is not None and len(big.data) == 100
    assert "big" not in cache and counted.counts["get"] == 1


# -- TTL -------------------------------------------------------------------------


async def test_ttl_expiry_refetches(counted: Counting) -> None:
    clock = Clock()
    cache = CachedStorage(counted, ttl=10, clock=clock)
    await counted.inner.put("k", b"one")
    await cache.get("k")
    clock.now += 9.9
    await cache.get("k")
    assert counted.counts["get"] == 1
    await counted.inner.put("k", b"two")  # another writer
    clock.now += 0.1
    obj = await cache.get("k")
    assert obj is not None and obj.data == b"two"
    assert counted.counts["get"] == 2
    await cache.get("k")
    assert counted.counts["get"] == 2


async def test_ttl_expiry_of_a_deleted_object_drops_the_entry(counted: Counting) -> None:
    clock = Clock()
    cache = CachedStorage(counted, ttl=5, clock=clock)
    await cache.put("k", b"one")
    await counted.inner.delete("k")
    clock.now += 5
    assert await cache.get("k") is None
    assert "k" not in cache


async def test_ttl_expiry_of_a_tombstone_asks_again(counted: Counting) -> None:
    clock = Clock()
    cache = CachedStorage(counted, ttl=5, clock=clock)
    await cache.put("k", b"one")
    await cache.delete("k")
    await counted.inner.put("k", b"recreated elsewhere")
    assert await cache.get("k") is None
    clock.now += 5
    obj = await cache.get("k")
    assert obj is not None and obj.data == b"recreated elsewhere"


async def test_revalidation_uses_get_if_changed(local_storage: Storage) -> None:
    store = Revalidating(local_storage)
    assert isinstance(store, RevalidatingStorage)
    clock = Clock()
    cache = CachedStorage(store, ttl=1, clock=clock)
    version = await cache.put("k", b"one")
    clock.now += 1
    obj = await cache.get("k")  # unchanged: 304, no body
    assert obj is not None and obj.version == version
    assert store.counts == Counter({"put": 1, "get_if_changed": 1})
    await cache.get("k")  # fresh again for another second
    assert store.counts["get_if_changed"] == 1
    stats = cache.stats
    assert (stats.revalidations, stats.not_modified) == (1, 1)

    v2 = await store.inner.put("k", b"two")
    clock.now += 1
    obj = await cache.get("k")
    assert obj is not None and (obj.data, obj.version) == (b"two", v2)
    await cache.get("k")
    assert store.counts["get_if_changed"] == 2 and store.counts["get"] == 0

    await store.inner.delete("k")
    clock.now += 1
    assert await cache.get("k") is None
    assert "k" not in cache


async def test_revalidation_remembers_a_gone_object_with_cache_misses(
    local_storage: Storage,
) -> None:
    store = Revalidating(local_storage)
    clock = Clock()
    cache = CachedStorage(store, ttl=1, clock=clock, cache_misses=True)
    await cache.put("k", b"one")
    await store.inner.delete("k")
    clock.now += 1
    assert await cache.get("k") is None
    assert await cache.get("k") is None
    assert store.counts["get_if_changed"] == 1 and store.counts["get"] == 0


async def test_a_storage_without_the_extension_is_refetched() -> None:
    store = Counting(InMemoryStorage())
    assert not isinstance(store, RevalidatingStorage)
    clock = Clock()
    cache = CachedStorage(store, ttl=1, clock=clock)
    await cache.put("k", b"one")
    clock.now += 1
    await cache.get("k")
    assert store.counts["get"] == 1


# -- races -----------------------------------------------------------------------


async def test_a_read_in_flight_during_a_write_is_not_stored() -> None:
    store = Gated(InMemoryStorage(), "get")
    await store.inner.put("k", b"old")
    cache = CachedStorage(store)
    reader = asyncio.create_task(cache.get("k"))
    await store.started.wait()  # the read has seen b"old" and waits to answer
    await cache.put("k", b"new")
    store.gate.set()
    old = await reader
    assert old is not None and old.data == b"old"  # began before the write: fine
    now = await cache.get("k")
    assert now is not None and now.data == b"new"


async def test_a_read_in_flight_during_a_delete_is_not_stored() -> None:
    store = Gated(InMemoryStorage(), "get")
    await store.inner.put("k", b"old")
    cache = CachedStorage(store)
    readers = [asyncio.create_task(cache.get("k")) for _ in range(2)]
    await store.started.wait()
    await cache.delete("k")
    store.gate.set()
    await asyncio.gather(*readers)
    assert await cache.get("k") is None


async def test_concurrent_writes_of_one_key_drop_the_entry() -> None:
    store = Gated(InMemoryStorage(), "put")
    cache = CachedStorage(store)
    first = asyncio.create_task(cache.put("k", b"one"))
    second = asyncio.create_task(cache.put("k", b"two"))
    await store.started.wait()
    store.gate.set()
    await asyncio.gather(first, second)
    assert "k" not in cache
    obj = await cache.get("k")
    assert obj is not None and obj.data == b"two"


async def test_a_delete_overlapping_a_put_drops_the_entry() -> None:
    store = Gated(InMemoryStorage(), "put")
    cache = CachedStorage(store)
    put = asyncio.create_task(cache.put("k", b"one"))
    await store.started.wait()
    await cache.delete("k")
    assert "k" not in cache
    store.gate.set()
    await put
    assert "k" not in cache


async def test_a_revalidation_in_flight_during_a_write_is_not_stored() -> None:
    for changed_elsewhere in (False, True):
        store = Gated(InMemoryStorage(), "get_if_changed")
        clock = Clock()
        cache = CachedStorage(store, ttl=1, clock=clock)
        await cache.put("k", b"one")
        if changed_elsewhere:
            await store.inner.put("k", b"elsewhere")
        clock.now += 1
        reader = asyncio.create_task(cache.get("k"))
        await store.started.wait()
        await cache.put("k", b"mine")
        store.gate.set()
        await reader
        obj = await cache.get("k")
        assert obj is not None and obj.data == b"mine"


async def test_clear_and_invalidate_stop_reads_in_flight_from_storing() -> None:
    store = Gated(InMemoryStorage(), "get")
    await store.inner.put("a", b"A")
    await store.inner.put("b", b"B")
    cache = CachedStorage(store)
    reader_a = asyncio.create_task(cache.get("a"))
    reader_b = asyncio.create_task(cache.get("b"))
    await store.started.wait()
    await asyncio.sleep(0)
    cache.invalidate("a")
    cache.invalidate("not-in-flight")
    cache.clear()
    store.gate.set()
    await asyncio.gather(reader_a, reader_b)
    assert len(cache) == 0 and cache.stats == CacheStats()


async def test_a_failed_read_stores_nothing() -> None:
    class Down(Counting):
        async def get(self, key: str) -> StoredObject | None:
            raise StorageUnavailable("down", operation="get", key=key)

    cache = CachedStorage(Down(InMemoryStorage()))
    with pytest.raises(StorageUnavailable):
        await cache.get("k")
    assert "k" not in cache


# -- configuration and the rest of the contract ------------------------------------


async def test_should_cache_narrows_what_is_kept(counted: Counting) -> None:
    cache = CachedStorage(counted, should_cache=lambda key: key.startswith("items/"))
    await cache.put("items/1", b"item")
    await cache.put("c/all/1", b"")
    await cache.get("items/1")
    await cache.get("c/all/1")
    await cache.get("c/all/1")
    assert counted.counts["get"] == 2 and len(cache) == 1
    await cache.delete("c/all/1")
    await cache.delete_many(["items/1", "c/other"])
    assert await cache.get("items/1") is None
    assert counted.counts["get"] == 2 and "items/1" in cache


async def test_attributes_are_forwarded_and_close_closes_inner(counted: Counting) -> None:
    cache = CachedStorage(counted)
    assert cache.max_key_length == counted.max_key_length
    assert cache.supports_conditional_put is counted.supports_conditional_put
    assert cache.supports_conditional_delete is counted.supports_conditional_delete
    assert isinstance(cache, Storage)
    await cache.put("k", b"v")
    await cache.close()
    assert counted.closed and len(cache) == 0


def test_the_seed_name_still_works() -> None:
    assert ReadKeyCacheInMemory is CachedStorage


@pytest.mark.parametrize(
    "kwargs",
    [{"max_entries": 0}, {"max_bytes": 0}, {"ttl": 0}, {"ttl": -1.0}],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidArgument):
        CachedStorage(InMemoryStorage(), **kwargs)  # type: ignore[arg-type]
