"""``stats``: how many objects of each kind a manager's namespace holds.

These are raw object counts, one listing per prefix and no item reads, so
leftovers of crashed writes are counted too; ``check`` tells those apart.
The library calls behind it: ``Storage.list`` over ``manager.layout``'s
item, entry and reservation prefixes.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..managers import CManager
from ..storages.base import MAX_LIST_LIMIT, Storage
from .console import Console
from .progress import Progress
from .render import dumps_line


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
    """Count items, entries per collection and reservations per unique one."""
    storage, layout = manager.storage, manager.layout
    progress = Progress("stats", console.err)
    try:
        items = await count_keys(storage, layout.item_prefix, progress, 0)
        seen = items
        collections: dict[str, dict[str, Any]] = {}
        for name, collection in manager.collections.items():
            entries = await count_keys(storage, layout.entry_prefix(name), progress, seen)
            seen += entries
            row: dict[str, Any] = {"entries": entries, "unique": collection.unique}
            if collection.unique:
                row["reservations"] = await count_keys(
                    storage, layout.reservation_prefix(name), progress, seen
                )
                seen += row["reservations"]
            collections[name] = row
    finally:
        progress.close()
    if args.json:
        document = {"namespace": layout.namespace, "items": items, "collections": collections}
        console.line(dumps_line(document))
        return 0
    width = max([len("items"), *(len(n) for n in collections)])
    console.line(f"namespace {layout.namespace}")
    console.line(f"{'items':<{width}}  {_counted(items, 'item', 'items')}")
    for name, row in collections.items():
        text = _counted(row["entries"], "entry", "entries")
        if row["unique"]:
            text += ", " + _counted(row["reservations"], "reservation", "reservations").strip()
            text += " (unique)"
        console.line(f"{name:<{width}}  {text}")
    return 0
