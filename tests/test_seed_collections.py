"""Collections written the way the original project wrote them: ``key()``
may return any iterable of key tuples (a generator, a set, a list)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ssshelf import CManager, Collection, IManager
from ssshelf.errors import InvalidKeyError
from ssshelf.storages.base import Storage

from .consistency_support import assert_exactly_the_items_say


class TagsYielded(Collection):
    """As the original project's tag index: one tuple per tag, ``('',)`` for none."""

    def key(self, item: dict[str, Any]) -> Iterator[tuple[str]]:
        tags = item["tags"] or [""]
        for tag in tags:
            yield (tag,)


class WordsAsSet(Collection):
    def key(self, item: dict[str, Any]) -> set[tuple[str, int]]:
        return {(word, len(word)) for word in item["title"].split()}


class Posts(CManager):
    namespace = "posts"
    item_manager = IManager()
    by_tag = TagsYielded()
    by_word = WordsAsSet()


POST = {"pk": "p1", "title": "hello big world", "tags": ["a", "b"]}
UNTAGGED = {"pk": "p2", "title": "hello", "tags": []}


async def test_generators_and_sets_of_keys(storage: Storage) -> None:
    m = Posts(storage)
    await m.add_items([POST, UNTAGGED])
    assert (await m.by_tag.get_items(prefix_parts=["a"]))["items"] == [POST]
    assert (await m.by_tag.get_items(prefix_parts=[""]))["items"] == [UNTAGGED]
    assert [pk async for _, pk in m.by_tag.iter_keys()] == ["p2", "p1", "p1"]
    hello = await m.by_word.get_items(prefix_parts=["hello"])
    assert sorted(i["pk"] for i in hello["items"]) == ["p1", "p2"]
    assert (await m.by_word.get_items(prefix_parts=["world", 5]))["items"] == [POST]
    await m.update_item("p1", lambda item: {**item, "tags": ["c"], "title": "bye"})
    assert (await m.by_tag.get_items(prefix_parts=["a"]))["items"] == []
    assert (await m.by_word.get_items(prefix_parts=["bye"]))["items"][0]["pk"] == "p1"
    await m.repair(grace=0)
    await assert_exactly_the_items_say(m)


async def test_a_mapping_is_not_a_key(storage: Storage) -> None:
    class Wrong(Collection):
        def key(self, item: dict[str, Any]) -> Any:
            return {"tag": "a"}

    class Bad(CManager):
        namespace = "bad"
        item_manager = IManager()
        wrong = Wrong()

    with pytest.raises(InvalidKeyError, match="returned a dict"):
        await Bad(storage).add_item({"pk": "x"})
