"""The storage contract: one suite, every backend (``storage`` is parametrized).

Every backend is a :class:`~ssshelf.storages.common.BaseStorage`: the optional
requests (``get_many``) and the closed state are part of what is checked.
"""

from __future__ import annotations

import asyncio

import pytest

from ssshelf.errors import InvalidArgument, InvalidKeyError, PreconditionFailed, StorageClosed
from ssshelf.storages.base import (
    MAX_GET_BATCH,
    MAX_KEY_BYTES,
    Storage,
    capabilities_of,
    read_many,
)
from ssshelf.storages.common import BaseStorage

ODD_KEYS = [
    "plain",
    "with space",
    "uni/cöde/ключ/鍵",
    "plus+sign",
    "percent%20sign",
    "colon:semi;comma,",
    "enc/sa!sb!/i11/x)00zFF!/pk!w123",
    "tilde~and*star'quote(paren)",
]


async def test_get_missing_returns_none(storage: Storage) -> None:
    assert await storage.get("nope") is None


async def test_put_then_get_round_trips_bytes_and_version(storage: Storage) -> None:
    version = await storage.put("a/b", b"\x00hello\xff")
    obj = await storage.get("a/b")
    assert obj is not None
    assert obj.data == b"\x00hello\xff"
    assert obj.version == version
    assert obj.key == "a/b"


async def test_put_empty_body(storage: Storage) -> None:
    await storage.put("empty", b"")
    obj = await storage.get("empty")
    assert obj is not None and obj.data == b""


async def test_overwrite_changes_version(storage: Storage) -> None:
    v1 = await storage.put("k", b"one")
    v2 = await storage.put("k", b"two")
    assert v1 != v2
    obj = await storage.get("k")
    assert obj is not None and obj.data == b"two" and obj.version == v2


async def test_if_absent_creates_only_once(storage: Storage) -> None:
    await storage.put("k", b"first", if_absent=True)
    with pytest.raises(PreconditionFailed) as info:
        await storage.put("k", b"second", if_absent=True)
    assert info.value.key == "k"
    obj = await storage.get("k")
    assert obj is not None and obj.data == b"first"


async def test_if_version_replaces_only_matching(storage: Storage) -> None:
    v1 = await storage.put("k", b"one")
    v2 = await storage.put("k", b"two", if_version=v1)
    with pytest.raises(PreconditionFailed):
        await storage.put("k", b"three", if_version=v1)
    obj = await storage.get("k")
    assert obj is not None and obj.data == b"two" and obj.version == v2


async def test_if_version_on_missing_key_fails(storage: Storage) -> None:
    with pytest.raises(PreconditionFailed):
        await storage.put("missing", b"x", if_version="some-version")
    assert await storage.get("missing") is None


async def test_both_conditions_is_bad_input(storage: Storage) -> None:
    with pytest.raises(InvalidArgument):
        await storage.put("k", b"x", if_absent=True, if_version="v")


async def test_concurrent_creators_exactly_one_wins(storage: Storage) -> None:
    results = await asyncio.gather(
        *(storage.put("race", str(i).encode(), if_absent=True) for i in range(16)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, PreconditionFailed)]
    assert len(winners) == 1 and len(losers) == 15
    obj = await storage.get("race")
    assert obj is not None and obj.version == winners[0]


async def test_delete_missing_is_not_an_error(storage: Storage) -> None:
    await storage.delete("never-existed")
    await storage.put("k", b"x")
    await storage.delete("k")
    await storage.delete("k")
    assert await storage.get("k") is None


async def test_conditional_delete(storage: Storage) -> None:
    if not storage.supports_conditional_delete:
        pytest.skip("this store ignores If-Match on DELETE")
    v1 = await storage.put("k", b"one")
    await storage.put("k", b"two")
    with pytest.raises(PreconditionFailed):
        await storage.delete("k", if_version=v1)
    obj = await storage.get("k")
    assert obj is not None
    await storage.delete("k", if_version=obj.version)
    assert await storage.get("k") is None


async def test_delete_many(storage: Storage) -> None:
    for i in range(5):
        await storage.put(f"d/{i}", b"x")
    await storage.delete_many(["d/0", "d/2", "d/4", "d/missing"])
    page = await storage.list("d/")
    assert page.keys == ["d/1", "d/3"]


async def test_delete_many_empty_and_oversized(storage: Storage) -> None:
    await storage.delete_many([])
    with pytest.raises(InvalidArgument):
        await storage.delete_many([f"k{i}" for i in range(1001)])


async def test_list_orders_by_utf8_bytes_and_filters_prefix(storage: Storage) -> None:
    keys = ["p/b", "p/a", "p/é", "p/Z", "p/a/b", "p/a-", "q/a", "o/z", "p/\U0001f600", "p/\uffff"]
    await asyncio.gather(*(storage.put(k, b"") for k in keys))
    page = await storage.list("p/")
    expected = sorted((k for k in keys if k.startswith("p/")), key=lambda k: k.encode())
    assert page.keys == expected
    assert page.next_after is None


