"""The async API of a ``CManager[Bookmark]``: every read gives ``Bookmark``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, assert_type

from ssshelf import Collection, Versioned
from ssshelf.collections import ItemsPage, KeysPage
from ssshelf.items import IManager
from ssshelf.keys import KeyTuple
from ssshelf.reading import VerifiedPage

from .models import B1, B2, Bookmark, Bookmarks, ByTag, Newest, Note, Notes, NotesByText


async def retag(item: Bookmark) -> Bookmark:
    return replace(item, tags=(*item.tags, "async"))


def mark_read(item: Bookmark) -> None:
    item.tags = (*item.tags, "read")


async def run(url: str) -> None:
    async with Bookmarks(url) as m:
        assert_type(m, Bookmarks)
        item_manager: IManager[Bookmark] = m.item_manager
        assert item_manager is Bookmarks.item_manager

        # writes take a Bookmark
        assert_type(await m.add_item(B1), str)
        assert_type(await m.create_item(B2), str)
        assert_type(await m.add_items([B1, B2]), int)

        # reads by pk give Bookmark
        assert_type(await m.get_item("b1"), Bookmark | None)
        found = await m.get_item_with_version("b1")
        assert_type(found, Versioned[Bookmark] | None)
        assert found is not None
        item, version = found
        assert_type(item, Bookmark)
        assert_type(version, str)
        assert_type(await m.get_items_by_pk(["b1", "b2", "nope"]), list[Bookmark | None])
        assert (await m.get_items_by_pk(["b1", "nope"]))[1] is None

        # update_item's function takes and gives a Bookmark (or changes it in place)
        updated = await m.update_item("b1", lambda b: replace(b, url="https://example.com/one"))
        assert_type(updated, Bookmark)
        assert updated.url == "https://example.com/one"
        assert_type(await m.update_item("b1", retag), Bookmark)
        assert_type(await m.update_item("b1", mark_read), Bookmark)
        written = await m.update_item_with_version("b1", mark_read)
        assert_type(written, Versioned[Bookmark])
        assert written.item.tags[-1] == "read"

        # collections declared as Collection[Bookmark] give Bookmark
        assert_type(m.newest, Newest)
        assert_type(Bookmarks.newest, Newest)
        page = await m.newest.get_items()
        assert_type(page, ItemsPage[Bookmark])
        assert_type(page["items"], list[Bookmark])
        assert [b.id for b in page["items"]] == ["b2", "b1"]
        assert_type(page["after"], str | None)
        assert_type(m.newest.iter_items(), AsyncIterator[Bookmark])
        assert [b.id async for b in m.by_tag.iter_items(prefix_parts=["s3"])] == ["b2"]
        assert_type(await m.newest.first(), Bookmark | None)
        assert_type(await m.newest.count(), int)
        assert await m.by_tag.count(prefix_parts=["s3"]) == 1
        assert_type(await m.by_url.get_item("https://example.com/2"), Bookmark | None)
        keys = await m.by_tag.get_keys()
        assert_type(keys, KeysPage)
        assert_type(keys["entries"], list[tuple[KeyTuple, str]])
        assert_type(m.by_tag.iter_keys(), AsyncIterator[tuple[KeyTuple, str]])
        assert_type(m.collections, dict[str, Collection[Bookmark]])
        by_tag: ByTag = m.by_tag
        entries, _ = await by_tag.list_entries()
        assert_type(await m.verified_page("by_tag", entries), VerifiedPage[Bookmark])
        assert_type(await m.verified_items("by_tag", entries), list[Bookmark])

        # removing takes a Bookmark or a pk
        assert_type(await m.remove_item(B2), bool)
        assert_type(await m.remove_item("b1"), bool)
        assert_type(await m.remove_items([B1, "b2", 3]), int)
        assert await m.get_item("b1") is None


async def untyped_collections_take_the_managers_type(url: str) -> None:
    """A collection declared without a type parameter, read through a typed
    manager, gives the manager's items."""
    async with Notes(url) as notes:
        assert_type(notes.by_text, Collection[Note])
        await notes.add_item(Note("n1", "hello"))
        page = await notes.by_text.get_items(prefix_parts=["hello"])
        assert_type(page, ItemsPage[Note])
        assert_type(page["items"], list[Note])
        assert [n.id for n in page["items"]] == ["n1"]
        assert_type(notes.by_text.iter_items(), AsyncIterator[Note])
        assert_type(Notes.by_text, NotesByText)


def untyped_collections_give_any(m: Bookmarks) -> None:
    """A collection declared without a type parameter, on its own, is a Collection[Any]."""

    class Loose(Collection):
        def key(self, item: Any) -> Any:
            return item.url

    loose = Loose()
    assert_type(loose.iter_items(), AsyncIterator[Any])
