"""``python -m benchmarks.sqlite_bulk``: bulk load on SQLite, ssshelf beside plain sqlite3.

For each size (10,000 and 100,000 items unless ``--sizes`` says otherwise),
every variant runs in a fresh process of its own (so that its peak RSS is its
own) and writes the same rows into a fresh file with the same table and the
same durability (WAL, ``synchronous=FULL``):

``manager``
    ``CManager.add_items`` of N bookmarks with two collections, one of them
    unique: four objects an item (the item, two index entries, a reservation).
``put``
    The rows the manager wrote, in the order it wrote them, sent as it sent
    them: one ``SQLiteStorage.put`` a row (entries plain, reservations and
    items ``if_absent``), the rows of each of the manager's group commits
    together.  The storage's own cost at the manager's group sizes.
``put_many``
    The same rows through ``SQLiteStorage.put_many``, 1,000 writes a request
    and four requests in flight (the worker commits them together: 4,000
    rows a transaction, as ``plain``).
``plain``
    The same rows with ``sqlite3.executemany``, 1,000 items (4,000 rows) a
    transaction: the baseline.
``plain_groups``
    The same, one transaction per group commit of the manager: what the
    manager's number of fsyncs costs by itself.
``manager_memory``
    ``add_items`` again, over ``InMemoryStorage``: the manager's own cost
    with a store that costs (almost) nothing.

Only the writes are timed (reading the rows back from the manager's file is
not).  With ``--runs N`` every variant runs N times, alternating, and the
median counts.  Items per second, the ratio to ``plain``, the peak RSS of
each process and, for the manager, the CPU time of the event-loop thread and
of the storage's worker thread are printed, and saved as JSON.  ``--profile``
adds a run of the manager with its event-loop thread under cProfile and
prints where that thread's time goes, per item.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "sqlite_bulk"
NAMESPACE = "bulk"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_EPOCH_SECONDS = int(EPOCH.timestamp())
SIZES = (10_000, 100_000)
VARIANTS = ("manager", "put", "put_many", "plain", "plain_groups", "manager_memory")
#: put_many requests in flight at once.
PUT_MANY_IN_FLIGHT = 4
#: Rows a transaction of the plain baseline (1,000 items of 4 objects).
PLAIN_ROWS = 4_000
TABLE = """CREATE TABLE objects (
    key BLOB PRIMARY KEY, data BLOB NOT NULL, version TEXT NOT NULL, modified REAL NOT NULL
) WITHOUT ROWID"""


def bookmark(n: int) -> dict[str, Any]:
    """Item number ``n`` (the shape of ``benchmarks/driver.py``'s bookmarks),
    made cheaply: the input is not what is measured."""
    site = f"site{n % 50}.example"
    return {
        "pk": f"{n:09d}",
        "link": f"https://{site}/articles/{n}",
        "title": f"Bookmark number {n}",
        "user": f"user{n % 100:03d}",
        "site": site,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_EPOCH_SECONDS + n)),
        "tags": ["bench", f"t{n % 7}"],
    }


def manager_class() -> Any:
    """A CManager with two collections: by site (plain) and by link (unique)."""
    from ssshelf import CManager, Collection, IManager

    class BySite(Collection):
        def key(self, item: dict[str, Any]) -> Any:
            return (item["site"], item["created_at"])

    class ByLink(Collection):
        unique = True

        def key(self, item: dict[str, Any]) -> Any:
            return item["link"]

    return type(
        "Bookmarks",
        (CManager,),
        {
            "namespace": NAMESPACE,
            "item_manager": IManager(),
            "by_site": BySite(),
            "by_link": ByLink(),
        },
    )


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def plain_connection(path: Path) -> sqlite3.Connection:
    remove_database(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(TABLE)
    return db


Row = tuple[bytes, bytes, str, float]


def groups(source: Path) -> Iterator[list[Row]]:
    """The rows of ``source``, one list per group commit (rows committed
    together share their ``modified`` time), in the order they were written."""
    with sqlite3.connect(source) as db:
        group: list[Row] = []
        query = "SELECT key, data, version, modified FROM objects ORDER BY modified, key"
        for row in db.execute(query):
            if group and row[3] != group[-1][3]:
                yield group
                group = []
            group.append(row)
        if group:
            yield group


def chunks(source: Path, size: int) -> Iterator[list[Row]]:
    """The rows of ``source`` in write order, ``size`` at a time."""
    chunk: list[Row] = []
    for group in groups(source):
        for row in group:
            chunk.append(row)
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def is_entry(key: bytes) -> bool:
    """Index entries are written unconditionally; items and reservations with if_absent."""
    return key.startswith(f"{NAMESPACE}/c/".encode())


# -- the variants (each runs in a process of its own) ----------------------------------


async def run_manager(path: Path, n: int, in_memory: bool, profile: bool) -> dict[str, Any]:
    from ssshelf.storages.base import Storage
    from ssshelf.storages.inmemory import InMemoryStorage
    from ssshelf.storages.sqlite import SQLiteStorage

    remove_database(path)
    storage: Storage = InMemoryStorage() if in_memory else SQLiteStorage(path)
    manager = manager_class()(storage)
    profiler = cProfile.Profile() if profile else None
    wall, loop_cpu, cpu = time.perf_counter(), time.thread_time(), time.process_time()
    if profiler is not None:
        profiler.enable()
    written = await manager.add_items(bookmark(i) for i in range(n))
    if profiler is not None:
        profiler.disable()
    wall, loop_cpu = time.perf_counter() - wall, time.thread_time() - loop_cpu
    cpu = time.process_time() - cpu
    await manager.close()
    assert written == n
    out: dict[str, Any] = {
        "seconds": wall,
        "loop_cpu_seconds": loop_cpu,
        "worker_cpu_seconds": cpu - loop_cpu,
    }
    if in_memory:
        # the same rows into a file, untimed, so that the row count can be compared
        with plain_connection(path) as db:
            for key in [k async for k in _all_keys(storage)]:
                obj = await storage.get(key)
                assert obj is not None
                db.execute("INSERT INTO objects VALUES (?, ?, ?, 0)", (key.encode(), obj.data, ""))
    if profiler is not None:
        out["profile"] = profile_summary(profiler, n)
    return out


async def _all_keys(storage: Any) -> Any:
    after = None
    while True:
        page = await storage.list(after=after)
        for key in page.keys:
            yield key
        if page.next_after is None:
            return
        after = page.next_after


async def run_put(path: Path, n: int, source: Path, profile: bool) -> dict[str, Any]:
    from ssshelf.storages.sqlite import SQLiteStorage

    remove_database(path)
    storage = SQLiteStorage(path)
    seconds = 0.0
    for group in groups(source):
        started = time.perf_counter()
        await asyncio.gather(
            *(storage.put(k.decode(), d, if_absent=not is_entry(k)) for k, d, _, _ in group)
        )
        seconds += time.perf_counter() - started
    await storage.close()
    return {"seconds": seconds}


async def run_put_many(path: Path, n: int, source: Path, profile: bool) -> dict[str, Any]:
    from ssshelf.storages.sqlite import PutRequest, SQLiteStorage

    remove_database(path)
    storage = SQLiteStorage(path)
    seconds = 0.0
    rows = chunks(source, storage.max_put_batch * PUT_MANY_IN_FLIGHT)
    for chunk in rows:
        puts = [PutRequest(k.decode(), d, if_absent=not is_entry(k)) for k, d, _, _ in chunk]
        size = storage.max_put_batch
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(storage.put_many(puts[i : i + size]) for i in range(0, len(puts), size))
        )
        seconds += time.perf_counter() - started
        assert all(isinstance(a, str) for batch in answers for a in batch)
    await storage.close()
    return {"seconds": seconds}


def run_plain(path: Path, source: Path, batches: Iterator[list[Row]]) -> dict[str, Any]:
    db = plain_connection(path)
    seconds = 0.0
    for batch in batches:
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO objects VALUES (?, ?, ?, ?)", batch)
        db.execute("COMMIT")
        seconds += time.perf_counter() - started
    db.close()
    return {"seconds": seconds}


def run_child(
    variant: str, path: Path, n: int, source: Path | None, profile: bool
) -> dict[str, Any]:
    """One variant in this process; its result with this process's peak RSS."""
    if variant in ("manager", "manager_memory"):
        out = asyncio.run(run_manager(path, n, variant == "manager_memory", profile))
    elif variant in ("put", "put_many"):
        assert source is not None
        runner = run_put if variant == "put" else run_put_many
        out = asyncio.run(runner(path, n, source, profile))
    else:
        assert source is not None
        batches = chunks(source, PLAIN_ROWS) if variant == "plain" else groups(source)
        out = run_plain(path, source, batches)
    out["items_per_second"] = n / out["seconds"]
    out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with sqlite3.connect(path) as db:
        (out["rows"],) = db.execute("SELECT count(*) FROM objects").fetchone()
    if source is not None:
        out["group_commits_of_the_manager"] = sum(1 for _ in groups(source))
    return out


# -- where the manager's time goes -------------------------------------------------------

#: Module path fragments -> the part of the stack they belong to.
PARTS = (
    ("ssshelf/storages/sqlite", "storage (event-loop side)"),
    ("ssshelf/", "manager (ssshelf above the storage)"),
    ("asyncio/", "asyncio (tasks, futures, callbacks)"),
    ("json/", "json (item serialisation)"),
)


def profile_summary(profiler: cProfile.Profile, n: int) -> dict[str, Any]:
    """The event-loop thread's time per item: its own time by part of the
    stack, the functions with the most own time, and the cumulative time of
    ssshelf's functions above the storage."""
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    by_part: dict[str, float] = {}
    own: list[tuple[float, str]] = []
    cumulative: list[tuple[float, str]] = []
    for (filename, line, name), (_, _, tottime, cumtime, _) in raw.items():
        part = next((label for frag, label in PARTS if frag in filename), None)
        if part is None:
            part = "waiting for the worker (epoll)" if "poll" in name else "other"
        by_part[part] = by_part.get(part, 0.0) + tottime
        where = f"{Path(filename).name}:{line}" if filename != "~" else "builtin"
        own.append((tottime, f"{where} {name}"))
        if "ssshelf/" in filename and "ssshelf/storages/" not in filename:
            cumulative.append((cumtime, f"{where} {name}"))
    own.sort(reverse=True)
    cumulative.sort(reverse=True)
    per_item = 1e6 / n
    return {
        "microseconds_per_item": {k: v * per_item for k, v in sorted(by_part.items())},
        "top_own": [{"function": f, "microseconds_per_item": t * per_item} for t, f in own[:15]],
        "top_cumulative": [
            {"function": f, "microseconds_per_item": t * per_item} for t, f in cumulative[:20]
        ],
    }


# -- the run --------------------------------------------------------------------------


def child_process(variant: str, path: Path, n: int, source: Path | None, profile: bool) -> Any:
    argv = [sys.executable, "-m", "benchmarks.sqlite_bulk", "--child", variant]
    argv += ["--path", str(path), "--sizes", str(n)]
    if source is not None:
        argv += ["--source", str(source)]
    if profile:
        argv.append("--profile")
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=HERE.parent, timeout=3600
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} at {n:,} items failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    n: int,
    runs: int,
    work: Path,
    profile: bool,
    say: Any,
    variants: Sequence[str] = VARIANTS,
) -> dict[str, Any]:
    """Each of ``variants`` (``manager`` and ``plain`` always among them) at ``n``
    items, ``runs`` times; the median run of each.

    Each run starts with the manager, whose file is the others' source, and
    plain sqlite3 right after it; the others follow in the order given,
    reversed every other run.  ``paired_ratio_to_plain`` of a variant is the
    median over the runs of its speed over plain's in the same run: this
    machine's speed drifts by up to 2x within minutes, and a ratio of two
    neighbouring measurements drifts far less than a ratio of medians.
    """
    variants = ["manager", "plain", *(v for v in variants if v not in ("manager", "plain"))]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    work.mkdir(parents=True, exist_ok=True)
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for run in range(runs):
        source = work / f"manager-{n}.db"
        others = [v for v in variants if v not in ("manager", "plain")]
        if run % 2:
            others.reverse()
        for variant in ["manager", "plain", *others]:
            path = source if variant == "manager" else work / f"{variant}-{n}.db"
            result = child_process(
                variant, path, n, None if variant.startswith("manager") else source, False
            )
            samples[variant].append(result)
            rate = result["items_per_second"]
            say(f"{n:>7,} items  run {run + 1}  {variant:<15} {rate:>9,.0f} items/s")
            if variant != "manager":
                remove_database(path)
        remove_database(source)
    results = {v: _median(samples[v]) for v in variants}
    if profile:
        path = work / f"profiled-{n}.db"
        results["manager"]["profile"] = child_process("manager", path, n, None, True)["profile"]
        remove_database(path)
    rows = {v: r["rows"] for v, r in results.items()}
    assert len(set(rows.values())) == 1, f"the variants wrote different rows: {rows}"
    plain = results["plain"]["items_per_second"]
    for variant, result in results.items():
        result["ratio_to_plain"] = result["items_per_second"] / plain
        paired = [
            mine["items_per_second"] / base["items_per_second"]
            for mine, base in zip(samples[variant], samples["plain"], strict=True)
        ]
        result["paired_ratios_to_plain"] = paired
        result["paired_ratio_to_plain"] = statistics.median(paired)
    return results


