"""Turn a run's results into targets, ``BENCHMARKS.md`` and the plots.

Everything here is a pure function of the results dictionary that
``benchmarks.run`` builds (and saves as ``benchmarks/results.json``), so a
report can be rebuilt without measuring again::

    python -m benchmarks.report benchmarks/results.json
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OP_LABELS = {
    "create": "create (3 collections)",
    "get": "get by pk",
    "page100": "page of 100 items",
    "replace": "replace (blind write)",
    "update": "update (read-modify-write)",
    "remove": "remove",
}
MODEL_LABELS = {
    "s3": "S3 (moto) behind a 20 ms-per-request proxy",
    "memory": "in-memory store, 20 ms added per request",
}
CEPH_S3_LABEL = "S3 (Ceph RGW 16), 20 ms added per request in the client process"
#: S3 Standard request prices, dollars per request (us-east-1): PUT, COPY, POST
#: and LIST $0.005 per 1,000, GET $0.0004 per 1,000, DELETE free.  DeleteObjects
#: is a POST and counted as one (the conservative reading).
PRICE_PER_REQUEST = {
    "put": 0.005 / 1000,
    "list": 0.005 / 1000,
    "delete_many": 0.005 / 1000,
    "get": 0.0004 / 1000,
    "delete": 0.0,
}
#: Floors at 20 ms a request (two and one-and-a-half round trips' worth) and goals.
LATENCY_GOALS = {"page100": 0.060, "create": 0.050}


def on_ceph(results: dict[str, Any]) -> bool:
    """Whether the S3 figures of these results come from Ceph RGW."""
    return results.get("s3_server") == "ceph"


def model_label(results: dict[str, Any], model: str) -> str:
    """The heading of a latency model, naming the server it ran on."""
    return CEPH_S3_LABEL if model == "s3" and on_ceph(results) else MODEL_LABELS[model]


def dollars_per_million(by_kind: dict[str, float]) -> float:
    """What a million operations cost at S3 Standard's request prices."""
    return 1e6 * sum(PRICE_PER_REQUEST.get(kind, 0.005 / 1000) * n for kind, n in by_kind.items())


RSS_LIMIT_BYTES = 150 * 10**6
#: The sign written after ratios.
X = "\N{MULTIPLICATION SIGN}"
LINEAR_TOLERANCE = 1.5
#: SQLite bulk load: add_items' items per second over plain sqlite3's, at least.
BULK_RATIO_TARGET = 0.3
#: S3Storage's client CPU over the minimal asyncio SigV4 client's, at most.
TRANSPORT_CPU_TARGET = 1.5
#: Extra peak memory of a big put or get, as a multiple of the value, at most.
MEMORY_TARGET = 1.3


@dataclass(frozen=True)
class Target:
    """One checked target: what, the measured figure, and whether it held."""

    name: str
    measured: str
    threshold: str
    passed: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        """PASS, FAIL or n/a (not measured)."""
        if self.passed is None:
            return "n/a"
        return "PASS" if self.passed else "FAIL"


# -- helpers ----------------------------------------------------------------


def median(values: list[float]) -> float:
    """The median (of at least one value)."""
    return float(statistics.median(values))


def ms(seconds: float | None) -> str:
    """Milliseconds, to a precision that suits the size."""
    if seconds is None:
        return "—"
    value = seconds * 1000
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def secs(seconds: float | None) -> str:
    """Seconds with two decimals."""
    return "—" if seconds is None else f"{seconds:,.2f} s"


def times(x: float | None) -> str:
    """A ratio such as ``12.3`` followed by a multiplication sign."""
    if x is None:
        return "—"
    return f"{x:,.1f}{X}" if x >= 10 else f"{x:.2f}{X}"


def _op(results: dict[str, Any], model: str, lib: str, op: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        results.get("latency", {}).get(model, {}).get(lib, {}).get("ops", {}).get(op)
    )
    return found


def speedup(results: dict[str, Any], model: str, op: str) -> float | None:
    """How many times faster ssshelf did ``op`` than the seed (median latency)."""
    ours = _op(results, model, "ssshelf", op)
    seed = _op(results, model, "seed", op)
    if not ours or not seed:
        return None
    return float(seed["seconds"]["median"] / ours["seconds"]["median"])


def s3_medians(results: dict[str, Any], lib: str) -> dict[str, float]:
    """Median seconds of each S3 scenario for ``lib`` over the runs that measured it."""
    runs = results.get("s3", {}).get(lib, [])
    out: dict[str, float] = {}
    for name, key in (("create", "create_seconds"), ("get", "get_seconds")):
        values = [r[key] for r in runs if key in r]
        if values:
            out[name] = median(values)
    pages = [r["page_seconds"] for r in runs if "page_seconds" in r]
    for size in pages[0] if pages else ():
        out[f"page{size}"] = median([p[size] for p in pages])
    each = [r["page_each"] for r in runs if "page_each" in r]
    for size in each[0] if each else ():
        out[f"each{size}"] = median([e[size] for e in each])
    return out


