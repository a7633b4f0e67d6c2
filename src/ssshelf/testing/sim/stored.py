"""Everything the simulation knows about how ssshelf lays objects out.

This is the one module that depends on the stored format (key layout, item
header, reservation body), so that a change of format is one edit here.  The
checks use it only where no public API answers the question at zero cost and
without side effects: to read an item out of a raw object the store just
applied (I4 after every request, the history of an item's states), to see
who claims a unique value when (a raw reservation just applied), and to list
reservation objects (I3).  Everything else goes through the manager's public
reads.
"""

from __future__ import annotations

from typing import Any

from ...envelope import decode_envelope, decode_reservation
from ...errors import CorruptItemError
from ...managers import CManager
from ...storages.base import Storage


def item_pk(manager: CManager, key: str) -> str | None:
    """The pk whose item object ``key`` is, or ``None`` for any other object."""
    layout = manager.layout
    if not key.startswith(layout.item_prefix):
        return None
    return layout.pk_from_item_key(key)


def decode_item(manager: CManager, key: str, data: bytes) -> Any | None:
    """The item stored in an item object, or ``None`` when the object does not
    hold a live item (unreadable)."""
    try:
        envelope = decode_envelope(data, key=key)
        if envelope.removed:
            return None  # a tombstone: what a removed item leaves without conditional delete
        return manager.item_manager.deserialize_item(envelope.payload)
    except (CorruptItemError, ValueError):
        return None


def reservation_claim(
    manager: CManager, key: str, data: bytes | None
) -> tuple[str, str, str | None] | None:
    """For a reservation object just written (``data``) or deleted (None):
    (collection, encoded value, the pk it names — None when deleted, freed or
    unreadable); ``None`` for any other object."""
    prefix = f"{manager.layout.namespace}/u/"
    if not key.startswith(prefix):
        return None
    collection, _, encoded = key[len(prefix) :].partition("/")
    if data is None:
        return collection, encoded, None
    try:
        reservation = decode_reservation(data, key=key)
    except CorruptItemError:
        return collection, encoded, None
    return collection, encoded, None if reservation.released else reservation.pk


async def reservation_holders(manager: CManager, storage: Storage) -> dict[tuple[str, str], str]:
    """(unique collection, encoded value) -> pk named by each reservation object."""
    out: dict[tuple[str, str], str] = {}
    for name, collection in manager.collections.items():
        if not collection.unique:
            continue
        prefix = manager.layout.reservation_prefix(name)
        after: str | None = None
        while True:
            page = await storage.list(prefix, after=after)
            for key in page.keys:
                obj = await storage.get(key)
                if obj is None:
                    continue
                try:
                    reservation = decode_reservation(obj.data, key=key)
                except CorruptItemError:
                    out[(name, key[len(prefix) :])] = "<unreadable>"
                    continue
                if not reservation.released:  # a freed value's marker holds nothing
                    out[(name, key[len(prefix) :])] = reservation.pk
            if page.next_after is None:
                break
            after = page.next_after
    return out
