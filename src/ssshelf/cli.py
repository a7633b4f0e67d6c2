"""The ``ssshelf`` command line (also ``python -m ssshelf``).

``main(argv)`` parses, runs one command and returns its exit status:

* ``0`` success;
* ``1`` the command ran and found a problem (``check`` found damage, ``get``
  or ``cat`` found nothing, ``export`` met unreadable items);
* ``2`` usage, configuration or connection errors, reported as one
  ``ssshelf: error: …`` line on stderr (never a traceback);
* ``130`` interrupted (Ctrl-C).

Every command takes ``--url`` (default ``SSSHELF_URL``, else
``sqlite:///ssshelf.db``); manager-level commands take ``--manager
module:Class`` (default ``SSSHELF_MANAGER``).  See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from typing import NoReturn

from ._cli_check import run_check, run_reindex, run_repair
from ._cli_io import Console
from ._cli_manager import load_manager_class, run_get, run_list, run_stats
from ._cli_storage import run_cat, run_ls
from ._cli_transfer import run_export, run_import
from .errors import SSShelfError
from .managers import CManager
from .storages.base import MAX_LIST_LIMIT, Storage
from .storages.url import DEFAULT_URL, open_storage

StorageCommand = Callable[[Storage, argparse.Namespace, Console], Awaitable[int]]
ManagerCommand = Callable[[CManager, argparse.Namespace, Console], Awaitable[int]]

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    raw, managed = _common(False), _common(True)
    parser = _Parser(
        prog="ssshelf",
        description="Inspect and maintain an ssshelf store.",
        parents=[managed],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, *, manager: bool) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help, description=help, parents=[managed if manager else raw]
        )

    ls = command("ls", "list raw storage keys, ascending", manager=False)
    ls.add_argument("prefix", nargs="?", default="", help="only keys starting with this")
    ls.add_argument("--after", help="start after this key (from a previous page)")
    ls.add_argument("--limit", type=_limit, default=100, help="keys per page (default 100)")
    ls.add_argument("--all", action="store_true", help="every key, page after page")
    ls.add_argument("--json", action="store_true", help="one JSON document")
    ls.set_defaults(storage_run=run_ls)

    cat = command("cat", "print one stored object", manager=False)
    cat.add_argument("key")
    cat.add_argument("--raw", action="store_true", help="the bytes exactly as stored")
    cat.set_defaults(storage_run=run_cat)

    get = command("get", "print one item as JSON", manager=True)
    get.add_argument("pk", help="primary key (or the value, with --by)")
    get.add_argument("--by", metavar="COLLECTION", help="look the value up in a unique collection")
    get.set_defaults(manager_run=run_get)

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
    lst.add_argument("--limit", type=_limit, default=100, help="entries per page (default 100)")
    lst.add_argument("--keys", action="store_true", help="index entries instead of items")
    lst.add_argument("--json", action="store_true", help="one JSON document with the cursor")
    lst.set_defaults(manager_run=run_list)

    check = command("check", "verify items, entries, reservations; exit 1 on damage", manager=True)
    check.add_argument("--json", action="store_true", help="machine-readable report")
    check.set_defaults(manager_run=run_check)

    repair = command("repair", "fix what check reports", manager=True)
    repair.add_argument("--json", action="store_true", help="machine-readable report")
    repair.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="leave objects younger than this for writes in flight (default: the unique lease)",
    )
    repair.set_defaults(manager_run=run_repair)

    reindex = command("reindex", "rebuild one collection from the items", manager=True)
    reindex.add_argument("collection")
    reindex.add_argument("--json", action="store_true", help="machine-readable report")
    reindex.set_defaults(manager_run=run_reindex)

    export = command("export", "write every item as JSON Lines", manager=True)
    export.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    export.add_argument("--page-size", type=_limit, default=200, help=argparse.SUPPRESS)
    export.set_defaults(manager_run=run_export)

    imp = command("import", "store items from a JSON Lines file (- for stdin)", manager=True)
    imp.add_argument("file")
    imp.add_argument(
        "--skip-existing", action="store_true", help="leave pks that are already stored alone"
    )
    imp.set_defaults(manager_run=run_import)

    stats = command("stats", "count items, and entries per collection", manager=True)
    stats.add_argument("--json", action="store_true", help="one JSON document")
    stats.set_defaults(manager_run=run_stats)
    return parser


async def _run(args: argparse.Namespace, console: Console) -> int:
    url: str | None = getattr(args, "url", None)
    storage_run: StorageCommand | None = getattr(args, "storage_run", None)
    if storage_run is not None:
        storage = open_storage(url)
        try:
            return await storage_run(storage, args, console)
        finally:
            await storage.close()
    manager_run: ManagerCommand = args.manager_run
    manager_class = load_manager_class(
        getattr(args, "manager", None) or os.environ.get("SSSHELF_MANAGER")
    )
    storage = open_storage(url)
    try:
        manager = manager_class(storage)
    except BaseException:
        await storage.close()
        raise
    async with manager:
        return await manager_run(manager, args, console)


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    """Run one command; return the exit status (see the module docstring)."""
    console = console or Console()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        with ExitStack() as files:
            _open_files(args, files)
            return asyncio.run(_run(args, console))
    except SSShelfError as exc:
        console.error(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return _broken_pipe()
        console.error(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.error("interrupted")
        return EXIT_INTERRUPTED


def _open_files(args: argparse.Namespace, files: ExitStack) -> None:
    """Open ``export --output`` / ``import FILE`` before the event loop starts.

    Commands get ``args.output_stream`` / ``args.input_stream`` (``None``:
    use stdout / stdin).
    """
    output: str | None = getattr(args, "output", None)
    if output is not None and output != "-":
        args.output_stream = files.enter_context(open(output, "w", encoding="utf-8"))  # noqa: SIM115
    else:
        args.output_stream = None
    source: str | None = getattr(args, "file", None)
    if source is not None and source != "-":
        args.input_stream = files.enter_context(open(source, encoding="utf-8"))  # noqa: SIM115
    else:
        args.input_stream = None


def _broken_pipe() -> int:
    """stdout's reader went away (``ssshelf export | head``): stop quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_OK
