"""``Collection.count``: live items, as ``iter_items`` would give them, and
``count_entries``, its listing-only upper bound — with their cost in requests."""

from __future__ import annotations

from typing import Any

import pytest

from ssshelf.storages.base import Storage
from ssshelf.storages.s3 import S3Storage
from ssshelf.testing import CountingStorage, FaultyStorage, SimulatedCrash

from .models import BookmarkManager, bookmark


def _bookmarks(n: int) -> list[dict[str, Any]]:
    return [
        bookmark(f"{i:03d}", f"https://{i}", f"2024-01-{i % 28 + 1:02d}T00:00:00", *tags)
        for i, tags in ((i, ["red", "blue"] if i % 3 == 0 else ["red"]) for i in range(n))
    ]


async def test_count_is_what_iter_items_gives(storage: Storage) -> None:
    m = BookmarkManager(storage)
    await m.add_items(_bookmarks(12))
    assert await m.newest.count() == 12
    assert await m.by_tag.count() == 12 + 4  # an item counts once per key in range
    assert await m.by_tag.count(prefix_parts=["blue"]) == 4
    assert await m.by_tag.count(prefix_parts="red") == 12
    assert await m.by_tag.count(prefix_parts=["green"]) == 0
    assert await m.by_url.count() == 12
    for prefix in (None, ["blue"], ["red"]):
        listed = [i async for i in m.by_tag.iter_items(prefix_parts=prefix)]
        assert await m.by_tag.count(prefix_parts=prefix) == len(listed)
    await m.remove_item("000")
    assert await m.newest.count() == 11
    assert await m.by_tag.count(prefix_parts=["blue"]) == 3


async def test_count_skips_what_a_crashed_write_left(local_storage: Storage) -> None:
    m = BookmarkManager(local_storage)
    await m.add_items(_bookmarks(5))
    crashing = BookmarkManager(FaultyStorage(local_storage, crash_after=3))
    with pytest.raises(SimulatedCrash):  # its entries land, its commit never does
        await crashing.add_item(bookmark("new", "https://new", "2024-02-01T00:00:00", "red"))
    assert await m.newest.count_entries() == 6, "the crashed write's entry is listed"
    assert await m.newest.count() == 5, "but not counted as an item"
    assert await m.by_tag.count(prefix_parts=["red"]) == 5


async def test_count_costs_a_list_per_thousand_entries_and_a_read_per_item(
    storage: Storage,
) -> None:
    m = BookmarkManager(storage)
    await m.add_items(_bookmarks(30))
    counted = CountingStorage(storage)
    m2 = BookmarkManager(counted)
    assert await m2.by_tag.count() == 40
    # each distinct item read once: one request on memory and SQLite, a GET each on S3
    reads = {"get": 30} if isinstance(storage, S3Storage) else {"get_many": 1}
    assert counted.counts == {"list": 1, **reads}
    counted.reset()
    assert await m2.by_tag.count_entries() == 40
    assert counted.counts == {"list": 1}


def test_the_blocking_twin_counts(tmp_path: Any) -> None:
    with BookmarkManager.sync(f"sqlite:///{tmp_path / 'twin.db'}") as twin:
        twin.add_items(_bookmarks(4))
        assert twin.by_tag.count(prefix_parts=["blue"]) == 2
        assert twin.newest.count_entries() == 4
