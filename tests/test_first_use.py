"""What a newcomer meets first (issue 16): the default store, a closed manager,
arguments of the wrong type, the blocking twin's ``storage=``, and the seed's
key helpers."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ssshelf import CManager, Collection, IManager
from ssshelf.errors import InvalidArgument, StorageClosed
from ssshelf.keys import decode_str_as_int, encode_int_as_str, reverse
from ssshelf.storages.base import Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.testing import CountingStorage
from ssshelf.utils import datetime_to_secs

from .models import BookmarkManager, bookmark


class ByEmail(Collection):
    unique = True

    def key(self, item: dict[str, Any]) -> Any:
        return item["email"]


class Users(CManager):
    namespace = "users"
    item_manager = IManager()
    by_email = ByEmail()


# -- a closed manager ---------------------------------------------------------------


async def test_a_closed_manager_refuses_every_call_before_any_request(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    counted = CountingStorage(storage)
    m = BookmarkManager(counted)
    await m.add_item(bookmark("a", "https://a", "2024-01-01T00:00:00", "x"))
    await m.close()
    await m.close()  # idempotent
    assert m.closed
    counted.reset()
    calls = [
        lambda: m.get_item("a"),
        lambda: m.get_item_with_version("a"),
        lambda: m.get_items_by_pk(["a"]),
        lambda: m.add_item(bookmark("b", "https://b", "2024-01-02T00:00:00")),
        lambda: m.create_item(bookmark("b", "https://b", "2024-01-02T00:00:00")),
        lambda: m.update_item("a", lambda item: item),
        lambda: m.remove_item("a"),
        lambda: m.reindex_item("a", "newest"),
        lambda: m.add_items([bookmark("c", "https://c", "2024-01-03T00:00:00")]),
        lambda: m.remove_items(["a"]),
        lambda: m.check(),
        lambda: m.repair(),
        lambda: m.reindex("newest"),
        lambda: m.newest.get_items(),
        lambda: m.newest.get_keys(),
        lambda: m.by_tag.list_entries(),
        lambda: m.by_url.get_item("https://a"),
    ]
    with caplog.at_level(logging.WARNING, logger="ssshelf"):
        for call in calls:
            with pytest.raises(StorageClosed, match="BookmarkManager was closed"):
                await call()
        with pytest.raises(StorageClosed):
            [i async for i in m.newest.iter_items()]
    assert counted.total == 0, "no request after close"
    assert caplog.records == [], "nothing tried, so nothing to clean up"
    # the storage was given, not opened: it is still its owner's
    assert await BookmarkManager(storage).get_item("a") is not None


async def test_a_manager_that_opened_its_store_closes_it(tmp_path: Path) -> None:
    m = BookmarkManager(f"sqlite:///{tmp_path / 'own.db'}")
    await m.close()
    with pytest.raises(StorageClosed):
        await m.get_item("a")


# -- arguments of the wrong type --------------------------------------------------


@pytest.mark.parametrize("wrong", [123, 1.5, b"sqlite:///x.db", object()])
def test_a_manager_refuses_something_that_is_no_storage(wrong: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"Users\(\) takes a storage"):
        Users(wrong)


async def test_wrong_argument_types_are_refused_before_any_request(
    local_storage: Storage,
) -> None:
    counted = CountingStorage(local_storage)
    users = Users(counted)
    user = {"pk": "u1", "email": "a@example.com"}
    await users.add_item(user)
    counted.reset()
    with pytest.raises(InvalidArgument, match="if_version must be a version tag"):
        await users.add_item(user, if_version=123)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="if_version must be a version tag"):
        await users.remove_item("u1", if_version=b"v")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="takes a function of the item"):
        await users.update_item("u1", {"email": "b@example.com"})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="retries must be an int >= 0"):
        await users.update_item("u1", lambda u: u, retries=-1)
    with pytest.raises(InvalidArgument, match="has no collection 'nope'"):
        await users.reindex_item("u1", "nope")
    assert counted.total == 0
    assert await users.get_item("u1") == user


# -- the blocking twin takes storage= as the manager does ----------------------------


def test_sync_takes_storage_as_a_keyword(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with Users.sync(storage="memory://") as users:
        users.add_item({"pk": "u1", "email": "a@example.com"})
        assert users.get_item("u1") == {"pk": "u1", "email": "a@example.com"}
    monkeypatch.setenv("SSSHELF_URL", f"sqlite:///{tmp_path / 'env.db'}")
    shared = InMemoryStorage()
    with Users.sync(storage=shared) as users:
        assert isinstance(users.manager.storage.inner, InMemoryStorage)  # type: ignore[attr-defined]
    assert list(tmp_path.iterdir()) == [], "the store given wins over SSSHELF_URL"


def test_sync_with_nothing_uses_the_embedded_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with Users.sync() as users:
        users.add_item({"pk": "u1", "email": "a@example.com"})
    assert (tmp_path / "ssshelf.db").is_file()
    with Users.sync("sqlite:///ssshelf.db") as users:
        assert users.get_item("u1") is not None


async def test_the_default_is_one_sqlite_file_for_manager_and_twin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    async with Users() as users:
        assert isinstance(users.storage, SQLiteStorage)
        await users.add_item({"pk": "u1", "email": "a@example.com"})
    with Users.sync() as twin:
        assert twin.get_item("u1") == {"pk": "u1", "email": "a@example.com"}


# -- the seed's key helpers ----------------------------------------------------------


def test_the_seeds_int_strings_round_trip_and_order_at_one_length() -> None:
    assert encode_int_as_str(0) == "A"
    assert encode_int_as_str(52) == "BA"
    assert decode_str_as_int("BA") == 52
    for n in (0, 1, 51, 52, 123, 10**12):
        assert decode_str_as_int(encode_int_as_str(n)) == n
    padded = [encode_int_as_str(n).rjust(4, "A") for n in (3, 2, 1, 4, 5, 60, 3000)]
    assert sorted(padded) == [encode_int_as_str(n).rjust(4, "A") for n in (1, 2, 3, 4, 5, 60, 3000)]


def test_the_seeds_reverse_sorts_newest_first() -> None:
    # the original project's own test: reversed digits sort in the opposite order
    encoded = [(n, reverse(encode_int_as_str(n))) for n in [3, 2, 1, 4, 5]]
    assert [n for n, _ in sorted(encoded, key=lambda pair: pair[1])] == [5, 4, 3, 2, 1]
    assert reverse("Az") == "zA"
    assert reverse(reverse("Hello")) == "Hello"


def test_the_seeds_helpers_refuse_what_they_cannot_do() -> None:
    with pytest.raises(InvalidArgument, match="int >= 0"):
        encode_int_as_str(-1)  # the original looped forever
    with pytest.raises(InvalidArgument, match="not a digit"):
        decode_str_as_int("A1")
    with pytest.raises(InvalidArgument, match="outside A-Z a-z"):
        reverse("a-b")


def test_datetime_to_secs_is_the_originals_local_time_seconds() -> None:
    when = datetime(2024, 5, 1, 12, 30, 15)
    assert datetime_to_secs(when) == int(time.mktime(when.timetuple()))
    assert datetime_to_secs(datetime(2024, 5, 1, 12, 30, 15, 999)) == datetime_to_secs(when)
    # its time zone is ignored, as the original's was
    assert datetime_to_secs(when.replace(tzinfo=UTC)) == datetime_to_secs(when)


class SeedNewest(Collection):
    """A collection written the original project's way: fixed-length base-52
    seconds, reversed for newest first."""

    def key(self, item: dict[str, Any]) -> Any:
        return reverse(encode_int_as_str(datetime_to_secs(item["created_at"])).rjust(7, "A"))


class SeedBookmarks(CManager):
    namespace = "seed-bookmarks"
    item_manager = IManager()
    newest = SeedNewest()


async def test_a_seed_style_collection_loads_and_orders_newest_first(
    local_storage: Storage,
) -> None:
    class Items(IManager):
        def serialize_item(self, item: dict[str, Any]) -> bytes:
            from ssshelf.utils import json_dump

            return json_dump(item).encode()

        def deserialize_item(self, data: bytes) -> dict[str, Any]:
            import json

            loaded: dict[str, Any] = json.loads(data)
            loaded["created_at"] = datetime.fromisoformat(loaded["created_at"])
            return loaded

    class Seeded(SeedBookmarks):
        item_manager = Items()

    m = Seeded(local_storage)
    for day in (3, 1, 2):
        await m.add_item({"pk": f"d{day}", "created_at": datetime(2024, 5, day)})
    assert [i["pk"] for i in (await m.newest.get_items())["items"]] == ["d3", "d2", "d1"]
