"""``check``, ``repair`` and ``reindex``: verify the store and fix what check finds.

Human output is one ``label  value`` line per count, with up to
:data:`SHOWN_EXAMPLES` example keys under each kind of problem; ``--json``
prints the library's report (``to_dict()``) as one JSON document instead.
The library calls behind them: ``manager.check()``, ``manager.repair(grace=)``
and ``manager.reindex(collection)``, each with a ``progress`` callback.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from ..managers import CManager
from ..repair import PROBLEMS, CheckReport
from .console import Console
from .items import collection
from .progress import Progress, count_keys, total_from
from .render import dumps_line

#: Example keys printed under each kind of problem (the JSON has them all).
SHOWN_EXAMPLES = 10

_CHECK_COUNTS = (
    "items_scanned",
    "entries_scanned",
    "reservations_scanned",
    *PROBLEMS,
)
#: Counted, but not problems: printed only when not zero.
_CHECK_NOTES = (
    "in_flight_entries",
    "in_flight_reservations",
    "released_reservations",
    "tombstones",
    "stray_objects",
)
_REPAIR_COUNTS = (
    "deleted_entries",
    "restored_entries",
    "deleted_reservations",
    "restored_reservations",
    "skipped",
)
_WIDTH = max(len(name) for name in _CHECK_COUNTS + _REPAIR_COUNTS)


def _label(name: str) -> str:
    return name.replace("_", " ")


def format_check(report: dict[str, Any]) -> list[str]:
    """The lines ``check`` prints for a ``CheckReport.to_dict()``."""
    lines: list[str] = []
    examples: dict[str, list[str]] = report.get("examples", {})
    for name in _CHECK_COUNTS + _CHECK_NOTES:
        if name not in report or (name in _CHECK_NOTES and not report[name]):
            continue
        lines.append(f"{_label(name):<{_WIDTH}}  {report[name]}")
        shown = examples.get(name, [])
        lines.extend(f"    {key}" for key in shown[:SHOWN_EXAMPLES])
        hidden = int(report[name]) - min(len(shown), SHOWN_EXAMPLES)
        if shown and hidden > 0:
            lines.append(f"    ... and {hidden} more (--json lists up to {len(shown)})")
    return lines


def format_repair(report: dict[str, Any]) -> list[str]:
    """The lines ``repair`` prints for a ``RepairReport.to_dict()``."""
    before = report.get("check", {})
    problems = sum(int(before.get(name, 0)) for name in PROBLEMS)
    lines = [f"{_label('problems found'):<{_WIDTH}}  {problems}"]
    lines += [f"{_label(name):<{_WIDTH}}  {report[name]}" for name in _REPAIR_COUNTS]
    return lines


async def run_check(manager: CManager, args: argparse.Namespace, console: Console) -> int:
    """Verify items against entries and reservations; return 1 when anything is wrong."""
    progress = Progress("check", console.err)
    try:
        report = await manager.check(grace=args.grace, progress=progress)
    finally:
        progress.close()
    if args.json:
        console.line(dumps_line(report.to_dict()))
    else:
        for line in format_check(report.to_dict()):
            console.line(line)
        console.line(verdict(report, args))
    return 0 if report.ok else 1


def verdict(report: CheckReport, args: argparse.Namespace) -> str:
    """The last line of ``check``: OK, or what to run about it."""
    if report.ok:
        if report.in_flight:
            return (
                f"OK ({report.in_flight} in flight: younger than the grace period, they may "
                "belong to writes not committed yet; repair leaves them until then)"
            )
        return "OK"
    fixable = any(getattr(report, name) for name in PROBLEMS if name != "unreadable_items")
    unreadable = (
        f"{report.unreadable_items} unreadable items need a person (ssshelf cat KEY shows one)"
        if report.unreadable_items
        else ""
    )
    if not fixable:
        return f"PROBLEMS FOUND - {unreadable}; repair cannot fix them"
    flags = f" --grace {args.grace:g}" if args.grace is not None else ""
    return (
        "PROBLEMS FOUND - run: ssshelf repair" + flags + (f"; {unreadable}" if unreadable else "")
    )


async def run_repair(manager: CManager, args: argparse.Namespace, console: Console) -> int:
    """Remove dangling entries and stale reservations, restore missing ones.

    Objects younger than ``--grace`` seconds are left for writes in flight
    (default: the manager's unique lease); ``skipped`` counts them.
    """
    progress = Progress("repair", console.err)
    try:
        report = await manager.repair(grace=args.grace, progress=progress)
    finally:
        progress.close()
    if args.json:
        console.line(dumps_line(report.to_dict()))
        return 0
    for line in format_repair(report.to_dict()):
        console.line(line)
    if report.skipped:
        console.note(
            f"{report.skipped} left alone: younger than the grace period (a write may be in "
            "flight) or unreadable items; run again later, or --grace 0 on a quiet store"
        )
    return 0


async def run_reindex(manager: CManager, args: argparse.Namespace, console: Console) -> int:
    """Rebuild one collection from the stored items; 1 when some items failed."""
    collection(manager, args.collection)  # an unknown name: one clear error
    progress = Progress("reindex", console.err, unit="items")
    items = partial(count_keys, manager.storage, manager.layout.item_prefix)
    try:
        async with total_from(progress, items):
            report = await manager.reindex(args.collection, progress=progress)
    finally:
        progress.close()
    document = report.to_dict()
    if args.json:
        console.line(dumps_line(document))
    else:
        for name in ("collection", "items_scanned", "reindexed", "failed"):
            console.line(f"{_label(name):<{_WIDTH}}  {document[name]}")
        for error in document["errors"][:SHOWN_EXAMPLES]:
            console.line(f"    {error}")
    return 1 if report.failed else 0
