"""Manager-level commands: ``get``, ``list`` and ``stats``, plus loading the manager.

The manager class comes from ``--manager module:Class`` (or ``SSSHELF_MANAGER``);
``module`` is imported with the current directory on ``sys.path``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ._cli_io import Console
from ._cli_progress import Progress
from ._cli_render import dumps_line, dumps_pretty, parse_part, payload_to_json
from ._concurrency import gather_bounded
from .collections import Collection
from .errors import ConfigurationError, CorruptItemError, InvalidArgument
from .keys import Desc
from .managers import CManager
from .storages.base import MAX_LIST_LIMIT, Storage


def load_manager_class(spec: str | None) -> type[CManager]:
    """Import ``module:Class`` and check it is a :class:`CManager` subclass.

    Raises :class:`ConfigurationError` with a one-line explanation otherwise.
    """
    if not spec:
        raise ConfigurationError(
            "this command needs the manager: pass --manager module:Class (or set SSSHELF_MANAGER)"
        )
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"--manager {spec!r} must look like module:Class")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import module {module_name!r} for --manager: {exc}"
        ) from None
    found: object = module
    for part in attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}")
    if not (isinstance(found, type) and issubclass(found, CManager)):
        raise ConfigurationError(f"{spec} is not a CManager subclass")
    return found


def item_json(manager: CManager, item: Any, pk: str) -> Any:
    """An item as the JSON value of its serialised form (see :mod:`._cli_render`)."""
    return payload_to_json(manager.item_manager.serialize_item(item), pk=pk)


def collection(manager: CManager, name: str) -> Collection:
    """The manager's collection ``name``; :class:`InvalidArgument` naming the known ones."""
    try:
        return manager.collections[name]
    except KeyError:
        known = ", ".join(sorted(manager.collections)) or "none"
        raise InvalidArgument(
            f"{type(manager).__name__} has no collection {name!r} (it has: {known})"
        ) from None


async def run_get(manager: CManager, args: argparse.Namespace, console: Console) -> int:
    """Print one item as pretty JSON; 1 when there is none.

    ``get PK`` looks up by primary key; ``get --by COLLECTION VALUE`` looks
    up the item holding ``VALUE`` in a unique collection.
    """
    if args.by is not None:
        unique = collection(manager, args.by)
        if not unique.unique:
            raise InvalidArgument(f"--by {args.by}: collection {args.by!r} is not unique")
        item = await unique.get_item(parse_part(args.pk))
        missing = f"no item holds {args.pk!r} in {args.by!r}"
    else:
        item = await manager.get_item(args.pk)
        missing = f"no item with pk {args.pk!r}"
    if item is None:
        console.error(missing)
        return 1
    pk = manager.item_manager.get_pk(item)
    console.line(dumps_pretty(item_json(manager, item, str(pk))))
    return 0


async def run_list(manager: CManager, args: argparse.Namespace, console: Console) -> int:
    """Print one page of a collection as JSON Lines (one item a line, index order).

    When more follow, stderr says which ``--after`` gets the next page.
    ``--keys`` prints index entries ``{"key": [...], "pk": ...}`` instead of
    items (unverified, one request).  ``--json`` prints one document
    ``{"items"|"entries": [...], "after": <cursor or null>}``.
    """
    chosen = collection(manager, args.collection)
    prefix = [parse_part(p) for p in args.prefix] or None
    rows: list[Any]
    if args.keys:
        resp = await chosen.get_keys(args.limit, args.after, prefix)
        rows = [{"key": key_json(key), "pk": pk} for key, pk in resp["entries"]]
    else:
        resp = await chosen.get_items(args.limit, args.after, prefix)
        im = manager.item_manager
        rows = [item_json(manager, item, str(im.get_pk(item))) for item in resp["items"]]
    after: str | None = resp.get("after")
    if args.json:
        console.line(dumps_line({"entries" if args.keys else "items": rows, "after": after}))
        return 0
    for row in rows:
        console.line(dumps_line(row))
    if after is not None:
        command = ["ssshelf", "list", args.collection]
        for part in args.prefix:
            command += ["--prefix", part]
        command += ["--after", after]
        console.note(f"more follow: {shlex.join(command)}")
    return 0


def key_json(key: tuple[Any, ...]) -> list[Any]:
    """A key tuple as JSON: dates ISO 8601, bytes hex, ``Desc(x)`` as ``{"desc": x}``."""
    return [_part_json(p) for p in key]


def _part_json(part: Any) -> Any:
    if isinstance(part, Desc):
        return {"desc": _part_json(part.value)}
    if isinstance(part, datetime | date):
        return part.isoformat()
    if isinstance(part, bytes):
        return part.hex()
    return part


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
    results = await gather_bounded((manager.get_item(pk) for pk in pks), manager.max_concurrency)
    page = ItemPage()
    for pk, result in zip(pks, results, strict=True):
        if isinstance(result, CorruptItemError):
            page.unreadable.append((pk, str(result)))
        elif isinstance(result, BaseException):
            raise result
        elif result is not None:
            page.items.append((pk, result))
    return page


async def _count(storage: Storage, prefix: str, progress: Progress, base: int) -> int:
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
    """Count stored objects: items, entries per collection, reservations per unique one.

    These are raw object counts (one listing each, no item reads): leftovers
    of crashed writes are counted too.  ``check`` tells those apart.
    """
    storage, layout = manager.storage, manager.layout
    progress = Progress("stats", console.err)
    try:
        items = await _count(storage, layout.item_prefix, progress, 0)
        seen = items
        collections: dict[str, dict[str, Any]] = {}
        for name, collection in manager.collections.items():
            entries = await _count(storage, layout.entry_prefix(name), progress, seen)
            seen += entries
            row: dict[str, Any] = {"entries": entries, "unique": collection.unique}
            if collection.unique:
                row["reservations"] = await _count(
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
