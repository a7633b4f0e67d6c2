"""``stats``: how many items a manager's namespace holds, and its objects.

Items are counted as reads see them: live item objects (not tombstones,
not unreadable ones), and per collection what ``Collection.count`` gives
(entries their item names); beside them, the raw objects under each prefix
(one listing a prefix), which include leftovers of crashed writes that
``check`` tells apart and ``repair`` removes.  The library calls behind it:
``Storage.list`` over ``manager.layout``'s prefixes, ``Collection.count``
and the manager's reader.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..collections import Collection
from ..managers import CManager
from ..reading import Stored
from ..storages.base import MAX_LIST_LIMIT, Storage
from .console import Console
from .progress import Progress
from .render import dumps_line


async def count_live_items(manager: CManager, progress: Progress, base: int) -> tuple[int, int]:
    """(live items, item objects) of ``manager``: every item object read once,
    a page at a time in as few requests as the storage allows, none deserialised."""
    storage, layout = manager.storage, manager.layout
    live = objects = 0
    after: str | None = None
    while True:
        page = await storage.list(layout.item_prefix, after=after, limit=MAX_LIST_LIMIT)
        pks = []
        for key in page.keys:
            try:
                pks.append(layout.pk_from_item_key(key))
            except ValueError:
                continue
        objects += len(page.keys)
        reads = await manager.reader.read_many(pks)
        live += sum(1 for read in reads if isinstance(read, Stored) and read.live)
        progress(base + objects)
        after = page.next_after
        if after is None:
            return live, objects


async def count_keys(storage: Storage, prefix: str, progress: Progress, base: int) -> int:
    """How many keys start with ``prefix`` (``progress`` sees ``base`` + the count so far)."""
    count = 0
    after: str | None = None
    while True:
        page = await storage.list(prefix, after=after, limit=MAX_LIST_LIMIT)
        count += len(page.keys)
        progress(base + count)
        after = page.next_after
        if after is None:
            return count


def _counted(count: int, one: str, many: str) -> str:
    return f"{count:>8,} {one if count == 1 else many}"


async def run_stats(manager: CManager, args: argparse.Namespace, console: Console) -> int:
    """Count live items (in all and per collection), entries and reservations."""
    storage, layout = manager.storage, manager.layout
    progress = Progress("stats", console.err)
    try:
        items, item_objects = await count_live_items(manager, progress, 0)
        seen = item_objects
        collections: dict[str, dict[str, Any]] = {}
        for name, collection in manager.collections.items():
            entries = await count_keys(storage, layout.entry_prefix(name), progress, seen)
            seen += entries
            row: dict[str, Any] = {
                "items": await Collection.count(collection),  # a subclass may have its own count
                "entries": entries,
                "unique": collection.unique,
            }
            if collection.unique:
                row["reservations"] = await count_keys(
                    storage, layout.reservation_prefix(name), progress, seen
                )
                seen += row["reservations"]
            collections[name] = row
    finally:
        progress.close()
    if args.json:
        document = {
            "namespace": layout.namespace,
            "items": items,
            "item_objects": item_objects,
            "collections": collections,
        }
        console.line(dumps_line(document))
        return 0
    width = max([len("items"), *(len(n) for n in collections)])
    console.line(f"namespace {layout.namespace}")
    console.line(
        f"{'items':<{width}}  {_counted(items, 'item', 'items')}"
        f" ({_counted(item_objects, 'item object', 'item objects').strip()})"
    )
    for name, row in collections.items():
        text = _counted(row["items"], "item", "items")
        text += ", " + _counted(row["entries"], "entry", "entries").strip()
        if row["unique"]:
            text += ", " + _counted(row["reservations"], "reservation", "reservations").strip()
            text += " (unique)"
        console.line(f"{name:<{width}}  {text}")
    if item_objects > items or any(r["entries"] > r["items"] for r in collections.values()):
        console.note(
            "objects beyond the items are tombstones of removed items and what "
            "interrupted writes left: 'ssshelf check' tells them apart, 'ssshelf repair' "
            "removes them once they are older than the grace period"
        )
    return 0
