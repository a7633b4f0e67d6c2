"""The simulated store honours the storage contract, and its quirks are the real ones."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from ssshelf.errors import PreconditionFailed, UnsupportedOperation
from ssshelf.storages.base import Storage
from ssshelf.testing.sim.history import History
from ssshelf.testing.sim.schedule import FaultRates, Timing
from ssshelf.testing.sim.scheduler import ActorState, Scheduler
from ssshelf.testing.sim.store import EPOCH, Change, DirectStorage, Quirks, SimStore
from ssshelf.testing.sim.trace import Trace

from .test_storage_contract import (  # the shared contract, run again on the simulated store
    test_both_conditions_is_bad_input,
    test_concurrent_creators_exactly_one_wins,
    test_conditional_delete,
    test_delete_many,
    test_delete_many_empty_and_oversized,
    test_delete_missing_is_not_an_error,
    test_deleted_and_recreated_keys_list_once,
    test_get_missing_returns_none,
    test_if_absent_creates_only_once,
    test_if_version_on_missing_key_fails,
    test_if_version_replaces_only_matching,
    test_invalid_keys_are_rejected_before_any_request,
    test_list_after_outside_prefix,
    test_list_all_without_prefix,
    test_list_exact_page_boundary_reports_no_more_when_done,
    test_list_limit_is_checked,
    test_list_orders_by_utf8_bytes_and_filters_prefix,
    test_list_pages_with_after,
    test_max_key_length_key_works,
    test_odd_keys_round_trip_through_list,
    test_overwrite_changes_version,
    test_put_empty_body,
    test_put_then_get_round_trips_bytes_and_version,
)

CONTRACT = [
    test_both_conditions_is_bad_input,
    test_concurrent_creators_exactly_one_wins,
    test_conditional_delete,
    test_delete_many,
    test_delete_many_empty_and_oversized,
    test_delete_missing_is_not_an_error,
    test_deleted_and_recreated_keys_list_once,
    test_get_missing_returns_none,
    test_if_absent_creates_only_once,
    test_if_version_on_missing_key_fails,
    test_if_version_replaces_only_matching,
    test_invalid_keys_are_rejected_before_any_request,
    test_list_after_outside_prefix,
    test_list_all_without_prefix,
    test_list_exact_page_boundary_reports_no_more_when_done,
    test_list_limit_is_checked,
    test_list_orders_by_utf8_bytes_and_filters_prefix,
    test_list_pages_with_after,
    test_max_key_length_key_works,
    test_odd_keys_round_trip_through_list,
    test_overwrite_changes_version,
    test_put_empty_body,
    test_put_then_get_round_trips_bytes_and_version,
]


def scheduled_client(store: SimStore, loop: asyncio.AbstractEventLoop) -> Storage:
    """An actor's client with no faults and no latency, on the running loop."""
    scheduler = Scheduler(
        loop,
        store,
        random.Random(0),
        FaultRates(),
        Timing(latency=0.0),
        History(on_quiet=lambda pk, now: None),
        Trace(),
    )
    return scheduler.client(ActorState("a0"))


@pytest.fixture(params=["direct", "md5-versions", "no-conditional-delete", "scheduled"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    """The simulated store, straight or through a scheduled client, per quirk."""
    loop = asyncio.get_running_loop()
    quirks = {
        "md5-versions": Quirks(content_hash_versions=True),
        "no-conditional-delete": Quirks(conditional_delete=False),
    }.get(request.param, Quirks())
    store = SimStore(quirks, loop.time)
    if request.param == "scheduled":
        yield scheduled_client(store, loop)
    else:
        yield DirectStorage(store)


def test_the_contract_suite_is_collected_here() -> None:
    assert len(CONTRACT) == 23  # every test of tests/test_storage_contract.py


def _store(quirks: Quirks | None = None, now: float = 0.0) -> SimStore:
    return SimStore(quirks or Quirks(), lambda: now)


async def test_without_conditional_writes_conditions_are_ignored() -> None:
    store = _store(Quirks(conditional_put=False))
    storage = DirectStorage(store)
    assert not storage.supports_conditional_put
    assert not storage.supports_conditional_delete
    await storage.put("k", b"one", if_absent=True)
    await storage.put("k", b"two", if_absent=True)  # an old server ignores If-None-Match
    await storage.put("k", b"three", if_version="never-was")
    found = await storage.get("k")
    assert found is not None and found.data == b"three"
    await storage.delete("k", if_version="never-was")
    assert await storage.get("k") is None


async def test_ceph_ignores_if_match_on_delete() -> None:
    storage = DirectStorage(_store(Quirks(conditional_delete=False)))
    assert storage.supports_conditional_put and not storage.supports_conditional_delete
    await storage.put("k", b"one")
    await storage.delete("k", if_version="stale")  # RGW: the delete happens
    assert await storage.get("k") is None
    with pytest.raises(PreconditionFailed):  # conditional puts still hold
        await storage.put("missing", b"x", if_version="stale")


async def test_content_hash_versions_are_the_md5_of_the_bytes() -> None:
    storage = DirectStorage(_store(Quirks(content_hash_versions=True)))
    first = await storage.put("a", b"same")
    second = await storage.put("b", b"same")
    assert first == second == hashlib.md5(b"same").hexdigest()
    assert await storage.put("a", b"other") != first


async def test_times_come_from_the_store_clock() -> None:
    now = [2.5]
    store = SimStore(Quirks(), lambda: now[0])
    storage = DirectStorage(store)
    await storage.put("k", b"x")
    now[0] = 10.0
    found = await storage.get("k")
    assert found is not None
    assert found.last_modified == datetime.fromtimestamp(EPOCH + 2.5, UTC)
    assert found.read_at == datetime.fromtimestamp(EPOCH + 10.0, UTC)
    assert found.age == 7.5


async def test_every_applied_write_is_logged_and_observed() -> None:
    store = _store()
    seen: list[Change] = []
    store.observers.append(seen.append)
    storage = DirectStorage(store, by="me")
    await storage.put("a", b"1")
    await storage.delete_many(["a", "missing"])
    with pytest.raises(PreconditionFailed):
        await storage.put("b", b"2", if_version="nope")
    assert [(c.key, c.data, c.by) for c in store.log] == [("a", b"1", "me"), ("a", None, "me")]
    assert seen == store.log
    assert store.mutations == 2


async def test_a_snapshot_is_frozen_and_read_only() -> None:
    store = _store()
    storage = DirectStorage(store)
    await storage.put("k/1", b"old")
    frozen = DirectStorage(store, store.snapshot())
    await storage.put("k/1", b"new")
    await storage.put("k/2", b"x")
    found = await frozen.get("k/1")
    assert found is not None and found.data == b"old"
    assert (await frozen.list("k/")).keys == ["k/1"]
    with pytest.raises(UnsupportedOperation):
        await frozen.put("k/3", b"x")
    with pytest.raises(UnsupportedOperation):
        await frozen.delete_many(["k/1"])
