"""Running one command: parse, open the store (and the manager), report errors.

Every mistake a person can make — a bad option, a storage URL naming nothing,
a manager module that does not import, a store that is not there — ends as
one ``ssshelf: error: …`` line on stderr and exit status 2, never a
traceback; credentials written into the storage URL are masked in it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from typing import Any

from ..errors import ConfigurationError, SSShelfError
from ..managers import CManager
from ..storages.base import Storage
from ..storages.url import default_url, open_storage, url_secrets
from .console import Console
from .interrupt import EXIT_INTERRUPTED
from .loading import load_manager_class
from .parser import EXIT_USAGE, build_parser

Command = Callable[[Any, argparse.Namespace, Console], Awaitable[int]]

EXIT_OK = 0
EXIT_PROBLEMS = 1


async def _run(args: argparse.Namespace, console: Console) -> int:
    """Open what the command needs, run it, close everything again."""
    command: Command = args.run
    manager_class: type[CManager] | None = None
    if args.needs_manager:
        manager_class = load_manager_class(
            getattr(args, "manager", None) or os.environ.get("SSSHELF_MANAGER")
        )
    storage = open_storage(getattr(args, "url", None), create=args.creates_store)
    try:
        if manager_class is None:
            return await command(storage, args, console)
        manager = _make_manager(manager_class, storage)
        try:
            return await command(manager, args, console)
        finally:
            await manager.close()
    finally:
        await storage.close()


def _make_manager(manager_class: type[CManager], storage: Storage) -> CManager:
    try:
        return manager_class(storage)
    except SSShelfError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"cannot create {manager_class.__module__}:{manager_class.__qualname__} "
            f"over the store: {type(exc).__name__}: {exc}"
        ) from None


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    """Run one command; return the exit status (see :mod:`ssshelf.cli`)."""
    console = console or Console()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    console.secrets = url_secrets(getattr(args, "url", None) or default_url())
    try:
        with ExitStack() as files:
            args.input_stream = _open_input(args, files)
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


def _open_input(args: argparse.Namespace, files: ExitStack) -> Any:
    """``import FILE``'s file, opened before the store is (``None``: stdin or no file)."""
    source: str | None = getattr(args, "file", None)
    if source is None or source == "-":
        return None
    return files.enter_context(open(source, "rb"))


def _broken_pipe() -> int:
    """stdout's reader went away (``ssshelf export | head``): stop quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_OK
