"""``get`` and ``list``: items through the user's manager.

The library calls behind them: ``manager.get_item(pk)``,
``manager.<collection>.get_item(value)`` (unique collections),
``manager.<collection>.get_items(max_keys, after, prefix_parts)`` and, for
``list --keys``, ``get_keys`` with the same arguments.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..collections import Collection
from ..errors import InvalidArgument
from ..keys import decode_tuple
from ..managers import CManager
from .console import Console
from .hints import DEFAULT_LIMIT, command_line
from .render import dumps_line, dumps_pretty, key_json, parse_part, payload_to_json


def item_json(manager: CManager, item: Any, pk: str) -> Any:
    """An item as the JSON value of its serialised form (see :mod:`.render`)."""
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


def check_cursor(manager: CManager, name: str, after: str) -> str:
    """``after`` if it is a cursor a page of collection ``name`` printed.

    A cursor is the tail of an index entry's key; anything else (a typo, a
    cursor of another collection cut short) is :class:`InvalidArgument`
    instead of an empty page.
    """
    layout = manager.layout
    try:
        encoded, _, _ = layout.parse_entry(name, layout.entry_prefix(name) + after)
        decode_tuple(encoded)
    except ValueError:
        raise InvalidArgument(
            f"--after {after!r} is not a cursor of collection {name!r}; use the one the "
            "previous page printed (or leave --after out to start at the beginning)"
        ) from None
    return after


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

    When more follow, stderr says which command gets the next page.
    ``--keys`` prints index entries ``{"key": [...], "pk": ...}`` instead of
    items (unverified, one request).  ``--json`` prints one document
    ``{"items"|"entries": [...], "after": <cursor or null>}``.
    """
    chosen = collection(manager, args.collection)
    prefix = [parse_part(p) for p in args.prefix] or None
    after = check_cursor(manager, args.collection, args.after) if args.after else None
    rows: list[Any]
    following: str | None
    if args.keys:
        keys = await chosen.get_keys(args.limit, after, prefix)
        rows = [{"key": key_json(key), "pk": pk} for key, pk in keys["entries"]]
        following = keys.get("after")
    else:
        page = await chosen.get_items(args.limit, after, prefix)
        im = manager.item_manager
        rows = [item_json(manager, item, str(im.get_pk(item))) for item in page["items"]]
        following = page.get("after")
    if args.json:
        console.line(dumps_line({"entries" if args.keys else "items": rows, "after": following}))
        return 0
    for row in rows:
        console.line(dumps_line(row))
    if following is not None:
        words = ["list", args.collection]
        for part in args.prefix:
            words += ["--prefix", part]
        if args.limit != DEFAULT_LIMIT:
            words += ["--limit", str(args.limit)]
        if args.keys:
            words.append("--keys")
        console.note(f"more follow: {command_line(args, words, ['--after', following])}")
    return 0
