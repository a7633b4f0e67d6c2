"""What the blocking twin (``Manager.sync(...)``) costs per call over ``await``.

    .venv/bin/python -m benchmarks.blocking_overhead [--calls 5000] [--items 5000]

On the in-memory store and on SQLite (a file in a temporary directory),
with the bookmarks demo's manager (three collections), it times:

* ``get_item`` of one stored item, ``--calls`` times in a row, three ways:
  awaited in one event loop; through the blocking twin; and
  ``asyncio.run(manager.get_item(pk))`` per call, the other way sync code
  reaches an async API (a fresh event loop each call);
* ``add_item`` replacing one item (the same three ways);
* ``get_item`` from 4 threads sharing one twin (all calls / wall time);
* a full ``iter_items`` scan of ``--items`` items, async and through the
  twin, which hands over a page at a time.

Each variant runs ``--rounds`` times, alternating; the median round counts.
Prints a Markdown table (microseconds per call, or per item for the scan)
and the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from examples.bookmarks import BookmarkManager, make_bookmarks
from ssshelf.blocking import SyncManager
from ssshelf.storages.base import Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import SQLiteStorage

from .machine import machine_info, versions

THREADS = 4
Operation = Callable[[BookmarkManager], Coroutine[Any, Any, Any]]


def per_call(seconds: float, calls: int) -> float:
    return seconds / calls * 1e6


def awaited(manager: BookmarkManager, op: Operation, n: int) -> float:
    async def run() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await op(manager)
        return time.perf_counter() - started

    return per_call(asyncio.run(run()), n)


def through_twin(twin: SyncManager[BookmarkManager], op: Callable[[Any], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        op(twin)
    return per_call(time.perf_counter() - started, n)


def run_per_call(manager: BookmarkManager, op: Operation, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        asyncio.run(op(manager))
    return per_call(time.perf_counter() - started, n)


def from_threads(twin: SyncManager[BookmarkManager], pk: str, n: int) -> float:
    each = max(1, n // THREADS)
    start = threading.Barrier(THREADS + 1)

    def work() -> None:
        start.wait()
        for _ in range(each):
            twin.get_item(pk)

    workers = [threading.Thread(target=work) for _ in range(THREADS)]
    for worker in workers:
        worker.start()
    start.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return per_call(time.perf_counter() - started, each * THREADS)


def scan_async(manager: BookmarkManager) -> float:
    async def run() -> tuple[float, int]:
        started = time.perf_counter()
        count = 0
        async for _ in manager.newest.iter_items():
            count += 1
        return time.perf_counter() - started, count

    seconds, count = asyncio.run(run())
    return per_call(seconds, count)


def scan_twin(twin: SyncManager[BookmarkManager]) -> float:
    started = time.perf_counter()
    count = sum(1 for _ in twin.newest.iter_items())
    return per_call(time.perf_counter() - started, count)


def measure(
    name: str, make: Callable[[], Storage], calls: int, items: int, rounds: int
) -> list[tuple[str, str, float]]:
    bookmarks = make_bookmarks(items)
    one = bookmarks[0]
    pk = one["pk"]
    with BookmarkManager.sync(make()) as twin:
        twin.add_items(bookmarks)
        # The async manager has a storage of its own on the same data, so
        # that neither side runs on the other's loop.
        manager = BookmarkManager(make())

        async def get(m: BookmarkManager) -> Any:
            return await m.get_item(pk)

        async def put(m: BookmarkManager) -> Any:
            return await m.add_item(one)

        variants: dict[str, Callable[[], float]] = {
            "get_item: awaited": lambda: awaited(manager, get, calls),
            "get_item: blocking twin": lambda: through_twin(twin, lambda t: t.get_item(pk), calls),
            "get_item: asyncio.run per call": lambda: run_per_call(manager, get, calls),
            f"get_item: blocking twin, {THREADS} threads": lambda: from_threads(twin, pk, calls),
            "add_item (replace): awaited": lambda: awaited(manager, put, calls // 5),
            "add_item (replace): blocking twin": lambda: through_twin(
                twin, lambda t: t.add_item(one), calls // 5
            ),
            "add_item (replace): asyncio.run per call": lambda: run_per_call(
                manager, put, calls // 5
            ),
            "iter_items, per item: awaited": lambda: scan_async(manager),
            "iter_items, per item: blocking twin": lambda: scan_twin(twin),
        }
        results: dict[str, list[float]] = {label: [] for label in variants}
        for _ in range(rounds):
            for label, variant in variants.items():
                results[label].append(variant())
        asyncio.run(manager.close())
    return [(name, label, statistics.median(times)) for label, times in results.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per timed run")
    parser.add_argument("--items", type=int, default=5000, help="items stored and scanned")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        memory = InMemoryStorage()  # bound to no loop: both sides share the one store
        backends: dict[str, Callable[[], Storage]] = {
            "memory": lambda: memory,
            "sqlite": lambda: SQLiteStorage(Path(tmp) / "bench.db"),
        }
        rows = [
            row
            for name, make in backends.items()
            for row in measure(name, make, args.calls, args.items, args.rounds)
        ]
    print(f"calls {args.calls}, items {args.items}, median of {args.rounds} rounds\n")
    print("| store | operation | µs |")
    print("|---|---|---:|")
    for name, label, micros in rows:
        print(f"| {name} | {label} | {micros:.1f} |")
    machine = machine_info()
    print(
        f"\n{machine['cpu']}, {machine['cores']} cores, load {machine['load_average']}; "
        + ", ".join(f"{k} {v}" for k, v in versions().items())
    )


if __name__ == "__main__":
    main()
