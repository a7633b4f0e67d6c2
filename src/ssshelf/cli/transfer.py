"""``export``: every item as JSON Lines, in bounded memory.

Each line is one item's serialised form (``serialize_item``) as compact JSON;
``import`` (:mod:`.importing`) turns a line back into an item with
``deserialize_item``.  The two round-trip for any item manager whose
serialised form is JSON (every one in :mod:`ssshelf.items`).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

from ..errors import CorruptItemError
from ..managers import CManager
from ..storages.base import MAX_LIST_LIMIT
from .bounded import map_bounded
from .console import Console
from .files import written_in_full
from .items import item_json
from .progress import Progress, count_keys, total_from
from .render import dumps_line


async def iter_item_pks(
    manager: CManager, page_size: int = MAX_LIST_LIMIT
) -> AsyncIterator[list[str]]:
    """The pks of the manager's stored items, a page (one list request) at a time."""
    after: str | None = None
    while True:
        page = await manager.storage.list(manager.layout.item_prefix, after=after, limit=page_size)
        if page.keys:
            yield [manager.layout.pk_from_item_key(k) for k in page.keys]
        after = page.next_after
        if after is None:
            return


@dataclass
class ItemPage:
    """Items read for one page of pks; ``unreadable`` names the ones that failed."""

    items: list[tuple[str, Any]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


async def read_items(manager: CManager, pks: list[str]) -> ItemPage:
    """Fetch ``pks`` concurrently; missing ones (removed meanwhile) are left out."""
    results = await map_bounded(manager.get_item, pks, manager.max_concurrency)
    page = ItemPage()
    for pk, result in zip(pks, results, strict=True):
        if isinstance(result, CorruptItemError):
            page.unreadable.append((pk, str(result)))
        elif isinstance(result, Exception):
            raise result
        elif result is not None:
            page.items.append((pk, result))
    return page


async def run_export(manager: CManager, args: argparse.Namespace, console: Console) -> int:
    """Write every item (in pk order) as JSON Lines to stdout or ``--output``.

    One page of items is held in memory at a time.  Items that cannot be
    read are reported on stderr and make the command return 1; the rest are
    exported.  ``--output FILE`` is written in full or not at all.
    """
    progress = Progress("export", console.err, unit="items")
    exported = 0
    unreadable = 0
    to_file = args.output is not None and args.output != "-"
    items = partial(count_keys, manager.storage, manager.layout.item_prefix)
    async with AsyncExitStack() as stack:
        stack.callback(progress.close)
        await stack.enter_async_context(total_from(progress, items))
        out: IO[str] = stack.enter_context(written_in_full(args.output)) if to_file else console.out
        async for pks in iter_item_pks(manager, page_size=args.page_size):
            page = await read_items(manager, pks)
            for pk, error in page.unreadable:
                console.note(f"ssshelf: skipped unreadable item {pk!r}: {error}")
            unreadable += len(page.unreadable)
            for pk, item in page.items:
                out.write(dumps_line(item_json(manager, item, pk)) + "\n")
            exported += len(page.items)
            progress(exported)
    if to_file:
        console.note(f"exported {exported} items to {args.output}")
    return 1 if unreadable else 0
