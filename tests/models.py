"""Managers the tests share: bookmarks with a newest-first index, tags and a unique URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ssshelf import CManager, Collection, Desc, IManager


class Bookmarks(IManager):
    """Dict items with a "pk"; JSON (the defaults)."""


class Newest(Collection):
    def key(self, item: dict[str, Any]) -> Any:
        return (Desc(datetime.fromisoformat(item["created"])),)


class ByTag(Collection):
    def key(self, item: dict[str, Any]) -> Any:
        return [(tag, Desc(datetime.fromisoformat(item["created"]))) for tag in item["tags"]]


class ByUrl(Collection):
    unique = True

    def key(self, item: dict[str, Any]) -> Any:
        return item["url"]


class BookmarkManager(CManager):
    namespace = "bookmarks"
    item_manager = Bookmarks()
    newest = Newest()
    by_tag = ByTag()
    by_url = ByUrl()


def bookmark(pk: str, url: str, created: str, *tags: str, **extra: Any) -> dict[str, Any]:
    return {"pk": pk, "url": url, "created": created, "tags": list(tags), **extra}


class Counter(CManager):
    """A plain counter item: no collections."""

    namespace = "counters"
    item_manager = IManager()
