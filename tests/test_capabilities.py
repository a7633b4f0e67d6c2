"""Capabilities: one value, forwarded by every wrapper with the requests that go with it.

Every field of :class:`Capabilities` has a probe here (a request that needs
it) and every :class:`StorageWrapper` of the package a factory: a capability
added later without a probe, or a wrapper without a factory, fails
:func:`test_every_capability_and_every_wrapper_is_covered` rather than being
lost silently.  Also here: the one closed state, through every wrapper.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

import ssshelf.blocking._pages
import ssshelf.storages.cached
import ssshelf.storages.retrying
import ssshelf.testing
from ssshelf.errors import (
    InvalidArgument,
    InvalidKeyError,
    PreconditionFailed,
    StorageClosed,
    StorageUnavailable,
    UnsupportedOperation,
)
from ssshelf.storages.base import (
    MAX_GET_BATCH,
    NOT_MODIFIED,
    Capabilities,
    ListPage,
    PutRequest,
    Revalidated,
    Storage,
    StoredObject,
    SupportsPutMany,
    capabilities_of,
    read_fresh,
    read_many,
)
from ssshelf.storages.cached import CachedStorage
from ssshelf.storages.common import BaseStorage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.retrying import RetryingStorage
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.wrapper import StorageWrapper
from ssshelf.testing import CountingStorage, FaultyStorage, LatencyStorage, QueuedStorage

EVERYTHING = Capabilities(
    conditional_put=True,
    conditional_delete=True,
    put_many=7,
    get_many=5,
    get_many_in_one_request=True,
    get_if_changed=True,
    caches_reads=True,
)


class Probe(InMemoryStorage):
    """An in-memory store that names the given capabilities and records each
    request that reaches it (``put_if``: a conditional put, …)."""

    def __init__(self, capabilities: Capabilities = EVERYTHING) -> None:
        super().__init__()
        self._capabilities = capabilities
        self.seen: list[str] = []

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def _get(self, key: str) -> StoredObject | None:
        self.seen.append("get")
        return await super()._get(key)

    async def _get_many(self, keys: Sequence[str]) -> list[StoredObject | None]:
        self.seen.append("get_many")
        return await super()._get_many(keys)

    async def _get_fresh(self, key: str) -> StoredObject | None:
        self.seen.append("get_fresh")
        return await super()._get(key)

    async def _get_if_changed(self, key: str, version: str) -> Revalidated:
        self.seen.append("get_if_changed")
        found = await super()._get(key)
        return NOT_MODIFIED if found is not None and found.version == version else found

    async def _put(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> str:
        self.seen.append("put_if" if if_absent or if_version is not None else "put")
        return await super()._put(key, data, if_absent, if_version)

    async def _put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
        self.seen.append("put_many")
        answers: list[str | PreconditionFailed] = []
        for key, data, if_absent, if_version in puts:
            try:
                answers.append(await super()._put(key, data, if_absent, if_version))
            except PreconditionFailed as refused:
                answers.append(refused)
        return answers

    async def _delete(self, key: str, if_version: str | None) -> None:
        self.seen.append("delete_if" if if_version is not None else "delete")
        await super()._delete(key, if_version)

    async def _delete_many(self, keys: Sequence[str]) -> None:
        self.seen.append("delete_many")
        await super()._delete_many(keys)

    async def _list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        self.seen.append("list")
        return await super()._list(prefix, after, limit)


async def _conditional_put(s: BaseStorage) -> object:
    return await s.put("k", b"new", if_absent=True)


async def _conditional_delete(s: BaseStorage) -> object:
    return await s.delete("a", if_version="not-it")


async def _put_many(s: BaseStorage) -> object:
    return await s.put_many([PutRequest("p", b"1"), PutRequest("a", b"2", if_absent=True)])


async def _get_many(s: BaseStorage) -> object:
    return await s.get_many(["a", "missing", "a"])


async def _get_if_changed(s: BaseStorage) -> object:
    return await s.get_if_changed("a", "some-version")


async def _fresh_read(s: BaseStorage) -> object:
    return await read_fresh(s, "a")


#: For each capability: a request that needs it, and what the store must then see.
PROBES: dict[str, tuple[Callable[[BaseStorage], Awaitable[object]], str]] = {
    "conditional_put": (_conditional_put, "put_if"),
    "conditional_delete": (_conditional_delete, "delete_if"),
    "put_many": (_put_many, "put_many"),
    "get_many": (_get_many, "get_many"),
    "get_many_in_one_request": (_get_many, "get_many"),
    "get_if_changed": (_get_if_changed, "get_if_changed"),
    "caches_reads": (_fresh_read, "get_fresh"),
}

#: Every wrapper of the package, and how to make one around a storage.
WRAPPERS: dict[type[StorageWrapper], Callable[[Storage], StorageWrapper]] = {
    StorageWrapper: StorageWrapper,
    CachedStorage: CachedStorage,
    RetryingStorage: RetryingStorage,
    CountingStorage: CountingStorage,
    LatencyStorage: lambda inner: LatencyStorage(inner, 0.0),
    FaultyStorage: FaultyStorage,
    QueuedStorage: lambda inner: QueuedStorage(inner, max_in_flight=4),
    ssshelf.blocking._pages.GatedStorage: ssshelf.blocking._pages.GatedStorage,
}


def _wrappers_in_the_package() -> set[type[StorageWrapper]]:
    found: set[type[StorageWrapper]] = set()
    todo: list[type[StorageWrapper]] = [StorageWrapper]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("ssshelf."):
            found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def _expected(wrapper: type[StorageWrapper], inner: Capabilities) -> Capabilities:
    if wrapper is CachedStorage:
        return dataclasses.replace(inner, caches_reads=True)
    return inner


def test_every_capability_and_every_wrapper_is_covered() -> None:
    assert set(PROBES) == {field.name for field in dataclasses.fields(Capabilities)}
    assert _wrappers_in_the_package() <= set(WRAPPERS)


@pytest.mark.parametrize("wrapper", list(WRAPPERS), ids=lambda w: w.__name__)
@pytest.mark.parametrize("capability", list(PROBES))
async def test_a_wrapper_forwards_each_capability_and_its_request(
    wrapper: type[StorageWrapper], capability: str
) -> None:
    store = Probe()
    await store.put("a", b"old")
    wrapped = WRAPPERS[wrapper](store)
    assert wrapped.capabilities == _expected(wrapper, store.capabilities)
    assert getattr(capabilities_of(wrapped), capability) == getattr(EVERYTHING, capability)
    probe, request = PROBES[capability]
    store.seen.clear()
    with contextlib.suppress(PreconditionFailed):  # a refused condition reached the store
        await probe(wrapped)
    assert request in store.seen


@pytest.mark.parametrize("wrapper", list(WRAPPERS), ids=lambda w: w.__name__)
async def test_a_wrapper_takes_no_capability_its_inner_storage_lacks(
    wrapper: type[StorageWrapper],
) -> None:
    store = Probe(Capabilities(conditional_put=True))
    wrapped = WRAPPERS[wrapper](store)
    assert wrapped.capabilities == _expected(wrapper, store.capabilities)
    for refused in (wrapped.put_many([]), wrapped.get_many([]), wrapped.get_if_changed("a", "v")):
        with pytest.raises(UnsupportedOperation, match="capabilities"):
            await refused
    with pytest.raises(AttributeError):
        _ = wrapped.max_put_batch
    assert store.seen == []


async def test_stacked_wrappers_keep_put_many_and_get_many(tmp_path: Path) -> None:
    sqlite = SQLiteStorage(tmp_path / "s.db")
    counting = CountingStorage(sqlite)
    stack = CachedStorage(RetryingStorage(LatencyStorage(FaultyStorage(counting), 0.0)))
    caps = capabilities_of(stack)
    assert caps.put_many == sqlite.max_put_batch and caps.get_many == MAX_GET_BATCH
    assert caps.get_many_in_one_request and caps.caches_reads
    assert isinstance(stack, SupportsPutMany) and stack.max_put_batch == sqlite.max_put_batch
    answers = await stack.put_many([PutRequest(f"k{i}", b"x", if_absent=True) for i in range(50)])
    assert all(isinstance(a, str) for a in answers)
    stack.clear()
    found = await stack.get_many([f"k{i}" for i in range(60)])
    assert [obj is not None for obj in found] == [True] * 50 + [False] * 10
    assert [obj.version for obj in found if obj is not None] == answers
    assert counting.counts == {"put_many": 1, "get_many": 1}
    await stack.close()


async def test_the_cache_answers_what_it_holds_and_asks_the_rest_at_once() -> None:
    counting = CountingStorage(Probe())
    cache = CachedStorage(counting)
    await cache.put("a", b"1")
    await counting.put("b", b"2")
    counting.reset()
    first = await cache.get_many(["a", "b", "c", "b"])
    assert [o.data if o else None for o in first] == [b"1", b"2", None, b"2"]
    assert counting.counts == {"get_many": 1}  # "b" and "c" once each, in one request
    assert await cache.get_many(["a", "b"]) == first[:2]
    assert counting.counts == {"get_many": 1}
    answers = await cache.put_many([PutRequest("a", b"3"), PutRequest("d", b"4", if_absent=True)])
    assert isinstance(answers[0], str) and isinstance(answers[1], str)
    again = await cache.put_many([PutRequest("d", b"5", if_absent=True)])
    assert isinstance(again[0], PreconditionFailed)
    counting.reset()
    held = await cache.get_many(["a", "d"])
    assert [o.data if o else None for o in held] == [b"3", b"4"]
    assert counting.counts == {"get_many": 1}  # the refused write dropped "d"
    assert cache.stats.hits == 4


async def test_counting_counts_a_get_many_as_the_store_sees_it() -> None:
    class OneGetAKey(InMemoryStorage):
        @property
        def capabilities(self) -> Capabilities:
            return dataclasses.replace(super().capabilities, get_many_in_one_request=False)

    for inner, counts in ((InMemoryStorage(), {"get_many": 1}), (OneGetAKey(), {"get": 3})):
        counting = CountingStorage(inner)
        assert await counting.get_many(["a", "b", "c"]) == [None, None, None]
        assert counting.counts == counts and counting.round_trips == 1


async def test_read_many_batches_by_capability_and_falls_back_to_gets() -> None:
    store = Probe(Capabilities(get_many=3, get_many_in_one_request=True))
    await store.put("k4", b"4")
    store.seen.clear()
    keys = [f"k{i}" for i in range(8)]
    found = await read_many(store, keys, concurrency=2)
    assert [o.data if o else None for o in found] == [None] * 4 + [b"4"] + [None] * 3
    assert store.seen == ["get_many"] * 3
    plain = Probe(Capabilities())
    await plain.put("k1", b"1")
    plain.seen.clear()
    assert [o is not None for o in await read_many(plain, keys[:3], concurrency=2)] == [
        False,
        True,
        False,
    ]
    assert plain.seen == ["get"] * 3
    assert await read_many(plain, [], concurrency=2) == []


async def test_a_storage_written_to_the_protocol_alone_has_its_capabilities_worked_out() -> None:
    class Bare:
        """The five requests and the old attribute names, nothing more."""

        def __init__(self) -> None:
            self.inner = InMemoryStorage()
            self.max_key_length = 100
            self.supports_conditional_put = True
            self.supports_conditional_delete = False
            self.max_put_batch = 9

        async def get(self, key: str) -> StoredObject | None:
            return await self.inner.get(key)

        async def put(
            self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None
        ) -> str:
            return await self.inner.put(key, data, if_absent=if_absent, if_version=if_version)

        async def put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
            return [await self.put(put.key, put.data) for put in puts]

        async def delete(self, key: str, *, if_version: str | None = None) -> None:
            await self.inner.delete(key, if_version=if_version)

        async def delete_many(self, keys: Sequence[str]) -> None:
            await self.inner.delete_many(keys)

        async def list(
            self, prefix: str = "", *, after: str | None = None, limit: int = 1000
        ) -> ListPage:
            return await self.inner.list(prefix, after=after, limit=limit)

        async def close(self) -> None:
            await self.inner.close()

    bare = Bare()
    assert capabilities_of(bare) == Capabilities(conditional_put=True, put_many=9)
    wrapped = CountingStorage(bare)
    assert wrapped.max_put_batch == 9 and wrapped.max_key_length == 100
    answers = await wrapped.put_many([PutRequest("a", b"1")])
    stored = await bare.get("a")
    assert stored is not None and answers == [stored.version]
    with pytest.raises(InvalidKeyError):
        await wrapped.get("x" * 101)
    assert wrapped.counts == {"put_many": 1}


async def test_bad_batches_are_refused_before_any_request() -> None:
    store = Probe()
    wrapped = CountingStorage(store)
    with pytest.raises(InvalidArgument, match="at most 5"):
        await wrapped.get_many([f"k{i}" for i in range(6)])
    with pytest.raises(InvalidArgument, match="not one str"):
        await wrapped.get_many("abc")
    with pytest.raises(InvalidKeyError):
        await wrapped.get_many(["ok", ""])
    with pytest.raises(InvalidArgument, match="at most 7"):
        await wrapped.put_many([PutRequest(f"k{i}", b"") for i in range(8)])
    with pytest.raises(InvalidArgument, match="distinct"):
        await wrapped.put_many([PutRequest("a", b""), PutRequest("a", b"")])
    with pytest.raises(InvalidArgument, match="bytes"):
        await wrapped.put_many([PutRequest("a", "text")])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="not both"):
        await wrapped.put_many([PutRequest("a", b"", if_absent=True, if_version="v")])
    with pytest.raises(InvalidArgument, match="bytes"):
        await wrapped.put("a", 12)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match="prefix"):
        await wrapped.list(7)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match="after"):
        await wrapped.list("", after="\ud800")
    assert store.seen == [] and wrapped.total == 0
    assert await wrapped.get_many([]) == [] and await wrapped.put_many([]) == []
    await wrapped.delete_many([])
    assert store.seen == [] and wrapped.total == 0


# -- one closed state ------------------------------------------------------------------


def _every_request(s: BaseStorage) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: s.get("a"),
        lambda: s.get_fresh("a"),
        lambda: s.get_many(["a"]),
        lambda: s.get_if_changed("a", "v"),
        lambda: s.put("a", b"x"),
        lambda: s.put_many([PutRequest("a", b"x")]),
        lambda: s.delete("a"),
        lambda: s.delete_many(["a"]),
        lambda: s.list("a"),
    ]


@pytest.mark.parametrize("wrapper", list(WRAPPERS), ids=lambda w: w.__name__)
async def test_a_closed_wrapper_refuses_every_request_before_sending_it(
    wrapper: type[StorageWrapper],
) -> None:
    store = Probe()
    async with WRAPPERS[wrapper](store) as wrapped:
        await wrapped.put("a", b"x")
    assert wrapped.closed and store.closed
    store.seen.clear()
    for request in _every_request(wrapped):
        with pytest.raises(StorageClosed, match="closed"):
            await request()
    assert store.seen == []
    await wrapped.close()  # again: nothing to do


async def test_a_store_closed_under_a_wrapper_is_refused_by_the_store() -> None:
    store = Probe()
    wrapped = CountingStorage(store)
    await store.close()
    for request in _every_request(wrapped):
        with pytest.raises(StorageClosed):
            await request()
    assert store.seen == []


class Minimal(BaseStorage):
    """The five hooks only, over a dict; its capabilities name ``get_many``
    (one ``get`` a key, the base's way) and, without their hooks, ``put_many``
    and ``get_if_changed``."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.gets = 0

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(get_many=4, put_many=4, get_if_changed=True)

    async def _get(self, key: str) -> StoredObject | None:
        self.gets += 1
        if key == "broken":
            raise StorageUnavailable("down", operation="get", key=key)
        data = self.objects.get(key)
        return None if data is None else StoredObject(key, data, "v")

    async def _put(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> str:
        self.objects[key] = bytes(data)
        return "v"

    async def _delete(self, key: str, if_version: str | None) -> None:
        self.objects.pop(key, None)

    async def _delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)

    async def _list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        return ListPage(sorted(k for k in self.objects if k.startswith(prefix))[:limit])


async def test_the_base_reads_many_keys_one_get_each_and_names_what_is_missing() -> None:
    async with Minimal() as store:
        await store.put("a", b"1")
        found = await store.get_many(["a", "b", "a"])
        assert [o.data if o else None for o in found] == [b"1", None, b"1"]
        assert store.gets == 3
        with pytest.raises(StorageUnavailable, match="down"):
            await store.get_many(["a", "broken"])
        fresh = await store.get_fresh("a")
        assert fresh is not None and fresh.data == b"1"
        assert repr(store) == "Minimal()" and not store.closed
        with pytest.raises(UnsupportedOperation, match="put_many"):
            await store.put_many([PutRequest("a", b"2")])
        with pytest.raises(UnsupportedOperation, match="get_if_changed"):
            await store.get_if_changed("a", "v")
        assert (await store.list("")).keys == ["a"]
    assert store.closed
