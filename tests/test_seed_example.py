"""The seed README's example, as written (with its one typo fixed), on every backend."""

from __future__ import annotations

import json
from datetime import datetime

import simpleflake

from ssshelf.collections import Collection
from ssshelf.items import IManager
from ssshelf.managers import CManager
from ssshelf.storages.base import Storage
from ssshelf.utils import convert_datetime_to_str, json_dump


class Bookmark(IManager):
    def get_pk(self, item):  # type: ignore[no-untyped-def]
        return str(item["pk"])

    def serialize_item(self, item):  # type: ignore[no-untyped-def]
        return bytes(json_dump(item), "utf8")

    def deserialize_item(self, data):  # type: ignore[no-untyped-def]
        return json.loads(data)


class AllBookmarks(Collection):
    def get_pk(self, item):  # type: ignore[no-untyped-def]
        return str(item["pk"])

    def key(self, item):  # type: ignore[no-untyped-def]
        return convert_datetime_to_str(item["created_at"])


class BookmarkManager(CManager):
    item_manager = Bookmark()
    every = AllBookmarks()


async def test_seed_example_runs_as_written(storage: Storage) -> None:
    bookmark_manager = BookmarkManager(storage)

    bookmark = {
        "pk": simpleflake.simpleflake(),
        "link": "http://google.com",
        "created_at": datetime.utcnow(),
    }

    await bookmark_manager.add_item(bookmark)

    resp = await bookmark_manager.every.get_items()

    assert resp["items"][0]["link"] == "http://google.com"
    # After the JSON round trip created_at is a string, and reads still verify.
    assert isinstance(resp["items"][0]["created_at"], str)
    assert resp["after"] is None


async def test_seed_example_update_and_remove_keep_the_index_right(storage: Storage) -> None:
    manager = BookmarkManager(storage)
    pk = simpleflake.simpleflake()
    first = {"pk": pk, "link": "http://a.example", "created_at": datetime(2020, 1, 1)}
    await manager.add_item(first)
    moved = {**first, "created_at": datetime(2021, 1, 1)}
    await manager.add_item(moved)
    keys = await manager.every.get_keys()
    assert keys["entries"] == [(("2021-01-01T00:00:00Z",), str(pk))]
    assert await manager.remove_item(str(pk)) is True
    assert (await manager.every.get_keys())["keys"] == []
    assert await manager.get_item(str(pk)) is None
