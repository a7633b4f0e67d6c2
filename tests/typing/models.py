"""Typed items and a typed manager the samples share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ssshelf import CManager, Collection, Desc
from ssshelf.items import DataclassItems


@dataclass
class Bookmark:
    id: str
    url: str
    saved_at: datetime
    tags: tuple[str, ...] = ()


@dataclass
class Note:
    id: str
    text: str


class Newest(Collection[Bookmark]):
    def key(self, item: Bookmark) -> Desc:
        return Desc(item.saved_at)

    async def first(self) -> Bookmark | None:
        """A method of its own: the manager's attribute keeps it."""
        async for item in self.iter_items(max_keys=1):
            return item
        return None


class ByUrl(Collection[Bookmark]):
    unique = True

    def key(self, item: Bookmark) -> str:
        return item.url


class ByTag(Collection[Bookmark]):
    def key(self, item: Bookmark) -> list[tuple[str]]:
        return [(tag,) for tag in item.tags]


class Bookmarks(CManager[Bookmark]):
    namespace = "bookmarks"
    item_manager = DataclassItems(Bookmark, pk="id")
    newest = Newest()
    by_url = ByUrl()
    by_tag = ByTag()


class NotesByText(Collection):
    """Declared the seed's way, without a type parameter: read through
    ``Notes``, it gives ``Note`` items all the same."""

    def key(self, item: Any) -> Any:
        return item.text


class Notes(CManager[Note]):
    namespace = "notes"
    item_manager = DataclassItems(Note, pk="id")
    by_text = NotesByText()


B1 = Bookmark("b1", "https://example.com/1", datetime(2024, 5, 1), ("python",))
B2 = Bookmark("b2", "https://example.com/2", datetime(2024, 5, 2), ("python", "s3"))
