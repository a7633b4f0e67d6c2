"""Bulk loads on a store that applies many writes a request (SQLite's put_many)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ssshelf.errors import (
    BulkWriteError,
    OutcomeUnknown,
    PreconditionFailed,
    StorageUnavailable,
    UniqueViolation,
)
from ssshelf.storages.base import PutRequest, SupportsPutMany
from ssshelf.storages.sqlite import SQLiteStorage

from .consistency_support import assert_exactly_the_items_say, assert_visible_everywhere
from .models import BookmarkManager, bookmark


class Counted(SQLiteStorage):
    """Counts put_many requests; ``fail`` makes the n-th one fail."""

    def __init__(self, path: Path, fail: dict[int, BaseException] | None = None) -> None:
        super().__init__(path)
        self.calls: list[int] = []
        self.fail = fail or {}

    async def put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
        self.calls.append(len(puts))
        error = self.fail.get(len(self.calls))
        if isinstance(error, OutcomeUnknown):
            await super().put_many(puts)  # it landed; the answer did not
            raise error
        if error is not None:
            raise error
        return await super().put_many(puts)


def _items(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        bookmark(f"b{i:04d}", f"https://x/{i}", f"2024-01-{1 + i % 28:02d}T00:00:00", "t", **extra)
        for i in range(start, start + n)
    ]


async def test_new_items_go_in_batches(tmp_path: Path) -> None:
    store = Counted(tmp_path / "s.db")
    assert isinstance(store, SupportsPutMany)
    m = BookmarkManager(store)
    seen: list[int] = []
    assert await m.add_items(_items(600), progress=seen.append) == 600
    # 600 items x (3 entries + 1 reservation) = 2,400 objects in the first
    # round, then 600 items: a thousand objects a request at most.
    assert max(store.calls) <= 1000 and sum(store.calls) == 600 * 5
    assert len(store.calls) <= 9
    assert seen[-1] == 600 and seen == sorted(seen)
    for item in _items(600)[::97]:
        await assert_visible_everywhere(m, item)
    assert (await m.check(grace=0)).ok
    await store.close()


async def test_what_a_batch_cannot_create_is_written_one_by_one(tmp_path: Path) -> None:
    store = Counted(tmp_path / "s.db")
    m = BookmarkManager(store)
    await m.add_items(_items(10))
    replaced = _items(5, note="new")  # exist: replaced
    fresh = _items(5, start=10)
    twice = [{**fresh[0], "note": "first"}, {**fresh[0], "note": "last"}]  # the same pk twice
    assert await m.add_items(replaced + fresh + twice) == 12
    for item in replaced + fresh[1:] + twice[-1:]:
        await assert_visible_everywhere(m, item)
    await m.repair(grace=0)
    await assert_exactly_the_items_say(m)
    await store.close()


async def test_a_taken_value_stops_the_load_and_leaves_nothing_half_done(tmp_path: Path) -> None:
    store = Counted(tmp_path / "s.db")
    m = BookmarkManager(store)
    await m.add_item(bookmark("owner", "https://x/3", "2024-01-01T00:00:00"))
    with pytest.raises(BulkWriteError) as info:
        await m.add_items(_items(6))
    assert isinstance(info.value.error, UniqueViolation)
    assert (await m.get_item("owner"))["url"] == "https://x/3"
    assert await m.get_item("b0003") is None
    await m.repair(grace=0)
    await assert_exactly_the_items_say(m)
    await store.close()


async def test_a_batch_refused_before_anything_landed_falls_back(tmp_path: Path) -> None:
    store = Counted(tmp_path / "s.db", fail={2: StorageUnavailable("file locked")})
    m = BookmarkManager(store)
    assert await m.add_items(_items(20)) == 20  # the commit round failed: one by one
    for item in _items(20):
        await assert_visible_everywhere(m, item)
    await m.repair(grace=0)
    await assert_exactly_the_items_say(m)
    await store.close()


async def test_a_batch_commit_without_an_answer_is_outcome_unknown(tmp_path: Path) -> None:
    lost = OutcomeUnknown("answer lost")
    store = Counted(tmp_path / "s.db", fail={2: lost})
    m = BookmarkManager(store)
    with pytest.raises(BulkWriteError) as info:
        await m.add_items(_items(20))
    assert isinstance(info.value.error, OutcomeUnknown) and info.value.written == 0
    assert "may or may not have taken effect" in str(info.value.error)
    for item in _items(20):  # it had landed, and nothing it relies on was deleted
        await assert_visible_everywhere(m, item)
    assert (await m.check(grace=0)).ok
    await store.close()
