"""The proof of the commit protocol: crashes at every request, races, faults.

Invariants (DESIGN.md): I1 no read returns an item through an entry it does
not hold; I2 an acknowledged write is never lost and is visible through every
collection; I3 after repair the store is exactly what the item objects say;
I4 no two live items share a unique value.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ssshelf.errors import (
    AlreadyExistsError,
    ConflictError,
    SSShelfError,
    StorageError,
    UniqueViolation,
)
from ssshelf.storages.base import Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.retrying import RetryingStorage
from ssshelf.testing import CountingStorage, FaultyStorage, LatencyStorage, SimulatedCrash

from .conftest import BACKENDS
from .consistency_support import (
    all_items,
    assert_exactly_the_items_say,
    assert_reads_never_lie,
    assert_visible_everywhere,
    listed_entries,
    reservation_holders,
)
from .models import BookmarkManager, bookmark

A = bookmark("a", "https://a", "2024-01-01T00:00:00", "red", "green", n=0)
B = bookmark("b", "https://b", "2024-02-01T00:00:00", "red", n=0)
A_MOVED = {**A, "tags": ["blue", "green"], "created": "2024-03-01T00:00:00"}
A_NEW_URL = {**A, "url": "https://a2"}

Op = Callable[[BookmarkManager], Awaitable[Any]]


async def _setup_one(m: BookmarkManager) -> None:
    await m.add_items([A, B])


async def _nothing(m: BookmarkManager) -> None:
    await m.add_item(B)


def _bump(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "n": item["n"] + 1, "tags": ["yellow"]}


# name -> (set-up, operation, state of "a" before, state of "a" after)
SCENARIOS: dict[str, tuple[Op, Op, Any, Any]] = {
    "create": (_nothing, lambda m: m.create_item(A), None, A),
    "add_new": (_nothing, lambda m: m.add_item(A), None, A),
    "replace_moved_keys": (_setup_one, lambda m: m.add_item(A_MOVED), A, A_MOVED),
    "update": (_setup_one, lambda m: m.update_item("a", _bump), A, _bump(A)),
    "unique_change": (_setup_one, lambda m: m.add_item(A_NEW_URL), A, A_NEW_URL),
    "remove": (_setup_one, lambda m: m.remove_item("a"), A, None),
}


async def _requests_of(storage: Storage, setup: Op, op: Op) -> int:
    await setup(BookmarkManager(storage))
    counting = CountingStorage(storage)
    await op(BookmarkManager(counting))
    return counting.total


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_crash_after_every_request(scenario: str, storage: Storage) -> None:
    """A crash before request N+1, for every N the operation makes."""
    setup, op, before, after = SCENARIOS[scenario]
    total = await _requests_of(storage, setup, op)
    assert total >= 2
    # Each crash point gets its own namespace: a fresh, isolated store.
    for crash_at in range(total):
        await _run_crash_case(storage, f"crash{crash_at}", setup, op, before, after, crash_at)


async def _run_crash_case(
    storage: Storage, namespace: str, setup: Op, op: Op, before: Any, after: Any, crash_at: int
) -> None:
    class M(BookmarkManager):
        pass

    M.namespace = namespace
    await setup(M(storage))
    faulty = FaultyStorage(storage, crash_after=crash_at)
    with pytest.raises(SimulatedCrash):
        await op(M(faulty))
    m = M(storage)
    # The operation is all or nothing through get_item.
    state = await m.get_item("a")
    assert state in (before, after), (crash_at, state)
    await assert_reads_never_lie(m)  # I1
    for item in (await all_items(m)).values():
        await assert_visible_everywhere(m, item)  # nothing committed is half-indexed
    entries_before = len(await listed_entries(m))
    reservations_before = len(await reservation_holders(m))
    # Right after a crash: what repair leaves alone (young: maybe a write in
    # flight) check calls in flight, so check -> repair -> check is clean.
    await m.repair()
    assert (await m.check()).ok
    entries_before = len(await listed_entries(m))
    reservations_before = len(await reservation_holders(m))
    report = await m.check(grace=0)
    fixed = await m.repair(grace=0)
    assert fixed.deleted_entries == report.dangling_entries
    assert fixed.deleted_reservations == report.stale_reservations
    assert report.missing_entries == report.missing_reservations == 0
    await assert_exactly_the_items_say(m)  # I3
    assert len(await listed_entries(m)) == entries_before - report.dangling_entries
    assert len(await reservation_holders(m)) == reservations_before - report.stale_reservations
    assert (await m.check()).ok


async def test_acknowledged_writes_survive_random_crashes(local_storage: Storage) -> None:
    """I2: random writes, some crashing at a random request; then repair."""

    class QuickLease(BookmarkManager):
        # A crashed write's claim blocks the next write of the same item until
        # its lease runs out: keep that short here.
        unique_lease = 0.4

    rng = random.Random(7)
    m = QuickLease(local_storage)
    model: dict[str, Any] = {}
    for step in range(120):
        pk = rng.choice("pqrs")
        tags = rng.sample(["red", "green", "blue", "cyan"], k=rng.randint(0, 2))
        day = f"2024-01-{rng.randint(1, 28):02d}T00:00:00"
        item = bookmark(pk, f"https://{pk}/{rng.randint(0, 3)}", day, *tags, step=step)
        storage: Storage = local_storage
        if rng.random() < 0.4:
            storage = FaultyStorage(local_storage, crash_after=rng.randint(0, 6))
        writer = QuickLease(storage)
        action = rng.choice(["add", "add", "update", "remove"])
        if action == "update" and model.get(pk) is None:
            action = "remove"
        try:
            if action == "add":
                await writer.add_item(item)
            elif action == "update":
                await writer.update_item(pk, lambda old, item=item: {**item, "n": old.get("n", 0)})
            else:
                await writer.remove_item(pk)
        except (SimulatedCrash, UniqueViolation, StorageError):
            # StorageError: on a busy machine a try can outlast its commit window
            # (0.2 s with this lease) and is then not committed, as after a crash.
            model[pk] = await m.get_item(pk)  # committed or not: the item object says
            continue
        model[pk] = await m.get_item(pk)
        assert model[pk] is not None or action == "remove"
        if model[pk] is not None:
            await assert_visible_everywhere(m, model[pk])  # acknowledged ⇒ visible now
        await assert_reads_never_lie(m)
    await m.repair(grace=0)
    for pk, item in model.items():
        assert await m.get_item(pk) == item
        if item is not None:
            await assert_visible_everywhere(m, item)
    await assert_exactly_the_items_say(m)


async def test_concurrent_creators_of_one_unique_value(storage: Storage) -> None:
    """I4: 20 creators race for one URL; exactly one wins."""
    items = [bookmark(str(i), "https://same", "2024-01-01T00:00:00") for i in range(20)]
    results = await asyncio.gather(
        *(BookmarkManager(storage).add_item(item) for item in items), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, UniqueViolation)]
    assert len(winners) == 1 and len(losers) == 19, results
    m = BookmarkManager(storage)
    owner = await m.by_url.get_item("https://same")
    assert owner is not None
    assert len(await all_items(m)) == 1
    assert (await m.check()).ok


async def test_concurrent_updates_lose_nothing(storage: Storage) -> None:
    """10 writers x 20 increments of one counter, as asyncio tasks."""
    m = BookmarkManager(storage)
    await m.add_item(bookmark("c", "https://c", "2024-01-01T00:00:00", n=0))

    async def writer() -> None:
        mine = BookmarkManager(storage)
        for _ in range(20):
            await mine.update_item("c", lambda item: {**item, "n": item["n"] + 1}, retries=1000)

    await asyncio.gather(*(writer() for _ in range(10)))
    assert (await m.get_item("c"))["n"] == 200
    assert (await m.check()).ok


async def test_concurrent_add_item_without_version_never_fails(storage: Storage) -> None:
    items = [
        bookmark("x", f"https://x/{i}", f"2024-01-{i + 1:02d}T00:00:00", f"t{i}") for i in range(8)
    ]
    await asyncio.gather(*(BookmarkManager(storage).add_item(item) for item in items))
    m = BookmarkManager(storage)
    final = await m.get_item("x")
    assert final in items
    await assert_visible_everywhere(m, final)
    await assert_exactly_the_items_say(m)


async def test_crashed_claim_is_taken_over_only_after_the_lease() -> None:
    """The lease is judged by the store's clock; the writers' clocks are far off."""
    now = [1000.0]
    store = InMemoryStorage(clock=lambda: now[0])

    class Clocked(BookmarkManager):
        unique_lease = 30.0

    # Round 1 (2 entries, the claim, the read) lands; the commit never happens.
    crashed = Clocked(FaultyStorage(store, crash_after=4), clock=lambda: now[0] + 3600)
    with pytest.raises(SimulatedCrash):
        await crashed.add_item(bookmark("1", "https://x", "2024-01-01T00:00:00"))
    m = Clocked(store, clock=lambda: now[0] - 3600)
    assert await reservation_holders(m)  # the crash left a claim behind
    second = bookmark("2", "https://x", "2024-01-01T00:00:00")
    with pytest.raises(UniqueViolation, match="concurrent write"):
        await m.add_item(second)  # could still be in flight: protected
    now[0] += 29
    with pytest.raises(UniqueViolation, match="concurrent write"):
        await m.add_item(second)  # still within the lease by the store's clock
    now[0] += 3
    await m.add_item(second)  # lease over and item 1 never committed: taken over
    assert (await m.by_url.get_item("https://x"))["pk"] == "2"
    await m.repair(grace=0)
    await assert_exactly_the_items_say(m)


async def test_a_slow_writer_does_not_commit_after_its_window(local_storage: Storage) -> None:
    """Round 1 takes longer than half the lease: the write is not committed."""

    class Slow(BookmarkManager):
        unique_lease = 0.2  # commit window 0.1 s

    m = Slow(LatencyStorage(local_storage, 0.15))
    with pytest.raises(SSShelfError, match="commit window"):
        await m.add_item(bookmark("1", "https://x", "2024-01-01T00:00:00"))
    fresh = BookmarkManager(local_storage)
    assert await fresh.get_item("1") is None
    assert await reservation_holders(fresh) == {}  # it cleaned up its claim
    assert await listed_entries(fresh) == []


async def test_value_held_by_a_live_item_is_never_taken(local_storage: Storage) -> None:
    now = [0.0]
    m = BookmarkManager(local_storage, clock=lambda: now[0])
    await m.add_item(bookmark("1", "https://x", "2024-01-01T00:00:00"))
    now[0] += 10**6
    with pytest.raises(UniqueViolation) as info:
        await m.add_item(bookmark("2", "https://x", "2024-01-01T00:00:00"))
    assert info.value.owner == "1" and info.value.collection == "by_url"
    assert await m.get_item("2") is None
    assert len(await listed_entries(m)) == 2  # item 1's only: the loser left nothing
    await m.add_item(bookmark("1", "https://y", "2024-01-01T00:00:00"))  # releases x
    await m.add_item(bookmark("2", "https://x", "2024-01-01T00:00:00"))
    assert (await m.check()).ok


async def test_workload_completes_correctly_with_20_percent_transient_faults(
    local_storage: Storage,
) -> None:
    flaky = FaultyStorage(local_storage, failure_rate=0.2, seed=3)
    m = BookmarkManager(RetryingStorage(flaky, attempts=30, base_delay=0.0005))
    for i in range(30):
        await m.add_item(bookmark(str(i), f"https://x/{i}", "2024-01-01T00:00:00", "t", n=0))
    for i in range(0, 30, 3):
        await m.update_item(str(i), lambda item: {**item, "n": 1, "tags": ["u"]})
    for i in range(1, 30, 3):
        await m.remove_item(str(i))
    assert flaky.failures > 20
    clean = BookmarkManager(local_storage)
    items = await all_items(clean)
    assert sorted(items, key=int) == [str(i) for i in range(30) if i % 3 != 1]
    assert all(items[str(i)]["n"] == 1 for i in range(0, 30, 3))
    report = await clean.check()
    assert report.ok, report.to_dict()


async def test_stale_if_version_after_a_lost_race_cleans_up(local_storage: Storage) -> None:
    m = BookmarkManager(local_storage)
    v1 = await m.add_item(A)
    await BookmarkManager(local_storage).add_item({**A, "tags": ["other"]})
    with pytest.raises(ConflictError):
        await m.add_item(A_MOVED, if_version=v1)
    await assert_exactly_the_items_say(BookmarkManager(local_storage))


@pytest.mark.parametrize("kind", ["sqlite", "s3"])
async def test_concurrent_updates_from_separate_processes(
    kind: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    """10 OS processes x 20 increments of one counter: exactly 200."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from .process_worker import increment, open_spec

    spec: dict[str, Any]
    if kind == "sqlite":
        spec = {"kind": "sqlite", "path": str(tmp_path / "shared.db")}
    else:
        if "s3" not in BACKENDS:
            pytest.skip("S3 backend not selected")
        factory = request.getfixturevalue("s3_storage_factory")
        endpoint = request.getfixturevalue("s3_endpoint")
        store = await factory()
        spec = {"kind": "s3", "bucket": store.bucket, "client_kwargs": endpoint.client_kwargs()}
        await store.close()
    storage = open_spec(spec)
    await BookmarkManager(storage).add_item(bookmark("c", "https://c", "2024-01-01T00:00:00", n=0))
    await storage.close()
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(10, mp_context=multiprocessing.get_context("spawn")) as pool:
        await asyncio.gather(
            *(loop.run_in_executor(pool, increment, spec, "c", 20) for _ in range(10))
        )
    storage = open_spec(spec)
    m = BookmarkManager(storage)
    assert (await m.get_item("c"))["n"] == 200
    assert (await m.check()).ok
    await storage.close()


async def test_create_of_an_existing_pk_leaves_its_unique_value_held(storage: Storage) -> None:
    m = BookmarkManager(storage)
    await m.create_item(A)
    with pytest.raises(AlreadyExistsError):
        await BookmarkManager(storage).create_item(A)
    with pytest.raises(AlreadyExistsError):
        await BookmarkManager(storage).create_item({**A, "url": "https://elsewhere"})
    assert (await m.by_url.get_item(A["url"])) == A
    await assert_exactly_the_items_say(m)
    with pytest.raises(UniqueViolation):
        await m.add_item(bookmark("other", A["url"], "2024-01-01T00:00:00"))
