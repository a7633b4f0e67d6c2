"""One forced interleaving for each way concurrent writers broke the protocol
(issue 9, problems 1-8), plus the other cases it lists.

Each test stops a chosen request with :class:`tests.interleave.Gate`, lets
other actors run, then decides the stopped request's fate.  They run on the
embedded backends (``local_storage``); the races that need no clock control
also run on the S3 test server (``storage``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from ssshelf.errors import (
    AlreadyExistsError,
    ConflictError,
    OutcomeUnknown,
    UniqueViolation,
)
from ssshelf.storages.base import Capabilities, Storage, capabilities_of
from ssshelf.storages.cached import CachedStorage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.wrapper import StorageWrapper
from ssshelf.testing.sim.loop import VirtualTimeLoop

from .consistency_support import (
    assert_exactly_the_items_say,
    assert_reads_never_lie,
    assert_visible_everywhere,
    reservation_holders,
)
from .interleave import Gate
from .models import BookmarkManager, Counter, bookmark

X = bookmark("x", "https://v", "2024-01-01T00:00:00", "red")
URL_V = ("by_url", "shttps=3A.2F.2Fv!")


async def _quiet_and_clean(m: BookmarkManager) -> None:
    """I1 and I3 once nobody writes: repair leaves exactly what the items say."""
    await assert_reads_never_lie(m)
    await m.repair(grace=0)
    assert (await m.check(grace=0)).ok
    await assert_exactly_the_items_say(m)


# -- 1. a reservation belongs to a write, not to a pk --------------------------


async def test_1_same_pk_creates_never_share_a_claim(storage: Storage) -> None:
    gate = Gate(storage)
    commit = gate.hold("put", "bookmarks/items/x")
    first = asyncio.create_task(BookmarkManager(gate).create_item(X))
    await commit.reached.wait()  # W1 holds the claim on v and has not committed
    second = asyncio.create_task(BookmarkManager(storage).create_item(X))
    await asyncio.sleep(0.05)
    assert not second.done()  # W2 waits for W1's claim, it does not take it over
    commit.send()
    assert await first
    with pytest.raises(AlreadyExistsError):
        await second
    m = BookmarkManager(storage)
    with pytest.raises(UniqueViolation):
        await m.create_item(bookmark("y", "https://v", "2024-01-01T00:00:00"))
    assert (await reservation_holders(m))[URL_V] == "x"
    await _quiet_and_clean(m)


async def test_1_same_pk_replace_waits_for_the_other_claim(storage: Storage) -> None:
    gate = Gate(storage)
    commit = gate.hold("put", "bookmarks/items/x")
    first = asyncio.create_task(BookmarkManager(gate).add_item(X))
    await commit.reached.wait()
    later = {**X, "tags": ["blue"]}
    second = asyncio.create_task(BookmarkManager(storage).add_item(later))
    await asyncio.sleep(0.05)
    commit.send()
    await first
    await second  # last writer wins, holding v by W1's reservation
    m = BookmarkManager(storage)
    assert await m.get_item("x") == later
    await assert_visible_everywhere(m, later)
    await _quiet_and_clean(m)


# -- 2. an unknown commit outcome never triggers a clean-up ----------------------


async def test_2_lost_answer_to_a_landed_commit_is_success(storage: Storage) -> None:
    gate = Gate(storage)
    gate.hold("put", "bookmarks/items/x").lose()
    version = await BookmarkManager(gate).add_item(X)
    m = BookmarkManager(storage)
    found = await m.get_item_with_version("x")
    assert found is not None and found.version == version
    await assert_visible_everywhere(m, X)
    await _quiet_and_clean(m)


async def test_2_timed_out_commit_that_lands_later_keeps_its_entries(
    local_storage: Storage,
) -> None:
    gate = Gate(local_storage)
    commit = gate.hold("put", "bookmarks/items/x")
    writer = asyncio.create_task(BookmarkManager(gate).add_item(X))
    await commit.reached.wait()
    writer.cancel()  # asyncio.wait_for / a cancelled request: no clean-up
    with pytest.raises(asyncio.CancelledError):
        await writer
    await commit.land()  # the commit request was in flight: it lands now
    m = BookmarkManager(local_storage)
    await assert_visible_everywhere(m, X)
    with pytest.raises(UniqueViolation):
        await m.add_item(bookmark("y", "https://v", "2024-01-01T00:00:00"))
    await _quiet_and_clean(m)


async def test_2_commit_that_may_still_land_is_outcome_unknown(local_storage: Storage) -> None:
    gate = Gate(local_storage)
    commit = gate.hold("put", "bookmarks/items/x")
    commit.late()  # answer lost before it was applied: it lands later
    with pytest.raises(OutcomeUnknown, match="may or may not have taken effect"):
        await BookmarkManager(gate).add_item(X)
    m = BookmarkManager(local_storage)
    assert await m.get_item("x") is None
    assert (await m.check()).ok  # its leftovers are young: in flight, not problems
    assert (await m.repair()).deleted_entries == 0  # and repair leaves them for it
    await commit.land()
    await assert_visible_everywhere(m, X)
    await _quiet_and_clean(m)


# -- 3. "precondition failed" after a lost answer, with a write on top -----------


async def test_3_update_applied_under_a_later_write_is_not_applied_twice(
    storage: Storage,
) -> None:
    await Counter(storage).add_item({"pk": "c", "n": 0})
    gate = Gate(storage)
    commit = gate.hold("put", "counters/items/c")

    def bump(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "n": item["n"] + 1}

    first = asyncio.create_task(Counter(gate).update_item("c", bump))
    await commit.reached.wait()
    await commit.apply()  # W1's commit lands ...
    await Counter(storage).update_item("c", bump)  # ... W2 writes on top ...
    commit.lose()  # ... and W1 never heard back
    assert (await first)["n"] == 1  # W1's own result: it took effect once
    assert (await Counter(storage).get_item("c")) == {"pk": "c", "n": 2}


async def test_3_if_version_write_under_a_later_write_keeps_what_it_relies_on(
    storage: Storage,
) -> None:
    m = BookmarkManager(storage)
    version = await m.add_item(X)
    gate = Gate(storage)
    commit = gate.hold("put", "bookmarks/items/x")
    moved = {**X, "tags": ["blue"], "url": "https://w"}
    first = asyncio.create_task(BookmarkManager(gate).add_item(moved, if_version=version))
    await commit.reached.wait()
    await commit.apply()
    on_top = {**moved, "tags": ["green"]}
    await BookmarkManager(storage).add_item(on_top)
    commit.lose()
    reported = await first  # it took effect (under a later write): not a conflict
    with pytest.raises(ConflictError):
        await m.add_item(X, if_version=reported)  # and no version of it is current
    await assert_visible_everywhere(m, on_top)
    await _quiet_and_clean(m)


# -- 4. a slow commit never lands after its claim could be taken over -----------


def test_4_commit_is_abandoned_at_the_end_of_its_window() -> None:
    """On virtual time: a busy machine cannot make round 1 outlast the 0.1 s window."""
    now = [1000.0]
    store = InMemoryStorage(clock=lambda: now[0])

    class Short(BookmarkManager):
        unique_lease = 0.2  # the commit must be answered within 0.1 s

    async def race() -> None:
        gate = Gate(store)
        commit = gate.hold("put", "bookmarks/items/x")
        writer = asyncio.create_task(Short(gate).add_item(X))
        await commit.reached.wait()
        with pytest.raises(OutcomeUnknown):
            await writer  # gave up at its window, its outcome honestly unknown
        now[0] += 5  # the claim's lease is over by the store's clock
        y = bookmark("y", "https://v", "2024-01-01T00:00:00")
        await Short(store).add_item(y)  # Y takes v over
        m = Short(store)
        assert await m.by_url.get_item("https://v") == y
        assert await m.get_item("x") is None  # X's commit was never sent on
        await _quiet_and_clean(m)

    loop = VirtualTimeLoop()
    try:
        loop.run_until_complete(race())
    finally:
        loop.close()


# -- 5. repair and read-repair leave the claims of writes in flight alone --------


async def test_5_repair_and_read_repair_keep_entries_of_a_write_in_flight(
    local_storage: Storage,
) -> None:
    class Reading(BookmarkManager):
        read_repair = True

    gate = Gate(local_storage)
    commit = gate.hold("put", "bookmarks/items/x")
    writer = asyncio.create_task(BookmarkManager(gate).add_item(X))
    await commit.reached.wait()
    reader = Reading(local_storage)
    assert (await reader.newest.get_items())["items"] == []  # not committed: skipped
    report = await reader.repair()
    assert report.deleted_entries == report.deleted_reservations == 0
    assert report.check.in_flight_entries == 3 and report.check.ok
    commit.send()
    await writer
    await assert_visible_everywhere(reader, X)
    await _quiet_and_clean(reader)


# -- 6. a listing returns an item whose keys did not change, exactly once --------


async def test_6_listing_keeps_an_item_replaced_with_the_same_keys(storage: Storage) -> None:
    await BookmarkManager(storage).add_item(X)
    gate = Gate(storage)
    fetch = gate.hold("get", "bookmarks/items/x")
    reader = asyncio.create_task(BookmarkManager(gate).by_tag.get_items(prefix_parts=["red"]))
    await fetch.reached.wait()  # the page listed X's entry and is about to fetch X
    same_keys = {**X, "note": "edited"}
    await BookmarkManager(storage).add_item(same_keys)  # a manager that never saw X
    fetch.send()
    assert (await reader)["items"] == [same_keys]
    await _quiet_and_clean(BookmarkManager(storage))


# -- 7. without conditional writes, nothing is skipped on remembered state --------


class NoConditionalWrites(StorageWrapper):
    """A store like s3rver: no If-None-Match / If-Match."""

    @property
    def capabilities(self) -> Capabilities:
        return replace(super().capabilities, conditional_put=False, conditional_delete=False)


async def test_7_remembered_state_does_not_drop_an_entry(local_storage: Storage) -> None:
    from ssshelf import CManager

    from .models import Bookmarks, ByTag, Newest

    class Plain(CManager):  # no unique collection: it needs conditional writes
        namespace = "plain"
        item_manager = Bookmarks()
        newest = Newest()
        by_tag = ByTag()

    store = NoConditionalWrites(local_storage)
    p1, p2 = Plain(store), Plain(store)
    red = bookmark("x", "https://v", "2024-01-01T00:00:00", "red")
    await p1.add_item(red)
    await p2.add_item({**red, "tags": ["blue"]})
    await p1.add_item(red)
    assert (await p1.by_tag.get_items(prefix_parts=["red"]))["items"] == [red]
    assert (await Plain(local_storage).check(grace=0)).ok


# -- 8. a read cache never decides a take-over or a deletion ---------------------


async def test_8_stale_cache_does_not_take_a_held_value_over() -> None:
    now = [1000.0]
    store = InMemoryStorage(clock=lambda: now[0])
    p1 = BookmarkManager(store)
    p2 = BookmarkManager(CachedStorage(store))  # ttl=None: serves forever
    await p1.add_item(bookmark("x", "https://other", "2024-01-01T00:00:00"))
    assert await p2.get_item("x") is not None  # P2 caches X without v
    await p1.add_item(X)  # X now holds v
    now[0] += 3600  # long past any lease
    with pytest.raises(UniqueViolation) as info:
        await p2.add_item(bookmark("y", "https://v", "2024-01-01T00:00:00"))
    assert info.value.owner == "x"
    await p2.repair()
    assert (await reservation_holders(p1))[URL_V] == "x"
    await _quiet_and_clean(p1)


# -- also seen ------------------------------------------------------------------


async def test_ten_concurrent_updaters_of_one_item_all_finish(storage: Storage) -> None:
    await Counter(storage).add_item({"pk": "c", "n": 0})

    async def writer() -> None:
        m = Counter(storage)
        for _ in range(3):
            await m.update_item("c", lambda item: {**item, "n": item["n"] + 1})

    await asyncio.gather(*(writer() for _ in range(10)))
    assert (await Counter(storage).get_item("c")) == {"pk": "c", "n": 30}


async def test_unreadable_item_and_stray_objects_never_fail_the_others(
    local_storage: Storage,
) -> None:
    m = BookmarkManager(local_storage)
    await m.add_items([X, bookmark("y", "https://y", "2024-01-02T00:00:00", "red")])
    await local_storage.put("bookmarks/items/y", b"ssshelf:1 {not json\n{}")
    await local_storage.put("bookmarks/c/by_tag/not-an-entry", b"")
    await local_storage.put("bookmarks/items/w", b"not an item")
    page = await m.by_tag.get_items(prefix_parts=["red"])
    assert page["items"] == [X] and page["unreadable"] == ["bookmarks/items/y"]
    report = await m.check()
    assert report.unreadable_items == 2 and report.stray_objects == 1
    assert sorted(report.examples["unreadable_items"]) == ["bookmarks/items/w", "bookmarks/items/y"]
    assert (await m.repair(grace=0)).check.unreadable_items == 2
    done = await m.reindex("by_tag")
    assert done.failed == 2 and done.items_scanned == 3 and done.reindexed == 0


async def test_cancelling_a_bulk_load_stops_it_and_leaves_nothing_running(
    local_storage: Storage,
) -> None:
    gate = Gate(local_storage)
    if capabilities_of(local_storage).put_many is not None:
        gate.hold("put_many")  # never answered: the load hangs on its first batch
    else:
        gate.hold("put", "bookmarks/items/5")  # never answered: the load hangs on item 5
    items = [bookmark(str(i), f"https://{i}", "2024-01-01T00:00:00") for i in range(50)]
    load = asyncio.create_task(BookmarkManager(gate).add_items(items))
    await asyncio.sleep(0.2)
    before = asyncio.all_tasks()
    load.cancel()
    with pytest.raises(asyncio.CancelledError):
        await load
    left = {t for t in asyncio.all_tasks() if t in before and t is not load}
    assert left <= {asyncio.current_task()}
