"""The blocking twin of a ``CManager[Bookmark]``: the same types, without ``await``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import assert_type

from ssshelf import Collection, Versioned
from ssshelf.blocking import SyncCollection, SyncManager
from ssshelf.collections import ItemsPage, KeysPage
from ssshelf.keys import KeyTuple

from .models import B1, B2, Bookmark, Bookmarks


def run(url: str) -> None:
    twin = Bookmarks.sync(url)
    assert_type(twin, SyncManager[Bookmarks])
    with twin as m:
        assert_type(m, SyncManager[Bookmarks])
        assert_type(m.manager, Bookmarks)

        assert_type(m.add_item(B1), str)
        assert_type(m.create_item(B2), str)
        assert_type(m.add_items([B1, B2]), int)

        assert_type(m.get_item("b1"), Bookmark | None)
        assert_type(m.get_item_with_version("b1"), Versioned[Bookmark] | None)
        assert_type(m.get_items_by_pk(["b1", "b2"]), list[Bookmark | None])
        updated = m.update_item("b1", lambda b: replace(b, url="https://example.com/one"))
        assert_type(updated, Bookmark)
        assert updated.url == "https://example.com/one"
        assert_type(m.update_item_with_version("b1", lambda b: b), Versioned[Bookmark])

        # a collection of the twin reads the manager's items
        assert_type(m.newest, SyncCollection[Collection[Bookmark]])
        page = m.newest.get_items()
        assert_type(page, ItemsPage[Bookmark])
        assert [b.id for b in page["items"]] == ["b2", "b1"]
        assert_type(m.newest.iter_items(), Iterator[Bookmark])
        assert [b.id for b in m.by_tag.iter_items(prefix_parts=["s3"])] == ["b2"]
        assert_type(m.by_tag.count(prefix_parts=["s3"]), int)
        assert m.by_tag.count(prefix_parts=["s3"]) == 1
        assert_type(m.by_url.get_item("https://example.com/2"), Bookmark | None)
        assert_type(m.by_tag.get_keys(), KeysPage)
        assert_type(m.by_tag.iter_keys(), Iterator[tuple[KeyTuple, str]])
        assert_type(m.collections, Mapping[str, SyncCollection[Collection[Bookmark]]])
        assert_type(m.call(m.manager.newest.first), Bookmark | None)
        assert_type(m.iterate(m.manager.newest.iter_items), Iterator[Bookmark])

        assert_type(m.remove_item(B2), bool)
        assert_type(m.remove_items(["b1"]), int)
        assert m.get_item("b1") is None