def _median(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median speed, with every run's speed beside it."""
    ordered = sorted(samples, key=lambda r: r["items_per_second"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs_items_per_second"] = [r["items_per_second"] for r in samples]
    chosen["median_items_per_second"] = statistics.median(r["items_per_second"] for r in samples)
    return chosen


def table(results: dict[int, dict[str, Any]]) -> str:
    lines = [
        "| items | variant | items/s | ratio to plain | peak RSS (MiB) |",
        "|---:|---|---:|---:|---:|",
    ]
    for n, by_variant in results.items():
        for variant, r in by_variant.items():
            lines.append(
                f"| {n:,} | {variant} | {r['items_per_second']:,.0f} | "
                f"{r['ratio_to_plain']:.3f} | {r['max_rss_mib']:.0f} |"
            )
    for n, by_variant in results.items():
        m = by_variant["manager"]
        memory = by_variant.get("manager_memory")
        lines.append(
            f"\nmanager at {n:,} items: {by_variant['plain']['group_commits_of_the_manager']:,} "
            f"group commits; CPU an item: event-loop thread {m['loop_cpu_seconds'] / n * 1e6:.0f}"
            f" µs, worker thread {m['worker_cpu_seconds'] / n * 1e6:.0f} µs; wall"
            f" {m['seconds'] / n * 1e6:.0f} µs"
            + (
                f" (over memory: the loop thread {memory['loop_cpu_seconds'] / n * 1e6:.0f} µs)"
                if memory
                else ""
            )
        )
        if "profile" in m:
            profile = m["profile"]
            lines.append("  event-loop thread under cProfile, own time, µs an item:")
            for part, us in sorted(profile["microseconds_per_item"].items(), key=lambda x: -x[1]):
                lines.append(f"    {us:8.1f}  {part}")
            lines.append("  functions with the most own time (µs an item):")
            lines += [
                f"    {f['microseconds_per_item']:8.1f}  {f['function']}"
                for f in profile["top_own"]
            ]
            lines.append("  ssshelf above the storage, cumulative (µs an item):")
            lines += [
                f"    {f['microseconds_per_item']:8.1f}  {f['function']}"
                for f in profile["top_cumulative"]
            ]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sqlite_bulk", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="items a run")
    parser.add_argument("--runs", type=int, default=1, help="runs of each variant (median)")
    parser.add_argument("--profile", action="store_true", help="profile the manager's loop thread")
    parser.add_argument("--json", type=Path, default=WORK / "results.json", help="results file")
    parser.add_argument("--work", type=Path, default=WORK, help="directory for the files")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        print(
            json.dumps(run_child(args.child, args.path, args.sizes[0], args.source, args.profile))
        )
        return 0

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = datetime.now(UTC)
    results = {n: measure(n, args.runs, args.work, args.profile, say) for n in args.sizes}
    report = {
        "command": " ".join(["python -m benchmarks.sqlite_bulk", *(argv or sys.argv[1:])]),
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": list(os.getloadavg()),
        "sqlite_version": sqlite3.sqlite_version,
        "python": sys.version.split()[0],
        "results": {str(n): r for n, r in results.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(table(results))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
