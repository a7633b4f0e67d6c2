"""check / repair on stores damaged behind the manager's back."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ssshelf.envelope import Reservation
from ssshelf.storages.base import Capabilities, Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.wrapper import StorageWrapper

from .consistency_support import assert_exactly_the_items_say, reservation_holders
from .models import BookmarkManager, bookmark


async def _two_items(storage: Storage) -> BookmarkManager:
    m = BookmarkManager(storage)
    await m.add_items(
        [
            bookmark("1", "https://one", "2024-01-01T00:00:00", "red"),
            bookmark("2", "https://two", "2024-01-02T00:00:00", "blue", "red"),
        ]
    )
    return m


async def test_missing_entry_and_reservation_are_restored(storage: Storage) -> None:
    m = await _two_items(storage)
    entries = (await storage.list("bookmarks/c/by_tag/")).keys
    await storage.delete(entries[0])
    await storage.delete("bookmarks/u/by_url/shttps=3A.2F.2Fone!")
    report = await m.check()  # missing objects are problems whatever their age
    assert (report.missing_entries, report.missing_reservations) == (1, 1)
    assert report.examples["missing_entries"] == [entries[0]]
    assert not report.ok
    seen: list[int] = []
    fixed = await m.repair(progress=seen.append)
    assert (fixed.restored_entries, fixed.restored_reservations) == (1, 1)
    assert seen and seen == sorted(seen)
    await assert_exactly_the_items_say(m)
    assert (await m.check()).ok
    assert fixed.to_dict()["check"]["missing_entries"] == 1


async def test_dangling_objects_are_removed_after_the_grace(storage: Storage) -> None:
    m = await _two_items(storage)
    await storage.put("bookmarks/c/newest/sgarbage!/9!0123456789abcdef", b"")  # no item 9
    await storage.put("bookmarks/c/newest/not-an-entry", b"")  # not ours: named, left alone
    await storage.delete("bookmarks/items/2")  # item gone: its 4 entries dangle
    young = await m.check()  # seconds old: may belong to writes in flight
    assert young.ok and young.dangling_entries == 0 and young.stale_reservations == 0
    assert (young.in_flight_entries, young.in_flight_reservations) == (1 + 4, 1)
    assert young.stray_objects == 1
    assert young.examples["stray_objects"] == ["bookmarks/c/newest/not-an-entry"]
    kept = await m.repair()  # the same judgement: nothing to do yet
    assert kept.deleted_entries == 0 and kept.deleted_reservations == 0
    report = await m.check(grace=0)  # on a quiet store, nothing is in flight
    assert report.dangling_entries == 1 + 4 and report.stale_reservations == 1
    assert not report.ok
    fixed = await m.repair(grace=0)
    assert fixed.deleted_entries == 5 and fixed.deleted_reservations == 1
    assert (await m.check(grace=0)).ok
    assert await storage.get("bookmarks/c/newest/not-an-entry") is not None
    await storage.delete("bookmarks/c/newest/not-an-entry")
    await assert_exactly_the_items_say(m)


async def test_reservation_held_by_another_item_needs_a_person(storage: Storage) -> None:
    m = await _two_items(storage)
    key = "bookmarks/u/by_url/shttps=3A.2F.2Fone!"
    await storage.put(key, Reservation("2", "w", 0.0).encode())
    report = await m.check(grace=0)
    assert report.missing_reservations == 1  # item 1 holds it, the object names 2
    assert report.stale_reservations == 1  # and item 2 does not hold it
    fixed = await m.repair(grace=0)
    assert fixed.deleted_reservations == 1 and fixed.skipped == 1
    again = await m.repair(grace=0)  # now it is simply missing: restored
    assert again.restored_reservations == 1
    assert await reservation_holders(m) == {
        ("by_url", "shttps=3A.2F.2Fone!"): "1",
        ("by_url", "shttps=3A.2F.2Ftwo!"): "2",
    }


async def test_unreadable_reservation_is_stale(storage: Storage) -> None:
    m = await _two_items(storage)
    await storage.put("bookmarks/u/by_url/sjunk!", b"not json")
    assert (await m.check()).in_flight_reservations == 1  # young: could be anyone's
    report = await m.check(grace=0)
    assert report.stale_reservations == 1
    assert (await m.repair(grace=0)).deleted_reservations == 1


class NoConditionalDelete(StorageWrapper):
    """A store like Ceph RGW 16: If-Match on DELETE is not honoured."""

    @property
    def capabilities(self) -> Capabilities:
        return replace(super().capabilities, conditional_delete=False)


async def test_without_conditional_delete_writes_and_repair_still_work(
    local_storage: Storage,
) -> None:
    storage = NoConditionalDelete(local_storage)
    m = await _two_items(storage)
    await m.add_item(bookmark("1", "https://uno", "2024-01-01T00:00:00", "red"))
    assert await m.by_url.get_item("https://one") is None
    assert await m.remove_item("2") is True
    await storage.put("bookmarks/u/by_url/sx!", Reservation("9", "w", 0.0).encode())
    fixed = await m.repair(grace=0)
    assert fixed.deleted_reservations == 1
    await assert_exactly_the_items_say(m)


async def test_check_report_is_json_ready(local_storage: Storage) -> None:
    import json

    m = await _two_items(local_storage)
    data: dict[str, Any] = (await m.check()).to_dict()
    assert json.loads(json.dumps(data))["ok"] is True
    assert data["items_scanned"] == 2 and data["reservations_scanned"] == 2


async def test_read_repair_deletes_old_dangling_entries_only() -> None:
    """Ages are the store's: the reader's own clock is far off and does not matter."""
    now = [1_000_000.0]
    store = InMemoryStorage(clock=lambda: now[0])

    class Repairing(BookmarkManager):
        read_repair = True

    m = await _two_items(store)
    await store.delete("bookmarks/items/2")
    reader = Repairing(store, clock=lambda: now[0] + 10**6)
    assert [i["pk"] for i in (await reader.newest.get_items())["items"]] == ["1"]
    assert len((await store.list("bookmarks/c/newest/")).keys) == 2  # too young to touch
    now[0] += reader.unique_lease + 2
    assert [i["pk"] for i in (await reader.by_tag.get_items())["items"]] == ["1"]
    assert len((await store.list("bookmarks/c/by_tag/")).keys) == 1
    assert (await m.check()).dangling_entries == 2  # newest and by_url still dangle