def overhead_medians(results: dict[str, Any]) -> dict[str, float]:
    """Median requests per second of each client over the runs."""
    runs = results.get("overhead", [])
    if not runs:
        return {}
    return {name: median([r[name]["per_second"] for r in runs]) for name in runs[0]}


def scan_points(results: dict[str, Any], lib: str, kind: str = "scan") -> list[tuple[int, float]]:
    """(N, median seconds) of the in-memory full scans of ``lib``.

    ``kind`` is ``"scan"`` (as is) or ``"scan_frozen"`` (after ``gc.freeze()``).
    """
    scan = results.get("scan", {}).get(lib, {}).get(kind, {})
    return sorted((int(n), v["median"]) for n, v in scan.items() if n.isdigit())


def linear_fit(points: list[tuple[int, float]]) -> tuple[float, float, float]:
    """Least squares ``t = a + b·N``: (a, b, r²)."""
    xs = [float(n) for n, _ in points]
    ys = [t for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = sxy / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, (1 - ss_res / ss_tot) if ss_tot else 1.0


def growth(points: list[tuple[int, float]]) -> float | None:
    """Per-entry time at the largest N over per-entry time at the smallest N."""
    if len(points) < 2:
        return None
    (n0, t0), (n1, t1) = points[0], points[-1]
    return (t1 / n1) / (t0 / n0)


def floor(results: dict[str, Any], op: str) -> float | None:
    """This server's floor for ``op`` at the latency phase's delay, in seconds.

    Its dependent round trips times the delay, plus the time a minimal client
    takes for the same requests with no added latency (the floor phase).
    """
    found = results.get("floor", {})
    raw = found.get("raw", {}).get(op)
    if not raw:
        return None
    return float(found["round_trips"][op] * found["delay"] + raw["median"])


def bulk_ratio(by_variant: dict[str, Any]) -> float | None:
    """``add_items``' items per second over plain ``executemany``'s: the median
    over the runs of the two measured back to back (older results: the ratio
    of the medians)."""
    manager, plain = by_variant.get("manager"), by_variant.get("plain")
    if not manager or not plain:
        return None
    if "paired_ratio_to_plain" in manager:
        return float(manager["paired_ratio_to_plain"])
    return float(manager["median_items_per_second"] / plain["median_items_per_second"])


# -- targets ----------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[Target]:
    """The five targets of the benchmark suite, judged on these results."""
    out: list[Target] = []
    for model in ("s3", "memory"):
        label = (
            ("S3, Ceph RGW" if on_ceph(results) else "S3 + proxy") if model == "s3" else "in-memory"
        )
        for op, need in (("page100", 25.0), ("create", 2.0)):
            x = speedup(results, model, op)
            out.append(
                Target(
                    f"{OP_LABELS[op]}, 20 ms/request ({label}): faster than the seed",
                    times(x),
                    f"≥ {need:g}{X}",
                    None if x is None else x >= need,
                )
            )
    for op, goal in LATENCY_GOALS.items():
        ours = _op(results, "s3", "ssshelf", op)
        seconds = ours["seconds"]["median"] if ours and on_ceph(results) else None
        bound = floor(results, op)
        note = ""
        if seconds is not None and bound is not None:
            note = f" (this server's floor: {ms(bound)})"
        out.append(
            Target(
                f"{OP_LABELS[op]}, 20 ms/request on Ceph RGW (added in the client)",
                ms(seconds) + note,
                f"≤ {goal * 1000:.0f} ms",
                None if seconds is None else seconds <= goal,
                "server-bound: the floor is above the goal"
                if bound is not None and bound > goal
                else "",
            )
        )
    rates = overhead_medians(results)
    ratio = rates["storage"] / rates["raw"] if rates else None
    out.append(
        Target(
            "S3Storage throughput vs raw aiobotocore (same requests)",
            times(ratio),
            f"≥ 0.85{X}",
            None if ratio is None else ratio >= 0.85,
        )
    )
    frozen = scan_points(results, "ssshelf", "scan_frozen")
    points = frozen or scan_points(results, "ssshelf")
    g = growth(points)
    out.append(
        Target(
            "paging N entries in memory grows linearly (per-entry time, largest/smallest N"
            + (", store's objects frozen out of the GC)" if frozen else ")"),
            "—" if g is None else f"{g:.2f}",
            f"≤ {LINEAR_TOLERANCE:g} (quadratic would be {points[-1][0] // points[0][0]})"
            if len(points) >= 2
            else f"≤ {LINEAR_TOLERANCE:g}",
            None if g is None else g <= LINEAR_TOLERANCE,
        )
    )
    for n, by_variant in sorted(results.get("sqlite_bulk", {}).items(), key=lambda kv: int(kv[0])):
        ratio = bulk_ratio(by_variant)
        out.append(
            Target(
                f"SQLite bulk load of {int(n):,} items: `add_items` vs plain"
                " `sqlite3.executemany`, same rows, same run",
                times(ratio),
                f"≥ {BULK_RATIO_TARGET:g}{X}",
                None if ratio is None else ratio >= BULK_RATIO_TARGET,
            )
        )
    cpu = results.get("transport", {}).get("cpu", {})
    ours, floor_ = cpu.get("S3Storage", {}), cpu.get("minimal", {})
    for key, what in (("request_ms", "per request"), ("page_ms", "per page of 100")):
        ratio = ours[key] / floor_[key] if key in ours and key in floor_ else None
        out.append(
            Target(
                f"S3Storage client CPU {what} vs a minimal asyncio SigV4 client (same server)",
                times(ratio),
                f"≤ {TRANSPORT_CPU_TARGET:g}{X}",
                None if ratio is None else ratio <= TRANSPORT_CPU_TARGET,
            )
        )
    memory = {m["client"]: m for m in results.get("transport", {}).get("memory", [])}
    mib = results.get("transport", {}).get("sizes", {}).get("memory_mib", 100)
    for op in ("put", "get"):
        extra = memory.get("S3Storage", {}).get(f"{op}_extra")
        out.append(
            Target(
                f"peak memory of a {mib} MiB {op} above holding the value (S3Storage)",
                "—" if extra is None else f"{extra:+.3f}{X}",
                f"≤ +{MEMORY_TARGET:g}{X}",
                None if extra is None else extra <= MEMORY_TARGET,
            )
        )
    it = results.get("sqlite", {}).get("iter")
    rss = it["max_rss_kib"] * 1024 if it else None
    entries = it["child"]["entries"] if it else 0
    out.append(
        Target(
            f"peak RSS iterating {entries:,} index entries on SQLite",
            "—" if rss is None else f"{rss / 1e6:.0f} MB",
            "< 150 MB",
            None if rss is None else rss < RSS_LIMIT_BYTES,
        )
    )
    return out


# -- markdown ---------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _latency_section(results: dict[str, Any], model: str) -> list[str]:
    data = results.get("latency", {}).get(model, {})
    if not data:
        return []
    lines = [f"### {model_label(results, model)}", ""]
    rows = []
    for op, label in OP_LABELS.items():
        ours = _op(results, model, "ssshelf", op)
        seed = _op(results, model, "seed", op)
        if not ours:
            continue
        x = speedup(results, model, op)
        rows.append(
            [
                label,
                ms(ours["seconds"]["median"]),
                ms(seed["seconds"]["median"]) if seed else "—",
                times(x),
                f"{ours['requests']:g} / {seed['requests']:g}" if seed else f"{ours['requests']:g}",
                f"{ours['round_trips']:g} / {seed['round_trips']:g}"
                if seed
                else f"{ours['round_trips']:g}",
            ]
        )
    lines += _table(
        [
            "operation",
            "ssshelf",
            "seed 0.1.3",
            "speed-up",
            "requests (ours / seed)",
            "round trips (ours / seed)",
        ],
        rows,
    )
    kinds = []
    for op in OP_LABELS:
        ours = _op(results, model, "ssshelf", op)
        if ours:
            detail = ", ".join(f"{v:g} {k}" for k, v in ours["by_kind"].items())
            kinds.append(f"{op}: {detail}")
    if kinds:
        lines += ["", "ssshelf's requests by kind, per operation: " + "; ".join(kinds) + "."]
    return [*lines, ""]


def _s3_client_sections(results: dict[str, Any], sizes: dict[str, Any]) -> list[str]:
    """Client CPU, rates and request cost on S3."""
    server = "Ceph RGW" if on_ceph(results) else "moto"
    lines: list[str] = []
    cpu = results.get("cpu", {})
    runs = results.get("overhead", [])
    if cpu or runs:
        measured: dict[str, Any] = next(iter(cpu.values()), {})
        gets, pages = measured.get("gets", 0), measured.get("pages", 0)
        lines += [
            f"## Client CPU on S3 ({server})",
            "",
            "The client process's own CPU (`time.process_time()`), which the server's speed "
            f"does not blur. Libraries: {gets:,} gets by pk (64 in flight) "
            f"and {pages} pages of 100 items, each page one listing and "
            "100 gets. Clients: the requests of the overhead phase (PUTs, GETs, "
            "listings, DeleteObjects).",
            "",
        ]
        rows = []
        for lib, label in (("ssshelf", "ssshelf (CManager)"), ("seed", "seed 0.1.3")):
            if lib in cpu:
                rows.append(
                    [label, f"{cpu[lib]['get_cpu_ms']:.2f} ms", f"{cpu[lib]['page_cpu_ms']:.1f} ms"]
                )
        for name, label in (
            ("raw_default", "raw aiobotocore (default settings)"),
            ("raw", "raw aiobotocore (S3Storage's old settings)"),
            ("storage", "S3Storage (ssshelf's transport)"),
        ):
            values = [
                r[name]["cpu_ms_per_request"]
                for r in runs
                if "cpu_ms_per_request" in r.get(name, {})
            ]
            if values:
                rows.append([label, f"{median(values):.2f} ms", "—"])
        lines += _table(["client", "per request", "per page of 100 items"], rows)
        lines += [""]
    rates = []
    for lib, label in (("ssshelf", "ssshelf"), ("seed", "seed 0.1.3")):
        medians = s3_medians(results, lib)
        if "get" in medians and "create" in medians:
            rates.append(
                [
                    label,
                    f"{sizes['get_n'] / medians['get']:,.0f}",
                    f"{sizes['create_n'] / medians['create']:,.0f}",
                ]
            )
    if rates:
        lines += [f"## Rates on S3 ({server}, no added latency)", ""]
        lines += _table(
            ["library", "gets by pk per second (64 in flight)", "bulk load, items per second"],
            rates,
        )
        lines += [""]
    costs = []
    for op, label in OP_LABELS.items():
        ours = _op(results, "s3", "ssshelf", op)
        seed = _op(results, "s3", "seed", op)
        if ours:
            costs.append(
                [
                    label,
                    f"${dollars_per_million(ours['by_kind']):,.2f}",
                    f"${dollars_per_million(seed['by_kind']):,.2f}" if seed else "—",
                ]
            )
    if costs:
        lines += [
            "## What an operation costs (S3 Standard request prices)",
            "",
            "Dollars per million operations, from the requests each made above: PUT, POST "
            "and LIST $0.005 per 1,000, GET $0.0004 per 1,000, DELETE free (DeleteObjects, "
            "a POST, counted as one).",
            "",
        ]
        lines += _table(["operation", "ssshelf", "seed 0.1.3"], costs)
        lines += [""]
    return lines


def _transport_section(results: dict[str, Any]) -> list[str]:
    """S3Storage beside a minimal client and raw aiobotocore; memory beside boto3."""
    found = results.get("transport")
    if not found:
        return []
    server = "Ceph RGW" if on_ceph(results) else "moto"
    sizes = found.get("sizes", {})
    lines = [
        f"## The S3 transport: client CPU and memory ({server})",
        "",
        f"`benchmarks/s3_transport.py`, all clients in one process, rounds alternating: "
        f"{sizes.get('n', 0):,} PUTs then as many GETs of 200-byte objects (16 in flight), "
        f"and {sizes.get('pages', 0)} pages of 100 (one listing, then the 100 GETs at once), "
        f"medians of {sizes.get('rounds', 0)} rounds. Client CPU is `time.process_time()` of "
        "the client process; `minimal` is a minimal asyncio SigV4 client "
        "(`benchmarks/minimal_s3.py`: keep-alive streams, ssshelf's signer, nothing else)."
        + (
            ""
            if on_ceph(results)
            else " moto closes every connection, so each request also "
            "opens one; its speed is no S3 speed."
        ),
        "",
    ]
    cpu = found.get("cpu", {})
    floor_, base = cpu.get("minimal", {}), cpu.get("aiobotocore", {})

    def ratio(value: float | None, against: float | None) -> str:
        return times(value / against) if value and against else "—"

    rows = []
    for name, label in (
        ("S3Storage", "S3Storage"),
        ("minimal", "minimal asyncio SigV4 client"),
        ("aiobotocore", "raw aiobotocore (default settings)"),
    ):
        figures = cpu.get(name)
        if not figures:
            continue
        request, page = figures.get("request_ms"), figures.get("page_ms")
        rows.append(
            [
                label,
                f"{request:.3f} ms" if request else "—",
                ratio(request, floor_.get("request_ms")),
                ratio(request, base.get("request_ms")),
                f"{page:.1f} ms" if page else "—",
                ratio(page, floor_.get("page_ms")),
                ratio(page, base.get("page_ms")),
            ]
        )
    if rows:
        lines += _table(
            [
                "client",
                "CPU / request",
                "vs minimal",
                "vs aiobotocore",
                "CPU / page of 100",
                "vs minimal",
                "vs aiobotocore",
            ],
            rows,
        )
        lines += [""]
    memory = found.get("memory", [])
    if memory:
        lines += [
            f"Peak memory of a {sizes.get('memory_mib', 0)} MiB put and get above a process "
            "holding the value, as multiples of the value (`benchmarks/s3_memory.py`, each "
            "client in a fresh process; `tracemalloc`'s peak, and the resident size sampled "
            "every millisecond):",
            "",
        ]
        lines += _table(
            ["client", "put", "get", "put (RSS)", "get (RSS)"],
            [
                [
                    m["client"],
                    f"{m['put_extra']:+.3f}{X}",
                    f"{m['get_extra']:+.3f}{X}",
                    f"{m['put_extra_rss']:+.3f}{X}",
                    f"{m['get_extra_rss']:+.3f}{X}",
                ]
                for m in memory
            ],
        )
        lines += [""]
    return lines


def one_run_only(meta: dict[str, Any]) -> bool:
    """Whether every figure of these results came from a single run (no ``--only`` merges)."""
    return int(meta.get("runs", 1)) == 1 and ", then " not in meta["command"]


def _floor_section(results: dict[str, Any]) -> list[str]:
    """ssshelf's page and create at 20 ms beside this server's floor and the goal."""
    found = results.get("floor")
    if not found:
        return []
    delay = found["delay"]
    lines = [
        "### The floor of this server",
        "",
        f"What this Ceph RGW can do at all at {delay * 1000:g} ms a request: the operation's "
        f"dependent round trips {X} {delay * 1000:g} ms plus the time the same requests take "
        "with no added latency when a minimal client sends them (ssshelf's `S3Storage` "
        "called directly: a listing of 100 keys, then the 100 GETs at once; three entry "
        "PUTs together, then the item's). The daemons' CPU (`/proc`, mon + osd + rgw) is "
        f"measured over those runs. Medians of {found['reps']} repetitions, in this run.",
        "",
    ]
    rows = []
    for op in LATENCY_GOALS:
        ours = _op(results, "s3", "ssshelf", op)
        raw, delayed, lib = found["raw"][op], found["raw_delayed"][op], found["ssshelf"][op]
        bound = floor(results, op)
        cpu = raw.get("server_cpu_ms")
        gap = ours["seconds"]["median"] - bound if ours and bound is not None else None
        rows.append(
            [
                OP_LABELS[op],
                ms(ours["seconds"]["median"]) if ours else "—",
                "—" if gap is None else f"{'+' if gap >= 0 else '-'}{ms(abs(gap))}",
                ms(delayed["median"]),
                f"{ms(bound)} = {found['round_trips'][op]} {X} {delay * 1000:g} ms"
                f" + {ms(raw['median'])}",
                f"{LATENCY_GOALS[op] * 1000:.0f} ms",
                ms(lib["median"]),
                "—" if cpu is None else f"{cpu:.0f} ms",
            ]
        )
    lines += _table(
        [
            "operation",
            f"ssshelf at {delay * 1000:g} ms",
            "ssshelf above the floor",
            f"minimal client at {delay * 1000:g} ms",
            f"floor (round trips {X} delay + server time)",
            "goal",
            "ssshelf, no added latency",
            "server CPU (minimal client, no latency)",
        ],
        rows,
    )
    above = [op for op in LATENCY_GOALS if (floor(results, op) or 0.0) > LATENCY_GOALS[op]]
    if above:
        lines += [
            "",
            "Where the floor is above the goal, no client can meet the goal on this server: "
            "the single-node Ceph shares the two cores with the client, so "
            + "; ".join(
                f"the requests of a {OP_LABELS[op]} alone take it"
                f" {ms(found['raw'][op]['median'])}"
                + (
                    f" ({found['raw'][op]['server_cpu_ms']:.0f} ms of its CPU)"
                    if "server_cpu_ms" in found["raw"][op]
                    else ""
                )
                for op in above
            )
            + ". The verdict stays FAIL; the gap between ssshelf's figure and the floor "
            "is what ssshelf itself adds.",
        ]
    cpu = results.get("cpu", {}).get("ssshelf")
    if cpu:
        lines += [
            "",
            f"ssshelf's own client CPU for a page of 100 is {cpu['page_cpu_ms']:.1f} ms "
            "(the client CPU table below); on two cores shared with the server that CPU "
            "is time the server's requests wait for too, which is most of the gap between "
            "ssshelf's page and the floor.",
        ]
    return [*lines, ""]


def _throughput_section(results: dict[str, Any], sizes: dict[str, Any]) -> list[str]:
    """Creates, gets and paging on S3 with no added latency."""
    ours, seed_s3 = s3_medians(results, "ssshelf"), s3_medians(results, "seed")
    if not ours:
        return []
    paged = {lib: paged_entries(results, lib, sizes) for lib in ("ssshelf", "seed")}
    server = "Ceph RGW" if on_ceph(results) else "moto"
    lines = [
        f"## Throughput on S3 ({server}, no added latency)",
        "",
        f"Both libraries create {sizes['create_n']:,} bookmarks with 3 collections each "
        f"(16 items in flight; the batches of successive runs accumulate), get "
        f"{sizes['get_n']:,} of them by pk (64 in flight) and page through the first entries "
        f"of the time-ordered collection, fetching the items: ssshelf {paged['ssshelf']:,} "
        f"entries, the seed {paged['seed']:,} (it fetches a page's items one after another, "
        "so more entries would only lengthen the run), in pages of "
        + " and of ".join(f"{n:,}" for n in sizes["page_sizes"])
        + f", {sizes.get('page_runs', 1)} pass(es) per page size. The paging rows are "
        "therefore per entry and per page, which do not depend on how many entries were "
        "paged. ssshelf creates with `add_items`, which reads each pk's current item in "
        "the same round trip as the entry writes (5 requests an item), the seed with "
        "`add_item` (4 requests, one after another).",
        "",
    ]
    rows = []
    for key in ("create", "get"):
        if key in ours:
            label = (
                f"create {sizes['create_n']:,} (3 collections)"
                if key == "create"
                else f"{sizes['get_n']:,} gets by pk"
            )
            s = seed_s3.get(key)
            rows.append([label, secs(ours[key]), secs(s), times(s / ours[key]) if s else "—"])
    for size in sizes["page_sizes"]:
        key = f"page{size}"
        if key in ours:
            per_ours = ours[key] / paged["ssshelf"]
            s = seed_s3.get(key)
            per_seed = s / paged["seed"] if s else None
            rows.append(
                [
                    f"paging in pages of {size:,}: time per entry",
                    ms(per_ours),
                    ms(per_seed),
                    times(per_seed / per_ours) if per_seed else "—",
                ]
            )
        key = f"each{size}"
        if key in ours:
            s = seed_s3.get(key)
            rows.append(
                [
                    f"one page of {size:,} (median page of the passes)",
                    ms(ours[key]),
                    ms(s),
                    times(s / ours[key]) if s else "—",
                ]
            )
    lines += _table(["scenario", "ssshelf", "seed 0.1.3", "speed-up"], rows)
    return [*lines, ""]


def paged_entries(results: dict[str, Any], lib: str, sizes: dict[str, Any]) -> int:
    """How many entries ``lib`` paged through in the S3 phase."""
    for run in results.get("s3", {}).get(lib, []):
        if "paged" in run:
            return int(run["paged"])
    default = sizes.get("seed_page_n", sizes["page_n"]) if lib == "seed" else sizes["page_n"]
    return int(default)


BULK_LABELS = {
    "manager": "ssshelf `CManager.add_items` on `SQLiteStorage`",
    "plain": "plain `sqlite3.executemany`, 4,000 rows a transaction",
    "put_many": "`SQLiteStorage.put_many` of the same rows (diagnostic)",
    "put": "`SQLiteStorage.put` a row at the manager's group sizes (diagnostic)",
    "plain_groups": "plain sqlite3, one transaction per group commit (diagnostic)",
    "manager_memory": "`add_items` on `InMemoryStorage` (diagnostic: the manager alone)",
}


def _sqlite_bulk_section(results: dict[str, Any]) -> list[str]:
    """SQLite bulk load: items per second, the ratio to plain sqlite3, peak RSS."""
    bulk = results.get("sqlite_bulk")
    if not bulk:
        return []
    runs = ", ".join(
        f"{len(by_variant['manager'].get('runs_items_per_second', [0]))} at {int(n):,} items"
        for n, by_variant in sorted(bulk.items(), key=lambda kv: int(kv[0]))
    )
    lines = [
        "## Bulk load on SQLite",
        "",
        "The same bookmarks with two collections, one of them unique (four objects an "
        "item: the item, two index entries, a reservation), written into a fresh file "
        "with the same table and durability (WAL, `synchronous=FULL`); every variant in a "
        f"process of its own, runs alternating ({runs}), medians; only the writes are timed. "
        "`plain` writes exactly the rows the manager wrote "
        "(`benchmarks/sqlite_bulk.py`).",
        "",
    ]
    rows = []
    for n, by_variant in sorted(bulk.items(), key=lambda kv: int(kv[0])):
        plain = by_variant["plain"]["median_items_per_second"]
        for variant, r in by_variant.items():
            rate = r["median_items_per_second"]
            rows.append(
                [
                    f"{int(n):,}",
                    BULK_LABELS.get(variant, variant),
                    f"{rate:,.0f}",
                    times(rate / plain),
                    f"{r['max_rss_mib']:.0f} MiB",
                ]
            )
    lines += _table(
        ["items", "variant", "items per second", "vs plain sqlite3", "peak RSS of its process"],
        rows,
    )
    for n, by_variant in sorted(bulk.items(), key=lambda kv: int(kv[0])):
        paired = by_variant["manager"].get("paired_ratios_to_plain")
        if paired:
            each = ", ".join(f"{r:.2f}" for r in paired)
            lines += [
                "",
                f"`add_items` over plain sqlite3 at {int(n):,} items, run by run (plain "
                f"measured right after the manager): {each}; median {times(median(paired))}, "
                "the figure of the target (the table's ratio is of the medians).",
            ]
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    """The text of BENCHMARKS.md."""
    meta = results["meta"]
    sizes = meta["sizes"]
    machine = meta["machine"]
    vers = meta["versions"]
    seed = meta.get("seed", {})
    one_run = one_run_only(meta)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{meta['command']}` on {meta['started']}"
        + (", every figure below from this one run" if one_run else "")
        + f" ({'QUICK smoke run: sizes too small to judge' if meta['quick'] else 'full run'}, "
        f"{meta['seconds'] / 60:.1f} min of measuring). Medians of {sizes['runs']} runs "
        f"(single operations: of {sizes['latency_reps']} repetitions). "
        "How it is measured, and what to read into it: [docs/benchmarks.md](docs/benchmarks.md).",
        "",
        "## Machine and versions",
        "",
    ]
    load_start = ", ".join(f"{x:.2f}" for x in machine.get("load_average", []))
    load_end = ", ".join(f"{x:.2f}" for x in meta.get("load_average_end", []))
    lines += _table(
        ["", ""],
        [
            ["CPU", machine["cpu"]],
            ["cores", str(machine["cores"])],
            ["RAM", f"{machine['ram_gib']} GiB"],
            ["OS", machine["os"]],
            ["load average (1, 5, 15 min) at start / end", f"{load_start} / {load_end}"],
            ["Python", vers["python"]],
            ["ssshelf (this tree)", vers["ssshelf"]],
            [
                "seed (PyPI `ssshelf==0.1.3`, own virtualenv)",
                seed.get("versions", {}).get("ssshelf", "not run: " + str(seed.get("error"))),
            ],
            ["aiobotocore / botocore (both)", f"{vers['aiobotocore']} / {vers['botocore']}"],
            ["S3 server", "Ceph RGW (single node, memstore)" if on_ceph(results) else "moto"],
            ["moto (S3 server, single-threaded Python)", vers["moto"]],
        ],
    )
    phases = results.get("phases", {})
    if phases:
        caption = (
            "Phases, all of this one run:"
            if one_run
            else "Phases (each may come from its own `--only` run):"
        )
        lines += ["", caption, ""]
        lines += _table(
            ["phase", "started", "took", "load average at start → end (1 min)"],
            [
                [
                    name,
                    info["started"],
                    f"{info['seconds'] / 60:.1f} min",
                    " → ".join(f"{load[0]:.2f}" for load in info["load_average"] if load),
                ]
                for name, info in sorted(phases.items(), key=lambda kv: kv[1]["started"])
            ],
        )
    lines += ["", "## Targets", ""]
    lines += _table(
        ["target", "measured", "needed", "verdict"],
        [
            [
                t.name,
                t.measured,
                t.threshold,
                f"**{t.verdict}**" + (f" ({t.note})" if t.note else ""),
            ]
            for t in targets(results)
        ],
    )
    lines += [
        "",
        "## Single operations with 20 ms per request",
        "",
        "Latency of one operation (median), requests it made and its dependent round "
        "trips. "
        + (
            "On S3 both libraries talk to the same Ceph RGW, each request waiting 20 ms "
            "in the client process first (an `asyncio.sleep` in a wrapper: ssshelf's "
            "`LatencyStorage`, an equivalent one for the seed), so no proxy's CPU is in "
            "the path"
            if on_ceph(results)
            else "On S3 both libraries talk to the same moto server through the same "
            "proxy, which holds each request 20 ms"
        )
        + "; in memory, ssshelf runs on "
        "`LatencyStorage(InMemoryStorage())` and the seed on its own `InMemoryStorage` "
        "behind an equivalent 20 ms wrapper.",
        "",
        "![latency per operation](docs/benchmarks/latency.png)",
        "",
    ]
    lines += _latency_section(results, "s3")
    lines += _floor_section(results)
    lines += _latency_section(results, "memory")

    lines += _throughput_section(results, sizes)
    rates = overhead_medians(results)
    if rates:
        lines += [
            "## Library overhead: S3Storage vs raw aiobotocore",
            "",
            f"The same {sizes['overhead_n']:,} PUTs, {sizes['overhead_n']:,} GETs, "
            f"{sizes['overhead_list_passes']} listings in pages of {sizes['overhead_list_page']} "
            f"and batched DeleteObjects, {sizes['overhead_conc']} in flight. “raw” uses "
            "the settings S3Storage's aiobotocore client had before it got its own "
            "transport (no `Expect: 100-continue`, no CRC checksums, no retries); “raw, "
            "default config” uses aiobotocore's defaults.",
            "",
        ]
        rows = [
            [
                {
                    "raw": "raw aiobotocore",
                    "storage": "S3Storage",
                    "raw_default": "raw, default config",
                }[k],
                f"{v:,.0f} req/s",
                times(v / rates["raw"]),
            ]
            for k, v in rates.items()
        ]
        lines += _table(["client", "throughput", "vs raw"], rows)
        lines += [""]

    lines += _s3_client_sections(results, sizes)
    lines += _transport_section(results)

    points = scan_points(results, "ssshelf")
    if points:
        seed_points = dict(scan_points(results, "seed"))
        frozen_points = dict(scan_points(results, "ssshelf", "scan_frozen"))
        lines += [
            f"## Full scan in memory (pages of {sizes['scan_page']:,}, items fetched and verified)",
            "",
            "![time per entry vs N](docs/benchmarks/scan.png)",
            "",
        ]
        rows = []
        for n, t in points:
            s = seed_points.get(n)
            f = frozen_points.get(n)
            rows.append(
                [
                    f"{n:,}",
                    f"{secs(t)} ({t / n * 1e6:.1f} µs)",
                    f"{secs(f)} ({f / n * 1e6:.1f} µs)" if f else "—",
                    f"{secs(s)} ({s / n * 1e6:.1f} µs)" if s else "—",
                ]
            )
        lines += _table(
            [
                "N",
                "ssshelf (per entry)",
                "ssshelf, store frozen out of the GC (per entry)",
                "seed 0.1.3 (per entry)",
            ],
            rows,
        )
        fit = sorted(frozen_points.items()) or points
        a, b, r2 = linear_fit(fit)
        lines += [
            "",
            "The in-memory store keeps every item in the benchmark's own heap, and "
            "CPython's cyclic garbage collector walks that heap again and again while a "
            "scan allocates, a cost that can grow with N and is no part of paging (SQLite and "
            "S3 keep the data outside the heap). The third column runs the same scans after "
            "`gc.freeze()`, which takes the stored objects out of the collector's view; "
            f"that is what the linearity target judges. ssshelf fits t = {a * 1000:.0f} ms + "
            f"{b * 1e6:.1f} µs·N there (r² = {r2:.4f}).",
        ]
        stopped = results.get("scan", {}).get("seed", {}).get("scan", {}).get("stopped")
        if stopped:
            lines += ["", f"Seed (one run per size): {stopped}."]
        lines += [""]

    sq = results.get("sqlite", {})
    if sq.get("iter"):
        it = sq["iter"]
        idle = sq.get("idle")
        lines += [
            "## Iterating index entries on SQLite, peak memory",
            "",
        ]
        rows = [
            ["entries iterated (`iter_keys`, pages of 1,000)", f"{it['child']['entries']:,}"],
            ["time", secs(it["child"]["seconds"])],
            ["peak RSS of the iterating process", f"{it['max_rss_kib'] / 1024:.0f} MiB"],
        ]
        if idle:
            rows.append(
                [
                    "peak RSS of a process that only imports ssshelf and aiobotocore",
                    f"{idle['max_rss_kib'] / 1024:.0f} MiB",
                ]
            )
        if sq.get("fill"):
            rows.append(["writing the entries (setup, not measured)", secs(sq["fill"]["seconds"])])
        lines += _table(["", ""], rows)
        lines += [""]

    lines += _sqlite_bulk_section(results)

    errors = results.get("errors", {})
    if errors:
        lines += ["## Errors", ""]
        lines += [f"- `{k}`: {v}" for k, v in errors.items()]
        lines += [""]
    return "\n".join(lines).rstrip() + "\n"


# -- plots --------------------------------------------------------------------


def plot(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``latency.png`` (and ``scan.png``) into ``out_dir``; return the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    models = [m for m in ("s3", "memory") if results.get("latency", {}).get(m)]
    if models:
        fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.2), squeeze=False)
        for ax, model in zip(axes[0], models, strict=True):
            ops = [op for op in OP_LABELS if _op(results, model, "ssshelf", op)]
            y = list(range(len(ops)))
            for offset, lib, color in ((-0.2, "ssshelf", "#2a7ab9"), (0.2, "seed", "#c8553d")):
                values = []
                for op in ops:
                    found = _op(results, model, lib, op)
                    values.append(found["seconds"]["median"] * 1000 if found else 0.0)
                label = "ssshelf" if lib == "ssshelf" else "seed 0.1.3"
                bars = ax.barh(
                    [v + offset for v in y], values, height=0.4, color=color, label=label
                )
                for bar, value in zip(bars, values, strict=True):
                    if value:
                        ax.text(
                            value * 1.05,
                            bar.get_y() + bar.get_height() / 2,
                            f"{value:,.0f}",
                            va="center",
                            fontsize=7,
                        )
            ax.set_yticks(y, [OP_LABELS[op] for op in ops], fontsize=8)
            ax.invert_yaxis()
            ax.set_xscale("log")
            ax.set_xlabel("milliseconds per operation (log scale; lower is better)")
            ax.set_title(model_label(results, model), fontsize=9)
            ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        path = out_dir / "latency.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    points = scan_points(results, "ssshelf")
    if points:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for lib, kind, color, label in (
            ("ssshelf", "scan", "#2a7ab9", "ssshelf"),
            ("ssshelf", "scan_frozen", "#7fb3d9", "ssshelf, store frozen out of the GC"),
            ("seed", "scan", "#c8553d", "seed 0.1.3"),
        ):
            pts = scan_points(results, lib, kind)
            if pts:
                ax.plot(
                    [n for n, _ in pts],
                    [t / n * 1e6 for n, t in pts],
                    "o-",
                    color=color,
                    label=label,
                )
        ax.set_xlabel("entries in the collection (N)")
        ax.set_ylabel("µs per entry (flat = linear; log scale)")
        ax.set_yscale("log")
        ax.set_title("Full scan of an in-memory collection, time per entry", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / "scan.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_report(results: dict[str, Any], markdown_path: Path, plot_dir: Path) -> list[Path]:
    """Write BENCHMARKS.md and the plots; return every path written."""
    written = plot(results, plot_dir)
    markdown_path.write_text(markdown(results))
    return [markdown_path, *written]


def main(argv: list[str]) -> int:
    """``python -m benchmarks.report [RESULTS [REPORT [PLOT_DIR]]]``: rebuild a report.

    Defaults: ``benchmarks/results.json``, ``BENCHMARKS.md``, ``docs/benchmarks``.
    """
    root = Path(__file__).resolve().parent.parent
    source = Path(argv[1]) if len(argv) > 1 else root / "benchmarks" / "results.json"
    output = Path(argv[2]) if len(argv) > 2 else root / "BENCHMARKS.md"
    plots = Path(argv[3]) if len(argv) > 3 else root / "docs" / "benchmarks"
    results = json.loads(source.read_text())
    for path in write_report(results, output, plots):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
