"""Sizes of a benchmark run: the full run of ``make bench`` and ``--quick``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: Every phase of a full run, in the order they run.
PHASES = (
    "s3",
    "latency",
    "floor",
    "overhead",
    "cpu",
    "transport",
    "scan",
    "sqlite",
    "sqlite_bulk",
)


@dataclass(frozen=True)
class Sizes:
    """Every size a run uses; see ``docs/benchmarks.md`` for what each scenario does."""

    #: Repetitions of each measured scenario (medians are reported).
    runs: int = 3
    #: Bookmarks (3 collections each) created per run, and gets by pk per run.
    create_n: int = 2_000
    get_n: int = 2_000
    #: Entries paged through on S3 by ssshelf and by the seed, the page sizes,
    #: and how many passes of each (each pass also yields the median time of its
    #: pages).  The seed fetches the items of a page one after another (~50 ms
    #: of Ceph's time per 100 entries), so it pages through fewer entries: the
    #: report compares time per entry and per page, which do not need more.
    page_n: int = 6_000
    seed_page_n: int = 1_000
    page_sizes: tuple[int, ...] = (100, 1_000)
    page_runs: int = 1
    #: Added latency per request, and repetitions of each single operation.
    delay: float = 0.020
    latency_reps: int = 10
    #: In-memory full scans: collection sizes, page size; the seed's (quadratic) scans
    #: run once per size, and a size predicted to take over the cap is skipped.
    scan_sizes: tuple[int, ...] = (25_000, 50_000, 100_000)
    scan_page: int = 1_000
    seed_scan_runs: int = 1
    seed_scan_max_seconds: float = 45.0
    #: S3Storage vs aiobotocore: objects, object size, requests in flight, list passes.
    overhead_n: int = 1_000
    overhead_size: int = 1_024
    overhead_conc: int = 16
    overhead_list_passes: int = 5
    overhead_list_page: int = 100
    #: Index entries iterated on SQLite while peak RSS is measured.
    sqlite_n: int = 1_000_000
    #: Client CPU on S3: gets by pk measured, pages of 100 measured.
    cpu_n: int = 1_000
    cpu_pages: int = 20
    #: The server's floor (a minimal client's page of 100 and create): repetitions.
    floor_reps: int = 10
    #: The transport bake-off (``benchmarks/s3_transport.py``): PUTs (and as many
    #: GETs) and pages of 100 a round, rounds; the memory of a put/get of this size.
    transport_n: int = 1_000
    transport_pages: int = 20
    transport_rounds: int = 3
    memory_mib: int = 100
    #: SQLite bulk load: items of each size, and the variants of
    #: ``benchmarks/sqlite_bulk.py`` run at it (``manager`` and ``plain`` always).
    sqlite_bulk: tuple[tuple[int, tuple[str, ...]], ...] = (
        (10_000, ("manager", "plain", "put_many", "manager_memory")),
        (100_000, ("manager", "plain", "put_many")),
    )
    phases: tuple[str, ...] = field(default=PHASES, compare=False)


FULL = Sizes()
QUICK = Sizes(
    runs=1,
    create_n=100,
    get_n=100,
    latency_reps=3,
    scan_sizes=(1_000, 2_000, 4_000),
    seed_scan_max_seconds=20.0,
    overhead_n=100,
    overhead_conc=8,
    overhead_list_passes=1,
    overhead_list_page=50,
    sqlite_n=20_000,
    cpu_n=150,
    cpu_pages=3,
    page_n=300,
    seed_page_n=200,
    floor_reps=3,
    transport_n=100,
    transport_pages=2,
    transport_rounds=1,
    memory_mib=8,
    sqlite_bulk=((2_000, ("manager", "plain", "put_many", "manager_memory")),),
)


def sizes_for(
    *,
    quick: bool,
    runs: int | None = None,
    page_runs: int | None = None,
    phases: tuple[str, ...] = (),
) -> Sizes:
    """The full or quick sizes, with runs, paging passes and phases overridden when given."""
    sizes = QUICK if quick else FULL
    if runs is not None:
        sizes = replace(sizes, runs=runs)
    if page_runs is not None:
        sizes = replace(sizes, page_runs=page_runs)
    if phases:
        sizes = replace(sizes, phases=phases)
    return sizes