async def test_list_pages_with_after(storage: Storage) -> None:
    keys = [f"k/{i:03d}" for i in range(25)]
    await asyncio.gather(*(storage.put(k, b"") for k in keys))
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await storage.list("k/", after=after, limit=10)
        pages += 1
        seen.extend(page.keys)
        if page.next_after is None:
            break
        assert len(page.keys) == 10
        after = page.next_after
    assert seen == keys
    assert pages == 3


async def test_list_exact_page_boundary_reports_no_more_when_done(storage: Storage) -> None:
    await asyncio.gather(*(storage.put(f"e/{i}", b"") for i in range(4)))
    page = await storage.list("e/", limit=4)
    assert len(page.keys) == 4
    if page.next_after is not None:  # S3 may not know; the next page must then be empty
        assert (await storage.list("e/", after=page.next_after)).keys == []


async def test_list_after_outside_prefix(storage: Storage) -> None:
    await asyncio.gather(*(storage.put(k, b"") for k in ["m/1", "m/2", "n/1"]))
    assert (await storage.list("m/", after="a")).keys == ["m/1", "m/2"]
    assert (await storage.list("m/", after="m/1")).keys == ["m/2"]
    assert (await storage.list("m/", after="z")).keys == []


async def test_list_all_without_prefix(storage: Storage) -> None:
    await asyncio.gather(*(storage.put(k, b"") for k in ["b", "a", "c"]))
    assert (await storage.list()).keys == ["a", "b", "c"]


async def test_list_limit_is_checked(storage: Storage) -> None:
    with pytest.raises(InvalidArgument):
        await storage.list("", limit=0)
    with pytest.raises(InvalidArgument):
        await storage.list("", limit=1001)


async def test_deleted_and_recreated_keys_list_once(storage: Storage) -> None:
    for _ in range(3):
        await storage.put("r/1", b"x")
        await storage.list("r/")
        await storage.delete("r/1")
        await storage.list("r/")
    await storage.put("r/1", b"x")
    assert (await storage.list("r/")).keys == ["r/1"]


@pytest.mark.parametrize("key", ODD_KEYS)
async def test_odd_keys_round_trip_through_list(storage: Storage, key: str) -> None:
    await storage.put(key, key.encode())
    assert (await storage.list(key)).keys == [key]
    obj = await storage.get(key)
    assert obj is not None and obj.data == key.encode()


async def test_invalid_keys_are_rejected_before_any_request(storage: Storage) -> None:
    with pytest.raises(InvalidKeyError):
        await storage.put("", b"x")
    with pytest.raises(InvalidKeyError):
        await storage.put("x" * (MAX_KEY_BYTES + 1), b"x")
    with pytest.raises(InvalidKeyError):
        await storage.get("\ud800")


async def test_max_key_length_key_works(storage: Storage) -> None:
    key = "m" * storage.max_key_length
    await storage.put(key, b"x")
    assert (await storage.list("mmm")).keys == [key]


# -- get_many: many keys in one call ---------------------------------------------


async def test_get_many_answers_each_key_in_order(storage: BaseStorage) -> None:
    caps = capabilities_of(storage)
    assert caps.get_many == MAX_GET_BATCH
    versions = {k: await storage.put(k, k.encode()) for k in ["m/a", "m/b", "m/é"]}
    found = await storage.get_many(["m/b", "m/missing", "m/é", "m/a", "m/b"])
    assert [o.key if o else None for o in found] == ["m/b", None, "m/é", "m/a", "m/b"]
    for obj in found:
        if obj is not None:
            assert obj.data == obj.key.encode() and obj.version == versions[obj.key]
            single = await storage.get(obj.key)
            assert single is not None and single.version == obj.version
            assert obj.last_modified == single.last_modified
    assert await storage.get_many([]) == []
    again = await read_many(storage, ["m/a", "m/zz"], concurrency=4)
    assert again[0] is not None and again[1] is None
    assert (again[0].key, again[0].version) == ("m/a", versions["m/a"])


async def test_get_many_of_odd_keys(storage: BaseStorage) -> None:
    for key in ODD_KEYS:
        await storage.put(key, key.encode())
    found = await storage.get_many(ODD_KEYS)
    assert [o.data if o else None for o in found] == [k.encode() for k in ODD_KEYS]


async def test_get_many_checks_its_keys_and_size_first(storage: BaseStorage) -> None:
    with pytest.raises(InvalidArgument):
        await storage.get_many([f"k{i}" for i in range(MAX_GET_BATCH + 1)])
    with pytest.raises(InvalidKeyError):
        await storage.get_many(["fine", ""])
    with pytest.raises(InvalidKeyError):
        await storage.get_many(["x" * (storage.max_key_length + 1)])


async def test_a_closed_storage_refuses_every_request(storage: BaseStorage) -> None:
    await storage.put("k", b"x")
    async with storage:
        pass
    for request in (
        lambda: storage.get("k"),
        lambda: storage.get_many(["k"]),
        lambda: storage.put("k", b"y"),
        lambda: storage.delete("k"),
        lambda: storage.delete_many(["k"]),
        lambda: storage.list(""),
    ):
        with pytest.raises(StorageClosed, match="closed"):
            await request()
    await storage.close()  # again: fine
