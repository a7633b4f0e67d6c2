"""Helpers for the consistency tests: what the store should hold, and checks."""

from __future__ import annotations

from typing import Any

from ssshelf import CManager
from ssshelf.envelope import decode_reservation
from ssshelf.keys import decode_tuple, encode_tuple, normalize_key

Triple = tuple[str, tuple[Any, ...], str]  # (collection, key tuple, pk)


async def all_items(manager: CManager) -> dict[str, Any]:
    """Every item, read through its item object (the commit point)."""
    items: dict[str, Any] = {}
    after = None
    while True:
        page = await manager.storage.list(manager.layout.item_prefix, after=after)
        for key in page.keys:
            pk = manager.layout.pk_from_item_key(key)
            item = await manager.get_item(pk)
            if item is not None:
                items[pk] = item
        if page.next_after is None:
            return items
        after = page.next_after


def listed_keys(collection: Any, item: Any) -> list[tuple[Any, ...]]:
    """The key tuples of ``item`` in ``collection`` as a listing returns them
    (a naive datetime comes back as the aware UTC instant it stands for)."""
    keys = normalize_key(collection.key(item), collection=collection.name)
    return [decode_tuple(encode_tuple(key)) for key in keys]


def expected_entries(manager: CManager, items: dict[str, Any]) -> list[Triple]:
    """The entries the items' own keys give them, in no particular order."""
    out: list[Triple] = []
    for pk, item in items.items():
        for name, collection in manager.collections.items():
            for key in listed_keys(collection, item):
                out.append((name, key, pk))
    return out


async def listed_entries(manager: CManager) -> list[Triple]:
    """Every entry object in the store (valid or not)."""
    out: list[Triple] = []
    for name, collection in manager.collections.items():
        async for key, pk in collection.iter_keys():
            out.append((name, key, pk))
    return out


async def reservation_holders(manager: CManager) -> dict[tuple[str, str], str]:
    """(collection, encoded value) -> pk named by the reservation object."""
    out: dict[tuple[str, str], str] = {}
    for name, collection in manager.collections.items():
        if not collection.unique:
            continue
        prefix = manager.layout.reservation_prefix(name)
        page = await manager.storage.list(prefix)
        for key in page.keys:
            obj = await manager.storage.get(key)
            assert obj is not None
            holder = decode_reservation(obj.data, key=key)
            if not holder.released:  # a freed value's marker (stores without conditional delete)
                out[(name, key[len(prefix) :])] = holder.pk
    return out


def expected_reservations(manager: CManager, items: dict[str, Any]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for pk, item in items.items():
        for name, collection in manager.collections.items():
            if collection.unique:
                for key in normalize_key(collection.key(item), collection=name):
                    out[(name, encode_tuple(key))] = pk
    return out


async def assert_reads_never_lie(manager: CManager) -> None:
    """I1: no read returns an item through an entry the item does not hold."""
    for name, collection in manager.collections.items():
        after = None
        while True:
            entries, after = await collection.list_entries(1000, after)
            for entry in entries:
                for item in await manager.verified_items(name, [entry]):
                    assert entry.key in listed_keys(collection, item), (
                        name,
                        entry,
                        item,
                    )
            if after is None:
                break


async def assert_visible_everywhere(manager: CManager, item: Any) -> None:
    """I2: an item is found by pk and through each of its collections."""
    pk = manager.item_manager.get_pk(item)
    assert await manager.get_item(pk) == item
    for name, collection in manager.collections.items():
        for key in normalize_key(collection.key(item), collection=name):
            resp = await collection.get_items(prefix_parts=list(key), max_keys=1000)
            assert item in resp["items"], (name, key, item)
            if collection.unique:
                assert await collection.get_item(key) == item


async def assert_exactly_the_items_say(manager: CManager) -> None:
    """I3: every entry/reservation is one the items give, once; nothing else."""
    items = await all_items(manager)
    assert sorted(map(repr, await listed_entries(manager))) == sorted(
        map(repr, expected_entries(manager, items))
    )
    assert await reservation_holders(manager) == expected_reservations(manager, items)
