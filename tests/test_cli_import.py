"""``ssshelf import`` resumed after writes were cut off: what it waits for, and says.

Run in-process over an in-memory store whose clock the test moves, so that
claim ages (judged by the store's clock) do not depend on how fast the
machine is.  The Ctrl-C behaviour of a real process is in
``tests/test_cli_edges.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from ssshelf import CManager, Collection, IManager
from ssshelf.cli import importing
from ssshelf.cli.claims import unfinished_claims
from ssshelf.cli.console import Console
from ssshelf.cli.parser import build_parser
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.testing import FaultyStorage, SimulatedCrash


class ByN(Collection):
    def key(self, item: dict[str, Any]) -> tuple[int]:
        return (item["n"],)


class ByName(Collection):
    unique = True

    def key(self, item: dict[str, Any]) -> str:
        name: str = item["name"]
        return name


class Things(CManager):
    item_manager = IManager()
    namespace = "things"
    by_n = ByN()
    by_name = ByName()


ITEMS = [{"pk": f"t{n}", "n": n, "name": f"name{n}"} for n in range(3)]


async def cut_off(store: InMemoryStorage, items: list[dict[str, Any]]) -> None:
    """Writes of ``items`` that stop after their first round, as a killed import's do:
    their index entries and claims stay, their items are never committed."""
    for item in items:
        with pytest.raises(SimulatedCrash):
            await Things(FaultyStorage(store, crash_after=3)).add_item(item)


def import_args(source: Path, *extra: str) -> Any:
    args = build_parser().parse_args(["import", str(source), "--manager", "things:Things", *extra])
    args.input_stream = source.open("rb")
    return args


async def until(found: Any) -> None:
    """Poll ``found()`` (a note written by the code under test) for up to 30 s."""
    async with asyncio.timeout(30):
        for _ in iter(found, True):
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("age", [20, 0.5])
async def test_a_resumed_import_says_which_claims_it_waits_for_and_what_to_run_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age: float
) -> None:
    """``age``: how long before the re-run the writes were cut off (by the store's
    clock; 0.5: a script that runs the import again at once)."""
    now = [1000.0]
    store = InMemoryStorage(clock=lambda: now[0])
    await cut_off(store, ITEMS[:2])
    now[0] += age  # the claims' lease is 30 s, plus a clock tick
    source = tmp_path / "things.jsonl"
    source.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    monkeypatch.setattr(importing, "STALL_SECONDS", 0.05)
    console = Console(out=io.StringIO(), err=io.StringIO())
    args = import_args(source)
    run = asyncio.create_task(importing.run_import(Things(store), args, console))
    try:
        await until(lambda: "waiting" in console.err.getvalue() or run.done())
        note = console.err.getvalue()
        assert note.startswith(
            f"import: waiting up to {31 - age:.0f} s: 2 unique values are still claimed by "
            "earlier writes of the same items that did not commit (by_name 'name0' of item "
            "'t0', by_name "
            "'name1' of item 't1'): writes cut off by a crash or an interruption, or still in "
            "flight elsewhere. A claim is honoured for the unique lease (30 s)"
        ), note
        assert not run.done(), "it waits for the claims to expire"
        now[0] += 32 - age  # by the store's clock, the lease is over
        assert await run == 0
    finally:
        run.cancel()
        args.input_stream.close()
    lines = console.err.getvalue().splitlines()
    assert lines[1:] == [
        "imported 3 items (0 skipped)",
        "The writes that left those claims also left index entries: `ssshelf check --manager "
        "things:Things` reports them as problems once they are older than the grace period "
        "(30 s, in flight until then), until `ssshelf repair --manager things:Things` removes "
        "them.",
    ]
    things = Things(store)
    report = await things.check(grace=0)
    # Each cut-off write left an entry in both collections; its claim was taken over.
    assert (report.dangling_entries, report.stale_reservations) == (4, 0)
    await things.repair(grace=0)
    assert (await things.check(grace=0)).ok
    assert [i["pk"] for i in (await things.by_n.get_items())["items"]] == ["t0", "t1", "t2"]


async def test_claims_of_the_import_itself_or_of_stored_items_are_not_reported() -> None:
    now = [1000.0]
    store = InMemoryStorage(clock=lambda: now[0])
    things = Things(store)
    await things.add_item(ITEMS[0])  # holds name0 as stored: not a leftover
    before = time.time()
    await cut_off(store, ITEMS[1:2])
    now[0] += 5
    found = await unfinished_claims(things, ITEMS, made_before=time.time())
    assert [(c.collection, c.value, c.pk, c.wait) for c in found] == [
        ("by_name", "name1", "t1", 26.0)
    ]
    later = await unfinished_claims(things, ITEMS, made_before=before)
    assert later == [], "made since: maybe the command's own write in flight"
    other = {**ITEMS[2], "name": "name1"}
    assert await unfinished_claims(things, [other]) == [], "claimed for another item"
