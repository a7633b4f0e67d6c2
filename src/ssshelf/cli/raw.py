"""``ls`` and ``cat``: raw keys and objects, below the manager layer.

The library calls behind them are ``Storage.list(prefix, after=, limit=)``
and ``Storage.get(key)``.
"""

from __future__ import annotations

import argparse

from ..storages.base import MAX_LIST_LIMIT, Storage
from .console import Console
from .hints import DEFAULT_LIMIT, command_line
from .render import describe_key, dumps_line, dumps_pretty, render_object

#: Top-level prefixes named when ``ls`` finds nothing.
SHOWN_PREFIXES = 10


async def run_ls(storage: Storage, args: argparse.Namespace, console: Console) -> int:
    """Print keys under ``args.prefix``, one a line, ascending.

    Stops after ``--limit`` keys (every key with ``--all``); when more keys
    follow, says on stderr how to get the next page.  ``--json`` prints one
    document ``{"keys": [...], "after": <cursor or null>}`` instead.  When
    nothing matches, stderr says so and names the prefixes the store's keys
    do start with.
    """
    prefix: str = args.prefix
    after: str | None = args.after
    remaining: int | None = None if args.all else args.limit
    keys: list[str] = []
    printed = 0
    while True:
        want = MAX_LIST_LIMIT if remaining is None else min(remaining, MAX_LIST_LIMIT)
        page = await storage.list(prefix, after=after, limit=want)
        for key in page.keys:
            if args.json:
                keys.append(key)
            else:
                console.line(key)
        printed += len(page.keys)
        after = page.next_after
        if remaining is not None:
            remaining -= len(page.keys)
        if after is None or remaining == 0:
            break
    if args.json:
        console.line(dumps_line({"keys": keys, "after": after}))
    elif after is not None:
        words = ["ls", *([prefix] if prefix else [])]
        if args.limit != DEFAULT_LIMIT:
            words += ["--limit", str(args.limit)]
        console.note(f"more keys follow: {command_line(args, words, ['--after', after])}")
    elif printed == 0:
        console.note(await _nothing_found(storage, prefix, args.after))
    return 0


async def _nothing_found(storage: Storage, prefix: str, after: str | None) -> str:
    """What to say when ``ls`` printed no key."""
    where = f"after {after!r}" if after else ""
    if prefix:
        where = f"starting with {prefix!r}" + (f" {where}" if where else "")
    tops = await top_level_prefixes(storage, SHOWN_PREFIXES + 1)
    if not tops:
        return "no keys: the store is empty"
    shown = ", ".join(tops[:SHOWN_PREFIXES]) + (", …" if len(tops) > SHOWN_PREFIXES else "")
    return f"no keys {where}; the store's keys start with: {shown}"


async def top_level_prefixes(storage: Storage, most: int) -> list[str]:
    """Up to ``most`` distinct ``namespace/`` prefixes, one list request each.

    Each request skips every key of the namespace found before it (``0``
    follows ``/`` in byte order), so the cost is one request per prefix
    named, whatever the store's size.
    """
    found: list[str] = []
    after: str | None = None
    while len(found) < most:
        page = await storage.list("", after=after, limit=1)
        if not page.keys:
            break
        head, slash, _ = page.keys[0].partition("/")
        if not slash:
            found.append(head)
            after = head
            continue
        found.append(head + "/")
        after = head + "0"
    return found


async def run_cat(storage: Storage, args: argparse.Namespace, console: Console) -> int:
    """Print one object's bytes (pretty JSON when JSON; ``--raw`` for the bytes as stored).

    An ssshelf index entry (an empty object: its key is all it holds) is
    described as ``{"index_entry": {namespace, collection, key, pk, write}}``;
    a unique reservation as ``{"reservation": {…}, "holder": <its body>}``.
    A missing key prints an error and returns 1.
    """
    stored = await storage.get(args.key)
    if stored is None:
        console.error(f"no object with key {args.key!r}")
        return 1
    if args.raw:
        console.write_bytes(stored.data)
        return 0
    described = describe_key(args.key, stored.data)
    if described is not None:
        console.line(dumps_pretty(described))
        return 0
    console.write_bytes(render_object(stored.data))
    return 0
