"""``export`` and ``import``: items as JSON Lines, in bounded memory.

Each line is one item's serialised form (``serialize_item``) as compact JSON;
``import`` turns a line back into an item with ``deserialize_item`` and
stores it with ``add_items``.  The two round-trip for any item manager whose
serialised form is JSON (every one in :mod:`ssshelf.items`).

Resuming an interrupted import: writes are addressed by pk, so running the
same import again converges to the same state — nothing is duplicated, the
file wins.  ``--skip-existing`` instead skips every pk already stored (one
read, no write), which makes the re-run cheap and keeps changes made to
those items since.  A write cut off mid-way leaves only index entries that
reads ignore; ``ssshelf check`` reports them and ``ssshelf repair`` removes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import BulkWriteError, CorruptItemError, SerializationError, SSShelfError
from ..managers import CManager
from ..storages.base import MAX_LIST_LIMIT
from .bounded import map_bounded
from .console import Console
from .files import written_in_full
from .items import item_json
from .progress import Progress
from .render import dumps_line

#: Lines parsed, and items written, per batch of an import.
IMPORT_BATCH = 500


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
    with ExitStack() as stack:
        stack.callback(progress.close)
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


def _read_batches(stream: IO[Any], name: str) -> Iterator[list[tuple[int, bytes]]]:
    """Non-blank lines of ``stream`` as (line number, bytes), checked to be JSON."""
    batch: list[tuple[int, bytes]] = []
    for number, text in _lines(stream, name):
        if not text:
            continue
        try:
            json.loads(text)
        except ValueError as exc:
            raise SerializationError(f"{name}, line {number}: not JSON ({exc})") from None
        batch.append((number, text.encode("utf-8")))
        if len(batch) >= IMPORT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _lines(stream: IO[Any], name: str) -> Iterator[tuple[int, str]]:
    """(number, stripped text) of each line; bytes that are not UTF-8 are a
    :class:`SerializationError` naming the line."""
    for number, line in enumerate(stream, start=1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise SerializationError(
                    f"{name}, line {number}: not UTF-8 text ({exc.reason} at byte {exc.start + 1})"
                ) from None
        yield number, line.strip()


def _items(manager: CManager, batch: list[tuple[int, bytes]], name: str) -> dict[str, Any]:
    """Deserialise a batch, keyed by pk; a pk repeated in the file keeps its last line."""
    im = manager.item_manager
    items: dict[str, Any] = {}
    for number, data in batch:
        try:
            item = im.deserialize_item(data)
            pk = str(im.get_pk(item))
        except Exception as exc:
            why = str(exc) if isinstance(exc, SSShelfError) else repr(exc)
            raise SerializationError(
                f"{name}, line {number}: not an item of {type(manager).__name__}: {why}"
            ) from None
        items.pop(pk, None)
        items[pk] = item
    return items


async def _stored(manager: CManager, pks: list[str]) -> set[str]:
    """Which of ``pks`` exist now (a corrupt item counts as existing)."""
    keys = [manager.layout.item_key(pk) for pk in pks]
    results = await map_bounded(manager.storage.get, keys, manager.max_concurrency)
    found: set[str] = set()
    for pk, result in zip(pks, results, strict=True):
        if isinstance(result, Exception):
            raise result
        if result is not None:
            found.add(pk)
    return found


async def run_import(manager: CManager, args: argparse.Namespace, console: Console) -> int:
    """Store every item of a JSON Lines file (``-`` for stdin); see the module docstring.

    Stops at the first bad line or failed write (exit 2), after the batches
    before it were written, saying how far it got; prints ``imported N items
    (M skipped)`` on stderr when done.
    """
    progress = Progress("import", console.err, unit="items")
    written = skipped = 0
    name = "stdin" if args.input_stream is None else args.file
    stream: IO[Any] = args.input_stream or getattr(sys.stdin, "buffer", None) or sys.stdin
    done_lines = 0
    try:
        for batch in _read_batches(stream, name):
            items = _items(manager, batch, name)
            if args.skip_existing:
                for pk in await _stored(manager, list(items)):
                    del items[pk]
                    skipped += 1
            base = written + skipped

            def report(done: int, base: int = base) -> None:
                progress(base + done)

            written += await manager.add_items(items.values(), progress=report)
            done_lines = batch[-1][0]
    except BaseException as exc:
        progress.close()
        if done_lines:
            console.note(
                f"import stopped: {name} is stored up to line {done_lines}; fix the problem and "
                "run the same import again (--skip-existing skips what is stored)"
            )
        else:
            console.note(
                f"import stopped: nothing of {name} was stored; fix the problem and run the "
                "same import again"
            )
        if isinstance(exc, BulkWriteError):
            raise exc.error from exc  # the note above already says how far it got
        raise
    progress.close()
    console.note(f"imported {written} items ({skipped} skipped)")
    return 0
