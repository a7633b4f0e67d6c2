"""The public surface: one choice per question, typed errors, no silent empties."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import ssshelf
from ssshelf import CManager, Collection, Desc, IManager, errors
from ssshelf.errors import (
    ConfigurationError,
    ConflictError,
    InvalidArgument,
    ItemNotFound,
    SSShelfError,
)
from ssshelf.storages.base import Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import SQLiteStorage

from .models import BookmarkManager, Counter, bookmark


def test_every_error_class_is_exported_at_the_top() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, SSShelfError)
    }
    assert classes <= set(ssshelf.__all__)
    assert {"SQLiteStorage", "InMemoryStorage", "S3Storage", "CachedStorage"} <= set(
        ssshelf.__all__
    )
    from ssshelf.storages.s3 import S3Storage

    assert ssshelf.S3Storage is S3Storage


def test_a_collection_may_not_hide_a_member() -> None:
    with pytest.raises(ConfigurationError, match="may not be named 'storage'"):

        class Bad(CManager):
            item_manager = IManager()
            storage = Collection()

    with pytest.raises(ConfigurationError, match="may not be named 'close'"):

        class AlsoBad(CManager):
            item_manager = IManager()
            close = Collection()


async def test_no_storage_is_the_embedded_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    async with BookmarkManager() as m:  # nothing given, SSSHELF_URL unset
        assert isinstance(m.storage, SQLiteStorage)
        await m.add_item(bookmark("a", "https://a", "2024-01-01T00:00:00"))
    assert (tmp_path / "ssshelf.db").is_file()
    async with BookmarkManager("sqlite:///ssshelf.db") as again:
        assert await again.get_item("a") is not None
    monkeypatch.setenv("SSSHELF_URL", "memory://")
    assert isinstance(BookmarkManager().storage, InMemoryStorage)


async def test_close_leaves_a_given_storage_open(tmp_path: Path) -> None:
    shared = SQLiteStorage(tmp_path / "s.db")
    first, second = BookmarkManager(shared), BookmarkManager(shared)
    await first.add_item(bookmark("a", "https://a", "2024-01-01T00:00:00"))
    await first.close()
    assert await second.get_item("a") is not None  # still usable by its other user
    await shared.close()
    opened = BookmarkManager(f"sqlite:///{tmp_path / 'own.db'}")
    await opened.add_item(bookmark("a", "https://a", "2024-01-01T00:00:00"))
    async with opened:
        pass
    with pytest.raises(SSShelfError, match="closed"):
        await opened.get_item("a")  # a storage it opened itself is closed with it


async def test_update_of_a_missing_item(storage: Storage) -> None:
    with pytest.raises(ItemNotFound) as info:
        await Counter(storage).update_item("nope", lambda item: item)
    assert isinstance(info.value, KeyError) and isinstance(info.value, SSShelfError)
    assert str(info.value) == "no item with pk 'nope'" and info.value.pk == "nope"


async def test_update_item_with_version_returns_a_usable_version(storage: Storage) -> None:
    m = Counter(storage)
    await m.add_item({"pk": "c", "n": 0})
    done = await m.update_item_with_version("c", lambda item: {**item, "n": 1})
    assert done.item == {"pk": "c", "n": 1}
    await m.add_item({"pk": "c", "n": 2}, if_version=done.version)
    with pytest.raises(ConflictError):
        await m.add_item({"pk": "c", "n": 3}, if_version=done.version)


async def _three(storage: Storage) -> BookmarkManager:
    m = BookmarkManager(storage)
    await m.add_items(
        bookmark(str(i), f"https://{i}", f"2024-01-0{i + 1}T00:00:00", "red") for i in range(3)
    )
    return m


async def test_page_size_is_max_keys_everywhere(storage: Storage) -> None:
    m = await _three(storage)
    assert len([i async for i in m.newest.iter_items(max_keys=1)]) == 3
    assert len([k async for k in m.newest.iter_keys(max_keys=2)]) == 3
    assert len([i async for i in m.newest.iter_items(page_size=1)]) == 3  # the former name


async def test_a_string_prefix_is_one_part(storage: Storage) -> None:
    m = await _three(storage)
    by_list = await m.by_tag.get_items(prefix_parts=["red"])
    assert await m.by_tag.get_items(prefix_parts="red") == by_list
    assert len(by_list["items"]) == 3


@pytest.mark.parametrize("cursor", ["nonsense", "x" * 20, 42])
async def test_a_cursor_that_is_not_ours(storage: Storage, cursor: Any) -> None:
    m = await _three(storage)
    with pytest.raises(InvalidArgument, match="not a cursor of collection 'newest'"):
        await m.newest.get_items(after=cursor)


async def test_bounds_that_cannot_match_are_explained(storage: Storage) -> None:
    m = await _three(storage)
    with pytest.raises(InvalidArgument, match="has 3 parts but its keys have 2"):
        await m.by_tag.get_items(prefix_parts=["red", Desc("x"), "more"])
    with pytest.raises(InvalidArgument, match="descending; write Desc"):
        await m.newest.get_items(start=(datetime(2024, 1, 2),))
    # a part of the wrong type names the type expected, in every bound
    with pytest.raises(
        InvalidArgument, match=r"part 0 of its keys is of type datetime .* is of type str"
    ):
        await m.newest.get_items(start=("2024-01-02T00:00:00",))
    with pytest.raises(
        InvalidArgument, match=r"part 0 of its keys is of type str .* 5 is of type int"
    ):
        await m.by_tag.get_items(prefix_parts=[5])
    with pytest.raises(InvalidArgument, match="part 1 of its keys is of type datetime"):
        await m.by_tag.get_keys(prefix_parts=["red", Desc("2024")])
    with pytest.raises(InvalidArgument, match="is of type str"):
        await m.newest.get_items(end=("x",))  # not empty, but unbounded: refused all the same
    with pytest.raises(InvalidArgument, match="does not sort before"):
        await m.newest.get_items(start=(Desc(1),), end=(Desc(5),))
    assert (await m.by_tag.get_items(prefix_parts=["blue"]))["items"] == []  # simply none


def _when(item: dict[str, Any]) -> datetime:
    """The item's time (stored as JSON, it reads back as an ISO string)."""
    when = item["when"]
    return datetime.fromisoformat(when) if isinstance(when, str) else when


