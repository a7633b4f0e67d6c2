"""The seed's way: managers, item managers and collections without a type
parameter stay ``Any`` throughout, with no error under ``mypy --strict``;
and dict items stated as such."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, assert_type

from ssshelf import CManager, Collection, IManager
from ssshelf.blocking import SyncCollection, SyncManager
from ssshelf.collections import ItemsPage
from ssshelf.utils import convert_datetime_to_str, json_dump


class Bookmark(IManager):
    def get_pk(self, item: Any) -> str:
        return str(item["pk"])

    def serialize_item(self, item: Any) -> bytes:
        return bytes(json_dump(item), "utf8")

    def deserialize_item(self, data: bytes) -> Any:
        return json.loads(data)


class AllBookmarks(Collection):
    def get_pk(self, item: Any) -> str:
        return str(item["pk"])

    def key(self, item: Any) -> Any:
        return convert_datetime_to_str(item["created_at"])


class BookmarkManager(CManager):
    item_manager = Bookmark()
    every = AllBookmarks()


class Overriding(CManager):
    """Overrides that narrow what the seed's Any allowed stay valid."""

    item_manager = Bookmark()
    namespace = "overriding"

    async def get_item(self, pk: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await super().get_item(pk)
        return found

    async def add_item(self, item: dict[str, Any], *, if_version: str | None = None) -> str:
        return await super().add_item(item, if_version=if_version)

    async def remove_item(self, item_or_pk: str, *, if_version: str | None = None) -> bool:
        return await super().remove_item(item_or_pk, if_version=if_version)


Doc = dict[str, Any]


class Docs(CManager[Doc]):
    namespace = "docs"
    # IManager() alone would do for mypy; pyright's strict mode wants the type stated.
    item_manager = IManager[Doc]()


async def run(url: str) -> None:
    bookmark_manager = BookmarkManager(url)  # a CManager[Any]: items are Any
    bookmark = {"pk": 1, "link": "http://google.com", "created_at": datetime(2024, 5, 1)}
    await bookmark_manager.add_item(bookmark)
    resp = await bookmark_manager.every.get_items()
    assert_type(resp, ItemsPage[Any])
    assert resp["items"][0]["link"] == "http://google.com"
    assert_type(await bookmark_manager.get_item("1"), Any | None)
    assert_type(bookmark_manager.every, Collection[Any])
    assert_type(bookmark_manager.every.iter_items(), AsyncIterator[Any])
    await bookmark_manager.close()


def run_blocking(url: str) -> None:
    with BookmarkManager.sync(url) as twin:
        assert_type(twin, SyncManager[BookmarkManager])
        assert_type(twin.every, SyncCollection[Collection[Any]])
        assert_type(twin.every.iter_items(), Iterator[Any])
        assert_type(twin.get_item("1"), Any | None)
        twin.add_item({"pk": 2, "link": "http://example.com", "created_at": datetime.now()})
        assert len(twin.every.get_items()["items"]) == 1


async def run_dicts(url: str) -> None:
    async with Docs(url) as docs:
        await docs.add_item({"pk": "d1", "title": "typed dicts"})
        found = await docs.get_item("d1")
        assert_type(found, Doc | None)
        assert found == {"pk": "d1", "title": "typed dicts"}


async def run_overriding(url: str) -> None:
    async with Overriding(url) as overriding:
        await overriding.add_item({"pk": "o1"})
        assert_type(await overriding.get_item("o1"), dict[str, Any] | None)
        assert await overriding.remove_item("o1")
