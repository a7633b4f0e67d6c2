"""``ls`` and ``cat``: raw keys and objects, below the manager layer."""

from __future__ import annotations

import argparse
import shlex

from ._cli_io import Console
from ._cli_render import dumps_line, render_object
from .storages.base import MAX_LIST_LIMIT, Storage


async def run_ls(storage: Storage, args: argparse.Namespace, console: Console) -> int:
    """Print keys under ``args.prefix``, one a line, ascending.

    Stops after ``--limit`` keys (every key with ``--all``); when more keys
    follow, says on stderr how to get the next page.  ``--json`` prints one
    document ``{"keys": [...], "after": <cursor or null>}`` instead.
    """
    prefix: str = args.prefix
    after: str | None = args.after
    remaining: int | None = None if args.all else args.limit
    keys: list[str] = []
    while True:
        want = MAX_LIST_LIMIT if remaining is None else min(remaining, MAX_LIST_LIMIT)
        page = await storage.list(prefix, after=after, limit=want)
        for key in page.keys:
            if args.json:
                keys.append(key)
            else:
                console.line(key)
        after = page.next_after
        if remaining is not None:
            remaining -= len(page.keys)
        if after is None or remaining == 0:
            break
    if args.json:
        console.line(dumps_line({"keys": keys, "after": after}))
    elif after is not None:
        command = ["ssshelf", "ls", *([prefix] if prefix else []), "--after", after]
        console.note(f"more keys follow: {shlex.join(command)}")
    return 0


async def run_cat(storage: Storage, args: argparse.Namespace, console: Console) -> int:
    """Print one object's bytes (pretty JSON when JSON; ``--raw`` for the bytes as stored).

    A missing key prints an error and returns 1.
    """
    stored = await storage.get(args.key)
    if stored is None:
        console.error(f"no object with key {args.key!r}")
        return 1
    console.write_bytes(stored.data if args.raw else render_object(stored.data))
    return 0
