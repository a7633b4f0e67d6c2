"""The command line's grammar: commands, their options, and which need what.

Each command's parser sets three defaults the runner reads:

* ``run``            the coroutine function that does the work;
* ``needs_manager``  whether it works through ``--manager`` (else on raw storage);
* ``creates_store``  whether it may create a store that does not exist yet.
  Only ``import`` does: every other command opens the store with
  ``create=False``, so a mistyped path is an error instead of a new empty store.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from ..storages.base import MAX_LIST_LIMIT
from ..storages.url import DEFAULT_URL
from .hints import DEFAULT_LIMIT
from .importing import run_import
from .items import run_get, run_list
from .maintenance import run_check, run_reindex, run_repair
from .raw import run_cat, run_ls
from .stats import run_stats
from .transfer import run_export

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line, as every other error does."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ssshelf: error: {message} (see: {self.prog} --help)\n")


def _common(manager: bool) -> _Parser:
    parent = _Parser(add_help=False)
    parent.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=f"storage URL (default: $SSSHELF_URL, else {DEFAULT_URL})",
    )
    if manager:
        parent.add_argument(
            "--manager",
            default=argparse.SUPPRESS,
            metavar="MODULE:CLASS",
            help="your CManager subclass (default: $SSSHELF_MANAGER)",
        )
    return parent


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_LIST_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LIST_LIMIT}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    raw, managed = _common(False), _common(True)
    parser = _Parser(
        prog="ssshelf",
        description="Inspect and maintain an ssshelf store.",
        parents=[managed],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, help: str, *, manager: bool, creates_store: bool = False
    ) -> argparse.ArgumentParser:
        made = sub.add_parser(
            name, help=help, description=help, parents=[managed if manager else raw]
        )
        made.set_defaults(needs_manager=manager, creates_store=creates_store)
        return made

    ls = command("ls", "list raw storage keys, ascending", manager=False)
    ls.add_argument("prefix", nargs="?", default="", help="only keys starting with this")
    ls.add_argument("--after", help="start after this key (from a previous page)")
    ls.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        help=f"keys per page (default {DEFAULT_LIMIT})",
    )
    ls.add_argument("--all", action="store_true", help="every key, page after page")
    ls.add_argument("--json", action="store_true", help="one JSON document")
    ls.set_defaults(run=run_ls)

    cat = command("cat", "print one stored object", manager=False)
    cat.add_argument("key")
    cat.add_argument("--raw", action="store_true", help="the bytes exactly as stored")
    cat.set_defaults(run=run_cat)

    get = command("get", "print one item as JSON", manager=True)
    get.add_argument("pk", help="primary key (or the value, with --by)")
    get.add_argument("--by", metavar="COLLECTION", help="look the value up in a unique collection")
    get.set_defaults(run=run_get)

    lst = command("list", "print a page of a collection, one JSON item a line", manager=True)
    lst.add_argument("collection")
    lst.add_argument(
        "--prefix",
        action="append",
        default=[],
        metavar="PART",
        help="key part to match (repeat for more parts; int:5, date:2024-05-01, desc:…)",
    )
    lst.add_argument("--after", help="cursor printed by the previous page")
    lst.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        help=f"entries per page (default {DEFAULT_LIMIT})",
    )
    lst.add_argument("--keys", action="store_true", help="index entries instead of items")
    lst.add_argument("--json", action="store_true", help="one JSON document with the cursor")
    lst.set_defaults(run=run_list)

    check = command("check", "verify items, entries, reservations; exit 1 on damage", manager=True)
    check.add_argument("--json", action="store_true", help="machine-readable report")
    check.add_argument(
        "--grace",
        type=_seconds,
        metavar="SECONDS",
        help="count objects younger than this as in flight, as repair leaves them "
        "(default: the unique lease)",
    )
    check.set_defaults(run=run_check)

    repair = command("repair", "fix what check reports", manager=True)
    repair.add_argument("--json", action="store_true", help="machine-readable report")
    repair.add_argument(
        "--grace",
        type=_seconds,
        metavar="SECONDS",
        help="leave objects younger than this for writes in flight (default: the unique lease)",
    )
    repair.set_defaults(run=run_repair)

    reindex = command("reindex", "rebuild one collection from the items", manager=True)
    reindex.add_argument("collection")
    reindex.add_argument("--json", action="store_true", help="machine-readable report")
    reindex.set_defaults(run=run_reindex)

    export = command("export", "write every item as JSON Lines", manager=True)
    export.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write here instead of stdout (in full or not at all: a temporary file is "
        "renamed to FILE once every item is written)",
    )
    export.add_argument("--page-size", type=_limit, default=200, help=argparse.SUPPRESS)
    export.set_defaults(run=run_export)

    imp = command(
        "import",
        "store items from a JSON Lines file (- for stdin); creates the store if needed",
        manager=True,
        creates_store=True,
    )
    imp.add_argument("file")
    imp.add_argument(
        "--skip-existing", action="store_true", help="leave pks that are already stored alone"
    )
    imp.set_defaults(run=run_import)

    stats = command("stats", "count items, and entries per collection", manager=True)
    stats.add_argument("--json", action="store_true", help="one JSON document")
    stats.set_defaults(run=run_stats)
    return parser