class _When(Collection):
    def key(self, item: dict[str, Any]) -> Any:
        return _when(item)


class _Newest(Collection):
    def key(self, item: dict[str, Any]) -> Any:
        return Desc(_when(item))


class _Events(CManager):
    namespace = "events"
    item_manager = IManager()
    when = _When()
    newest = _Newest()


async def test_naive_datetimes_are_utc_and_order_with_aware_ones(storage: Storage) -> None:
    m = _Events(storage)
    naive_2025 = {"pk": "a", "when": datetime(2025, 6, 1)}
    aware_2020 = {"pk": "b", "when": datetime(2020, 1, 1, tzinfo=UTC)}
    await m.add_items([naive_2025, aware_2020])
    # both are instants: 2020 first, whichever of them is naive
    assert [i["pk"] for i in (await m.when.get_items())["items"]] == ["b", "a"]
    assert [i["pk"] for i in (await m.newest.get_items())["items"]] == ["a", "b"]
    # an aware prefix finds the naive entry, and a naive one the aware entry
    found = await m.newest.get_items(prefix_parts=[Desc(datetime(2025, 6, 1, tzinfo=UTC))])
    assert [i["pk"] for i in found["items"]] == ["a"]
    found = await m.when.get_items(prefix_parts=[datetime(2020, 1, 1)])
    assert [i["pk"] for i in found["items"]] == ["b"]
    assert (await m.check()).ok


async def test_keys_written_when_naive_was_its_own_type_are_moved_by_reindex(
    local_storage: Storage,
) -> None:
    """Data from before naive meant UTC: its entries carry the old ``t`` tag.
    ``check`` reports them, ``reindex`` moves them, and order is right after."""
    from ssshelf.envelope import decode_envelope

    m = _Events(local_storage)
    await m.add_items(
        [
            {"pk": "a", "when": datetime(2025, 6, 1)},
            {"pk": "b", "when": datetime(2020, 1, 1, tzinfo=UTC)},
        ]
    )
    # Rewrite item a as the earlier format stored it: a "t" key, its entry.
    stored = await local_storage.get(m.layout.item_key("a"))
    assert stored is not None
    envelope = decode_envelope(stored.data, key=stored.key)
    ((new_key, write_id),) = envelope.entries["when"].items()
    old_key = "t" + new_key[1:]
    envelope.entries["when"] = {old_key: write_id}
    await local_storage.put(m.layout.entry_key("when", old_key, "a", write_id), b"")
    await local_storage.delete(m.layout.entry_key("when", new_key, "a", write_id))
    await local_storage.put(stored.key, envelope.encode(), if_version=stored.version)
    # The old key decodes, verifies, and sorts apart: before every instant.
    assert [i["pk"] for i in (await m.when.get_items())["items"]] == ["a", "b"]
    report = await m.reindex("when")
    assert report.reindexed == 1
    assert [i["pk"] for i in (await m.when.get_items())["items"]] == ["b", "a"]
    assert (await m.check(grace=0)).ok
