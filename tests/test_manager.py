"""CManager on every backend: writes keep collections right, reads verify."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ssshelf import CManager, Collection, Desc, IManager
from ssshelf.errors import (
    AlreadyExistsError,
    BulkWriteError,
    ConfigurationError,
    ConflictError,
    CorruptItemError,
    InvalidArgument,
    InvalidKeyError,
    SerializationError,
)
from ssshelf.storages.base import Storage, capabilities_of
from ssshelf.testing import CountingStorage, LatencyStorage

from .models import BookmarkManager, Counter, bookmark


async def _pks(manager: BookmarkManager, name: str, **kwargs: Any) -> list[str]:
    collection = manager.collections[name]
    return [item["pk"] async for item in collection.iter_items(**kwargs)]


async def test_create_get_replace_remove(storage: Storage) -> None:
    m = BookmarkManager(storage)
    item = bookmark("1", "https://a.example", "2024-01-01T00:00:00", "py")
    v1 = await m.add_item(item)
    assert await m.get_item("1") == item
    found = await m.get_item_with_version("1")
    assert found is not None and found.version == v1 and found.item == item
    v2 = await m.add_item({**item, "title": "A"})
    assert v2 != v1
    assert (await m.get_item("1"))["title"] == "A"
    assert await m.remove_item("1") is True
    assert await m.remove_item("1") is False
    assert await m.get_item("1") is None
    # The removed item leaves a tombstone (a late create of "1" cannot land);
    # where the store cannot delete conditionally, a released marker too.
    left = (await storage.list("bookmarks/")).keys
    marker = (
        []
        if storage.supports_conditional_delete
        else ["bookmarks/u/by_url/shttps=3A.2F.2Fa.2Eexample!"]
    )
    assert left == ["bookmarks/items/1", *marker]
    report = await m.check()
    assert report.ok and report.tombstones == 1 and report.items_scanned == 0
    repaired = await m.repair(grace=0)  # old enough: nothing can land on it any more
    purged = 1 if storage.supports_conditional_delete else 0
    assert repaired.purged_tombstones == purged
    assert len((await storage.list("bookmarks/")).keys) == len(left) - purged


async def test_collections_order_prefix_and_multi_keys(storage: Storage) -> None:
    m = BookmarkManager(storage)
    await m.add_items(
        [
            bookmark("a", "https://a", "2024-01-01T00:00:00", "py", "db"),
            bookmark("b", "https://b", "2024-03-01T00:00:00", "py"),
            bookmark("c", "https://c", "2024-02-01T00:00:00", "db", "pyx"),
        ]
    )
    assert await _pks(m, "newest") == ["b", "c", "a"]
    assert await _pks(m, "by_tag", prefix_parts=["py"]) == ["b", "a"]
    assert await _pks(m, "by_tag", prefix_parts=["db"]) == ["c", "a"]
    assert await _pks(m, "by_tag", prefix_parts=["pyx"]) == ["c"]
    keys = await m.by_tag.get_keys()
    assert [key[0] for key, _ in keys["entries"]] == ["db", "db", "py", "py", "pyx"]
    assert keys["keys"] == ["c", "a", "b", "a", "c"]


async def test_paging_with_after_and_bounds(storage: Storage) -> None:
    m = BookmarkManager(storage)
    await m.add_items(
        bookmark(f"{i:02d}", f"https://x/{i}", f"2024-01-{i + 1:02d}T00:00:00") for i in range(25)
    )
    pages = []
    resp = await m.newest.get_items(max_keys=10)
    pages.append(resp["items"])
    while resp["after"] is not None:
        resp = await m.newest.get_items(max_keys=10, after=resp["after"])
        pages.append(resp["items"])
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i["pk"] for p in pages for i in p] == [f"{i:02d}" for i in range(24, -1, -1)]
    from datetime import datetime

    start = (Desc(datetime(2024, 1, 20)),)
    end = (Desc(datetime(2024, 1, 10)),)
    bounded = await _pks(m, "newest", start=start, end=end, page_size=4)
    assert bounded == [f"{i:02d}" for i in range(19, 9, -1)]


async def test_seed_shape_of_get_keys_and_bad_page_arguments(storage: Storage) -> None:
    m = BookmarkManager(storage)
    await m.add_item(bookmark("1", "https://a", "2024-01-01T00:00:00"))
    resp = await m.newest.get_keys()
    assert resp["keys"] == ["1"] and resp["after"] is None
    with pytest.raises(InvalidArgument):
        await m.newest.get_items(max_keys=0)
    with pytest.raises(InvalidArgument):
        await m.newest.get_items(after="")
    with pytest.raises(InvalidKeyError):
        await m.newest.get_items(prefix_parts=[1.5])
    with pytest.raises(InvalidArgument):
        await m.newest.get_item("x")


async def test_replace_moves_entries_and_leaves_nothing_stale(storage: Storage) -> None:
    m = BookmarkManager(storage)
    item = bookmark("1", "https://a", "2024-01-01T00:00:00", "red")
    await m.add_item(item)
    await m.add_item({**item, "tags": ["blue"], "url": "https://b"})
    assert await _pks(m, "by_tag", prefix_parts=["red"]) == []
    assert await _pks(m, "by_tag", prefix_parts=["blue"]) == ["1"]
    assert await m.by_url.get_item("https://a") is None
    assert (await m.by_url.get_item("https://b"))["pk"] == "1"
    report = await m.check()
    assert report.ok, report.to_dict()
    assert report.entries_scanned == 3 and report.items_scanned == 1


async def test_optimistic_concurrency(storage: Storage) -> None:
    m = BookmarkManager(storage)
    item = bookmark("1", "https://a", "2024-01-01T00:00:00")
    v1 = await m.create_item(item)
    with pytest.raises(AlreadyExistsError):
        await m.create_item(item)
    v2 = await m.add_item({**item, "n": 1}, if_version=v1)
    with pytest.raises(ConflictError):
        await m.add_item({**item, "n": 2}, if_version=v1)
    with pytest.raises(ConflictError):
        await m.remove_item("1", if_version=v1)
    assert (await m.get_item("1"))["n"] == 1
    # Another manager (as another process would) holds no stale knowledge.
    other = BookmarkManager(storage)
    await other.add_item({**item, "n": 3}, if_version=v2)
    with pytest.raises(ConflictError):
        await m.add_item({**item, "n": 4}, if_version=v2)
    assert await m.remove_item("1") is True
    with pytest.raises(ConflictError):
        await m.remove_item("1", if_version=v2)


async def test_update_item_applies_function_and_moves_keys(storage: Storage) -> None:
    m = BookmarkManager(storage)
    await m.add_item(bookmark("1", "https://a", "2024-01-01T00:00:00", "old", clicks=0))

    def click(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "clicks": item["clicks"] + 1, "tags": ["new"]}

    async def click_in_place(item: dict[str, Any]) -> None:
        item["clicks"] += 1

    assert (await m.update_item("1", click))["clicks"] == 1
    assert (await m.update_item("1", click_in_place))["clicks"] == 2
    assert await _pks(m, "by_tag", prefix_parts=["new"]) == ["1"]
    assert await _pks(m, "by_tag", prefix_parts=["old"]) == []
    with pytest.raises(KeyError):
        await m.update_item("missing", click)
    with pytest.raises(InvalidKeyError):
        await m.update_item("1", lambda item: {**item, "pk": "2"})
    assert (await m.check()).ok


async def test_bad_input_fails_before_any_request(storage: Storage) -> None:
    counting = CountingStorage(storage)
    m = BookmarkManager(counting)
    with pytest.raises(InvalidKeyError) as info:
        await m.add_item(bookmark("1", "x" * 2000, "2024-01-01T00:00:00"))
    assert info.value.collection == "by_url"
    with pytest.raises(InvalidKeyError):
        await m.add_item(bookmark("", "https://a", "2024-01-01T00:00:00"))
    with pytest.raises(InvalidKeyError) as info:
        await m.add_item({"pk": "1", "url": "u", "created": "not a date", "tags": []})
    assert info.value.collection == "newest"
    with pytest.raises(SerializationError):
        await m.add_item(bookmark("1", "https://a", "2024-01-01T00:00:00", extra=object()))
    with pytest.raises(InvalidKeyError):
        await m.add_item({"no": "pk"})
    assert counting.total == 0


class _BrokenSerializer(IManager):
    def serialize_item(self, item: Any) -> bytes:
        return "not bytes"  # type: ignore[return-value]


class _Broken(CManager):
    namespace = "broken"
    item_manager = _BrokenSerializer()


async def test_serializer_must_return_bytes(local_storage: Storage) -> None:
    with pytest.raises(SerializationError, match="must return bytes"):
        await _Broken(local_storage).add_item({"pk": "1"})


async def test_corrupt_item_is_named_and_can_be_replaced(storage: Storage) -> None:
    m = Counter(storage)
    await storage.put("counters/items/1", b"garbage")
    with pytest.raises(CorruptItemError) as info:
        await m.get_item("1")
    assert info.value.key == "counters/items/1"
    with pytest.raises(CorruptItemError) as info:
        await m.get_items_by_pk(["0", "1"])
    assert info.value.key == "counters/items/1"
    await m.add_item({"pk": "1", "n": 1})
    assert await m.get_item("1") == {"pk": "1", "n": 1}


def test_manager_declaration_errors() -> None:
    class NoItems(CManager):
        pass

    with pytest.raises(ConfigurationError):
        NoItems("memory://")

    class BadNamespace(CManager):
        namespace = "has/slash"
        item_manager = IManager()

    with pytest.raises(ConfigurationError):
        BadNamespace("memory://")

    with pytest.raises(ConfigurationError):
        Collection().manager  # noqa: B018 - unbound collection


def test_inherited_collections_and_per_instance_binding() -> None:
    class Child(BookmarkManager):
        extra = ByUrlLength()

    a, b = Child("memory://"), Child("memory://")
    assert list(a.collections) == ["newest", "by_tag", "by_url", "extra"]
    assert a.newest is not b.newest and a.newest.manager is a


class ByUrlLength(Collection):
    def key(self, item: dict[str, Any]) -> Any:
        return len(item["url"])


async def test_request_counts_and_round_trips(local_storage: Storage) -> None:
    # With a latency per request, requests issued together overlap in time and
    # count as one round trip; requests that wait for each other do not.
    counting = CountingStorage(LatencyStorage(local_storage, 0.005))
    m = BookmarkManager(counting)
    item = bookmark("1", "https://a", "2024-01-01T00:00:00", "py", "db")

    await m.create_item(item)  # 4 entries + 1 reservation in parallel, then the item
    assert counting.round_trips == 2 and counting.counts == {"put": 6}

    counting.reset()
    fresh = BookmarkManager(counting)
    await fresh.get_item("1")
    assert counting.round_trips == 1 and counting.total == 1

    counting.reset()
    await m.newest.get_items()  # the page's items in one request
    assert counting.round_trips == 2 and counting.counts == {"list": 1, "get_many": 1}

    counting.reset()  # replace, known version: new entries ∥, commit, stale deletes
    await m.add_item({**item, "tags": ["go"]})
    assert counting.round_trips == 3
    assert counting.counts == {"put": 2, "delete_many": 1}

    counting.reset()  # replace by a manager that has not seen the item: read ∥ writes
    other = BookmarkManager(counting)
    await other.add_item({**item, "tags": ["rust"]})
    assert counting.round_trips == 3

    counting.reset()
    await other.remove_item("1")  # known version: delete item, then its entries
    assert counting.round_trips == 2

    counting.reset()
    await m.add_item(item)
    third = BookmarkManager(counting)
    counting.reset()
    await third.remove_item("1")  # unknown: read first
    assert counting.round_trips == 3


async def test_a_page_and_many_pks_are_read_in_one_request(local_storage: Storage) -> None:
    m = BookmarkManager(local_storage)
    await m.add_items(
        bookmark(str(i), f"https://x/{i}", f"2024-01-01T00:00:{i:02}", "t") for i in range(60)
    )
    counting = CountingStorage(local_storage)
    cold = BookmarkManager(counting)
    page = await cold.by_tag.get_items(50, prefix_parts=["t"])
    assert len(page["items"]) == 50
    assert counting.counts == {"list": 1, "get_many": 1} and counting.round_trips == 2
    counting.reset()
    found = await cold.get_items_by_pk([*(str(i) for i in range(60)), "missing", "7"])
    assert [f["pk"] if f else None for f in found] == [*(str(i) for i in range(60)), None, "7"]
    assert counting.counts == {"get_many": 1} and counting.round_trips == 1


async def test_get_items_by_pk_and_remove_items(local_storage: Storage) -> None:
    m = BookmarkManager(local_storage)
    seen: list[int] = []
    written = await m.add_items(
        (bookmark(str(i), f"https://x/{i}", "2024-01-01T00:00:00") for i in range(30)),
        progress=seen.append,
    )
    assert written == 30 and seen[-1] == 30
    found = await m.get_items_by_pk(["3", "missing", 7])
    assert [f["pk"] if f else None for f in found] == ["3", None, "7"]
    assert await m.remove_items(["1", "2", "missing"]) == 2
    assert len(await _pks(m, "newest")) == 28


async def test_bulk_load_stops_at_first_bad_item(local_storage: Storage) -> None:
    m = BookmarkManager(local_storage)
    items = [bookmark(str(i), f"https://x/{i}", "2024-01-01T00:00:00") for i in range(5)]
    items.append({"pk": "bad"})
    items.append(bookmark("after", "https://x/after", "2024-01-01T00:00:00"))
    with pytest.raises(BulkWriteError) as info:
        await m.add_items(items)
    stopped = info.value
    assert (stopped.written, stopped.index, stopped.item) == (5, 5, {"pk": "bad"})
    assert isinstance(stopped.error, InvalidKeyError) and stopped.__cause__ is stopped.error
    assert "item #5" in str(stopped) and "5 items were written" in str(stopped)
    assert await m.get_item("after") is None  # nothing after the bad item was started


async def test_reindex_builds_a_collection_added_later(local_storage: Storage) -> None:
    class Before(CManager):
        namespace = "bookmarks"
        item_manager = IManager()

    await Before(local_storage).add_items(
        bookmark(str(i), f"https://x/{i}", f"2024-01-0{i + 1}T00:00:00", "t") for i in range(3)
    )
    m = BookmarkManager(local_storage)
    assert await _pks(m, "newest") == []
    report = await m.check()
    assert report.ok  # nothing is wrong, the collection is just empty
    for name in ["newest", "by_tag", "by_url"]:
        done = await m.reindex(name)
        assert done.items_scanned == 3 and done.reindexed == 3 and done.failed == 0
    assert await _pks(m, "newest") == ["2", "1", "0"]
    assert (await m.by_url.get_item("https://x/1"))["pk"] == "1"
    again = await m.reindex("newest")
    assert again.reindexed == 0
    assert (await m.check()).ok
    with pytest.raises(InvalidArgument):
        await m.reindex("nope")


async def test_reindex_reports_items_whose_key_cannot_be_computed(local_storage: Storage) -> None:
    class Plain(CManager):
        namespace = "bookmarks"
        item_manager = IManager()

    await Plain(local_storage).add_item({"pk": "1", "created": "yesterday", "tags": []})
    report = await BookmarkManager(local_storage).reindex("newest")
    assert report.failed == 1 and "1:" in report.errors[0]


async def test_unserialisable_stored_payload_is_corrupt(local_storage: Storage) -> None:
    m = Counter(local_storage)
    await m.add_item({"pk": "1"})
    obj = await local_storage.get("counters/items/1")
    assert obj is not None
    header, _, _ = obj.data.partition(b"\n")
    await local_storage.put("counters/items/1", header + b"\n{not json")
    with pytest.raises(CorruptItemError):
        await m.get_item("1")
    report = await m.check()
    assert report.unreadable_items == 1 and not report.ok
    assert json.dumps(report.to_dict())


async def test_bulk_load_skips_reads_for_new_items_and_handles_existing_ones(
    local_storage: Storage,
) -> None:
    counting = CountingStorage(local_storage)
    m = BookmarkManager(counting)
    items = [bookmark(str(i), f"https://x/{i}", "2024-01-01T00:00:00", "a") for i in range(10)]
    await m.add_items(items)
    if capabilities_of(local_storage).put_many is not None:  # SQLite: two rounds of batches
        assert counting.counts == {"put_many": 2}
    else:  # 3 entries, 1 reservation, 1 item: no reads
        assert counting.counts == {"put": 10 * 5}
    counting.reset()
    moved = [{**item, "tags": ["b"], "url": item["url"] + "/v2"} for item in items]
    await BookmarkManager(counting).add_items(moved)  # they exist: found out, then replaced
    assert counting.counts["get"] >= 10
    fresh = BookmarkManager(local_storage)
    assert await _pks(fresh, "by_tag", prefix_parts=["a"]) == []
    assert sorted(await _pks(fresh, "by_tag", prefix_parts=["b"])) == sorted(
        str(i) for i in range(10)
    )
    assert await fresh.by_url.get_item("https://x/3") is None
    assert (await fresh.by_url.get_item("https://x/3/v2"))["pk"] == "3"
    assert (await fresh.check()).ok


def test_a_forked_child_draws_write_ids_of_its_own() -> None:
    """The default write-id generator is reseeded in a forked child: parent and
    child would otherwise draw the same next id."""
    import os

    from ssshelf.managers import WRITE_ID_RNG

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out at once
        os.write(write_end, f"{WRITE_ID_RNG.getrandbits(64):016x}".encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    assert os.waitpid(pid, 0)[1] == 0
    assert len(child_id) == 16
    assert child_id != f"{WRITE_ID_RNG.getrandbits(64):016x}"
