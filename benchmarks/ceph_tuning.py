"""``python -m benchmarks.ceph_tuning``: which Ceph settings cut RGW's cost per request here.

For each candidate (:data:`CANDIDATES`, or the names given on the command
line) a fresh single-node cluster is started with ``scripts/ceph/ceph.conf.in``
plus that candidate's settings (:class:`~benchmarks.servers.CephServer`), and
one client process (this one, through ssshelf's ``S3Storage``, the leanest
client here) measures:

- PUT/s and GET/s of 200-byte objects, 64 in flight (median of ``--passes``
  passes of ``--n`` requests each), and the daemons' CPU per request
  (``/proc/PID/stat`` of mon, osd and rgw);
- ssshelf's page of 100 items and create with 3 collections at 20 ms per
  request (the latency phase of ``benchmarks/driver.py``, medians of 10).

The candidates run in the order given, then again in reverse (``--rounds 2``,
the default), so that a load change on the shared machine does not favour one
of them; the report takes each candidate's median over its rounds.  Results go
to ``benchmarks/.work/ceph_tuning.json`` and a table on stdout; what was kept
is written up in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from . import driver
from .servers import CephServer, CephSettings

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"

#: Every debug subsystem a single-node RGW + memstore OSD + mon logs through.
DEBUG_SUBSYSTEMS = [
    "rgw",
    "rgw_sync",
    "ms",
    "osd",
    "objecter",
    "rados",
    "monc",
    "mon",
    "paxos",
    "auth",
    "asok",
    "objclass",
    "optracker",
    "heartbeatmap",
    "perfcounter",
    "throttle",
    "finisher",
    "context",
    "timer",
    "crush",
    "journal",
    "mgrc",
    "bluestore",
    "filestore",
    "civetweb",
]
DEBUG_OFF: CephSettings = {"global": {f"debug {name}": "0/0" for name in DEBUG_SUBSYSTEMS}}


def _with(extra: CephSettings) -> CephSettings:
    """``DEBUG_OFF`` plus ``extra``."""
    merged = {section: dict(options) for section, options in DEBUG_OFF.items()}
    for section, options in extra.items():
        merged.setdefault(section, {}).update(options)
    return merged


#: Candidate settings by name; ``baseline`` is ``ceph.conf.in`` as it is.
CANDIDATES: dict[str, CephSettings] = {
    "baseline": {},
    "debug_off": DEBUG_OFF,
    "threads8": {"client.rgw.a": {"rgw thread pool size": "8"}},
    "threads16": {"client.rgw.a": {"rgw thread pool size": "16"}},
    "debug_off+threads16": _with({"client.rgw.a": {"rgw thread pool size": "16"}}),
    "debug_off+threads8": _with({"client.rgw.a": {"rgw thread pool size": "8"}}),
    "debug_off+no_crc": _with({"global": {"ms crc data": "false", "ms crc header": "false"}}),
    "debug_off+no_op_tracker": _with({"osd": {"osd enable op tracker": "false"}}),
    "debug_off+async_threads1": _with({"global": {"ms async op threads": "1"}}),
    "debug_off+osd_shards1": _with(
        {"osd": {"osd op num shards": "1", "osd op num threads per shard": "2"}}
    ),
}


async def rates(endpoint: str, server: CephServer, n: int, passes: int) -> dict[str, Any]:
    """PUT/s and GET/s, 64 in flight, and the daemons' CPU per request."""
    from ssshelf.storages.s3 import S3Storage

    bucket = "tuning"
    await driver.ensure_bucket(endpoint, bucket)
    storage = S3Storage(bucket, endpoint_url=endpoint, region=driver.REGION)
    body = b"x" * 200
    out: dict[str, list[float]] = {"put": [], "get": [], "put_cpu_ms": [], "get_cpu_ms": []}
    try:
        await storage.get("warm-up")
        for run in range(passes):
            keys = [f"r{run}/{i:06d}" for i in range(n)]
            for kind in ("put", "get"):
                calls = [
                    (lambda k=k: storage.put(k, body))
                    if kind == "put"
                    else (lambda k=k: storage.get(k))
                    for k in keys
                ]
                cpu, start = server.cpu_seconds(), time.perf_counter()
                await driver.bounded(calls, 64)
                seconds = time.perf_counter() - start
                out[kind].append(n / seconds)
                out[f"{kind}_cpu_ms"].append(1000 * (server.cpu_seconds() - cpu) / n)
    finally:
        await storage.close()
    return {k: statistics.median(v) for k, v in out.items()}


async def latencies(endpoint: str, reps: int) -> dict[str, float]:
    """ssshelf's page of 100 and create (3 collections) at 20 ms a request: medians."""
    spec = {
        "lib": "ssshelf",
        "model": "s3",
        "inproc": True,
        "endpoint": endpoint,
        "bucket": "tuning-latency",
        "reps": reps,
        "delay": 0.020,
    }
    ops = (await driver.phase_latency(spec))["ops"]
    return {op: ops[op]["seconds"]["median"] for op in ("page100", "create")}


def measure(name: str, settings: CephSettings, n: int, passes: int, reps: int) -> dict[str, Any]:
    """Start a cluster with ``settings``, measure, stop it."""
    server = CephServer(WORK, settings)
    server.start()
    try:
        os.environ.update(server.credentials)
        out = asyncio.run(rates(server.url, server, n, passes))
        out.update(asyncio.run(latencies(server.url, reps)))
    finally:
        server.stop()
    return {"name": name, "load": os.getloadavg()[0], **out}


def summary(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each candidate's median of every figure over its rounds."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        by_name.setdefault(sample["name"], []).append(sample)
    return {
        name: {key: statistics.median(s[key] for s in runs) for key in runs[0] if key != "name"}
        for name, runs in by_name.items()
    }


def table(medians: dict[str, dict[str, float]]) -> str:
    """The medians as a markdown table."""
    lines = [
        "| settings | PUT/s | GET/s | server CPU a PUT | server CPU a GET"
        " | page of 100 at 20 ms | create at 20 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in medians.items():
        lines.append(
            f"| {name} | {m['put']:,.0f} | {m['get']:,.0f} | {m['put_cpu_ms']:.2f} ms"
            f" | {m['get_cpu_ms']:.2f} ms | {1000 * m['page100']:.1f} ms"
            f" | {1000 * m['create']:.1f} ms |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ceph_tuning", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"candidates to try: {', '.join(CANDIDATES)}")
    parser.add_argument("--n", type=int, default=2_000, help="requests of each kind a pass")
    parser.add_argument("--passes", type=int, default=3, help="passes of PUTs and GETs")
    parser.add_argument("--reps", type=int, default=10, help="repetitions of each operation")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the candidates")
    parser.add_argument("--json", type=Path, default=WORK / "ceph_tuning.json")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    names = args.names or list(CANDIDATES)
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}; known: {', '.join(CANDIDATES)}")
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    samples = []
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            sample = measure(name, CANDIDATES[name], args.n, args.passes, args.reps)
            print(json.dumps(sample), file=sys.stderr, flush=True)
            samples.append(sample)
    medians = summary(samples)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"samples": samples, "medians": medians}, indent=1) + "\n")
    print(table(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
