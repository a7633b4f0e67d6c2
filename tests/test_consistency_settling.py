"""Forced interleavings for issue 17's cases 1, 2 and 5: a lost answer settled
by one rule for every kind of write, bulk commits split over requests, and
errors that are true.

Each stops a chosen request with :class:`tests.interleave.Gate` (or a small
wrapper of its own), lets other actors run, then decides the request's fate.
They run on every backend: memory, SQLite and the S3 test server.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from ssshelf import BulkWriteError
from ssshelf.errors import OutcomeUnknown, PreconditionFailed, StorageUnavailable, UniqueViolation
from ssshelf.storages.base import Capabilities, PutRequest, Storage, capabilities_of
from ssshelf.storages.wrapper import StorageWrapper

from .consistency_support import (
    assert_exactly_the_items_say,
    assert_reads_never_lie,
    assert_visible_everywhere,
    reservation_holders,
)
from .interleave import Gate
from .models import BookmarkManager, bookmark

X = bookmark("x", "https://v", "2024-01-01T00:00:00", "red")


async def _quiet_and_clean(m: BookmarkManager) -> None:
    await assert_reads_never_lie(m)
    await m.repair(grace=0)
    assert (await m.check(grace=0)).ok
    await assert_exactly_the_items_say(m)


# -- 1. a removal's lost answer, with more writes on top than the history holds --


async def _removal_held_under(storage: Storage, writes_on_top: int, *, if_version: bool) -> Any:
    """``remove_item(x)`` (with the version it read, if ``if_version``): its
    tombstone lands, its answer is held; another writer creates x again and
    updates it until ``writes_on_top`` writes lie on the tombstone; then the
    removal's answer is lost.  Returns the removal's task."""
    m = BookmarkManager(storage)
    await m.add_item(X)
    gate = Gate(storage)
    remover = BookmarkManager(gate)
    found = await remover.get_item_with_version("x")  # no read before the tombstone now
    assert found is not None
    held = gate.hold("put", m.layout.item_key("x"))
    removing = asyncio.create_task(
        remover.remove_item("x", if_version=found.version if if_version else None)
    )
    await held.reached.wait()
    await held.apply()
    await m.create_item(bookmark("x", "https://w", "2024-02-01T00:00:00", "blue"))
    for n in range(writes_on_top - 1):
        await m.update_item("x", lambda item, n=n: {**item, "n": n})
    held.lose()
    return removing


@pytest.mark.parametrize("if_version", [False, True])
async def test_1_a_removal_buried_under_eight_writes_is_unknown_not_repeated(
    storage: Storage, if_version: bool
) -> None:
    removing = await _removal_held_under(storage, 8, if_version=if_version)
    # The tombstone is out of the history (8 writes on top): nothing proves
    # whether it landed, so the truth is "unknown" — never a second removal
    # (which would delete the acknowledged item) and never a ConflictError.
    with pytest.raises(OutcomeUnknown, match="removing item 'x'"):
        await removing
    m = BookmarkManager(storage)
    survivor = await m.get_item("x")
    assert survivor is not None and survivor["url"] == "https://w" and survivor["n"] == 6
    await assert_visible_everywhere(m, survivor)
    await _quiet_and_clean(m)


@pytest.mark.parametrize("if_version", [False, True])
async def test_1_a_removal_under_seven_writes_is_known_to_have_taken_effect(
    storage: Storage, if_version: bool
) -> None:
    removing = await _removal_held_under(storage, 7, if_version=if_version)
    assert await removing is True  # the history still names the tombstone
    m = BookmarkManager(storage)
    survivor = await m.get_item("x")
    assert survivor is not None and survivor["n"] == 5
    await _quiet_and_clean(m)


# -- 2. bulk commits split over several put_many requests -------------------------


class SmallBatches(StorageWrapper):
    """A store that takes ``size`` writes a ``put_many`` request; the
    ``fail``-th request of commits (puts of item objects) fails before it is
    sent.  On a store without ``put_many`` of its own, the writes of one
    request are made one after another."""

    def __init__(self, inner: Storage, *, size: int, fail: int, items: str) -> None:
        super().__init__(inner)
        self.size = size
        self.fail = fail
        self.items = items
        self.commit_requests = 0

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(super().capabilities, put_many=self.size)

    @property
    def max_put_batch(self) -> int:
        return self.size

    async def put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
        assert len(puts) <= self.size
        if all(p.key.startswith(self.items) for p in puts):
            self.commit_requests += 1
            if self.commit_requests == self.fail:
                raise StorageUnavailable("injected: failed before it was sent")
        if capabilities_of(self.inner).put_many is not None:
            return await self.inner.put_many(puts)  # type: ignore[attr-defined]
        answers: list[str | PreconditionFailed] = []
        for p in puts:
            try:
                answers.append(
                    await self.inner.put(
                        p.key, p.data, if_absent=p.if_absent, if_version=p.if_version
                    )
                )
            except PreconditionFailed as refused:
                answers.append(refused)
        return answers


class Bulky(BookmarkManager):
    bulk_batch = 10


async def test_2_a_split_bulk_commit_cleans_up_only_what_did_not_commit(
    storage: Storage,
) -> None:
    items = [
        bookmark(f"b{i}", f"https://{i}", f"2024-01-{i + 1:02d}T00:00:00", "red") for i in range(10)
    ]
    small = SmallBatches(storage, size=4, fail=2, items=BookmarkManager.namespace + "/items/")
    assert await Bulky(small).add_items(items) == 10
    assert small.commit_requests >= 3  # 4 + 4 + 2 commits, the second one failed
    m = BookmarkManager(storage)
    assert len((await m.newest.get_items())["items"]) == 10
    for item in items:
        await assert_visible_everywhere(m, item)
    holders = await reservation_holders(m)
    assert sorted(holders.values()) == sorted(i["pk"] for i in items)
    # no value of a committed item was given up: another writer is refused
    with pytest.raises(UniqueViolation):
        await m.add_item(bookmark("intruder", "https://0", "2024-03-01T00:00:00"))
    await _quiet_and_clean(m)


# -- 5. errors that are true ---------------------------------------------------------


async def test_5_a_create_on_a_tombstone_purged_meanwhile_creates(storage: Storage) -> None:
    m = BookmarkManager(storage)
    await m.add_item(X)
    await m.remove_item("x")  # leaves a tombstone
    await asyncio.sleep(2.6)  # older than repair's grace below, by the store's 1 s clock
    gate = Gate(storage)
    creator = BookmarkManager(gate)
    commit = gate.hold("put", m.layout.item_key("x"))  # the first try, on "no object"
    second = gate.hold("put", m.layout.item_key("x"))  # the second, on the tombstone
    creating = asyncio.create_task(creator.create_item(X))
    await commit.reached.wait()
    commit.send()  # refused: the tombstone is there
    await second.reached.wait()
    # purges the tombstone the second try builds on (where the store deletes
    # conditionally), and leaves the young entries of the create in flight
    await m.repair(grace=0.5)
    second.send()  # refused again: what it built on is gone — but no item exists
    assert isinstance(await creating, str), "no item held x: the create goes ahead"
    await assert_visible_everywhere(m, X)
    await _quiet_and_clean(m)


async def test_5_a_create_where_an_item_exists_is_refused(storage: Storage) -> None:
    from ssshelf.errors import AlreadyExistsError

    m = BookmarkManager(storage)
    await m.add_item(X)
    with pytest.raises(AlreadyExistsError):
        await m.create_item(X)
    await m.remove_item("x")
    await m.create_item(X)  # on the tombstone
    with pytest.raises(AlreadyExistsError):
        await m.create_item(X)


async def test_5_items_of_one_batch_sharing_a_unique_value_get_one_by_one_answers(
    storage: Storage,
) -> None:
    items = [
        bookmark("a", "https://same", "2024-01-01T00:00:00"),
        bookmark("b", "https://same", "2024-01-02T00:00:00"),
        bookmark("c", "https://other", "2024-01-03T00:00:00"),
    ]
    m = BookmarkManager(storage)
    with pytest.raises(BulkWriteError) as stopped:
        await m.add_items(items)
    assert stopped.value.index == 1 and isinstance(stopped.value.error, UniqueViolation)
    assert stopped.value.written == 2
    assert sorted(i["pk"] for i in (await m.newest.get_items())["items"]) == ["a", "c"]
    await _quiet_and_clean(m)
