"""``python -m benchmarks.run [--quick] [--runs N] [--only PHASE ...]``: measure, then report.

Starts its own S3 server — a single-node Ceph RADOS Gateway when it can
(``scripts/ceph/``; installed when missing and run as root), else moto with
a latency proxy — on 127.0.0.1, prepares the
seed's virtualenv, runs every phase of :mod:`benchmarks.driver` in fresh
processes (the two libraries alternating), prints each target as PASS/FAIL
and writes ``BENCHMARKS.md``, ``docs/benchmarks/*.png`` and
``benchmarks/results.json``.  With ``--only``, the phases run replace theirs
in an existing ``results.json`` and the report covers all of them.  The exit
status is 0 even when a target fails (the report says which); it is 1 only
when a phase itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from . import report, sqlite_bulk
from .config import PHASES, Sizes, sizes_for
from .latency_proxy import LatencyProxy
from .machine import machine_info, versions
from .seed_env import ensure_seed_env
from .servers import CREDENTIALS, CephServer, MotoServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DRIVER = HERE / "driver.py"
WORK = HERE / ".work"
#: Seconds one driver process may take before it is killed.
PHASE_TIMEOUT = 1800
#: Bulk loads of at most this many items take about a second a variant: the
#: machine's drift weighs more on them, so they run at least SHORT_BULK_RUNS times.
SHORT_BULK_LOAD = 20_000
SHORT_BULK_RUNS = 5


class PhaseFailed(RuntimeError):
    """A driver process exited with an error."""


class Runner:
    """Runs the phases and collects their results."""

    def __init__(
        self,
        sizes: Sizes,
        *,
        seed_python: Path | None,
        verbose: bool = True,
        s3_server: str = "auto",
    ) -> None:
        self.sizes = sizes
        #: "ceph", "moto", or "auto" (Ceph RGW when it can be started here).
        self.s3_server = s3_server
        #: Whether the S3 server in use is Ceph RGW (latency then added in-process).
        self.on_ceph = False
        #: The Ceph daemons' PIDs (their CPU is measured by the floor phase).
        self.server_pids: list[int] = []
        self.seed_python = seed_python
        self.verbose = verbose
        self.start = time.monotonic()
        self.results: dict[str, Any] = {"errors": {}}
        self.env = {
            **os.environ,
            **CREDENTIALS,
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "SSSHELF_URL"):
            self.env.pop(name, None)

    @property
    def libs(self) -> list[str]:
        """The libraries measured: ours, and the seed when its environment is ready."""
        return ["ssshelf", "seed"] if self.seed_python else ["ssshelf"]

    def say(self, message: str) -> None:
        """Progress on stderr, with the time since the start."""
        if self.verbose:
            print(f"[{time.monotonic() - self.start:6.0f}s] {message}", file=sys.stderr, flush=True)

    def python_for(self, lib: str) -> Path:
        """The interpreter whose ``ssshelf`` is ``lib``."""
        if lib == "seed":
            assert self.seed_python is not None
            return self.seed_python
        return Path(sys.executable)

    async def drive(self, lib: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Run one driver phase in a fresh process of ``lib``'s interpreter."""
        spec = {**spec, "lib": lib, "tmp": str(WORK)}
        process = await asyncio.create_subprocess_exec(
            str(self.python_for(lib)),
            str(DRIVER),
            json.dumps(spec),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=str(WORK),
        )
        try:
            async with asyncio.timeout(PHASE_TIMEOUT):
                out, err = await process.communicate()
        except TimeoutError:
            raise PhaseFailed(f"{spec['phase']} ({lib}) took over {PHASE_TIMEOUT} s") from None
        finally:
            if process.returncode is None:  # timed out, cancelled or interrupted: stop it
                process.kill()
                await process.wait()
        if process.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-12:]
            raise PhaseFailed(f"{spec['phase']} ({lib}) failed:\n" + "\n".join(tail))
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    def failed(self, where: str, exc: Exception) -> None:
        """Record a failed phase and go on with the others."""
        self.results["errors"][where] = str(exc).splitlines()[0][:500]
        self.say(f"ERROR in {where}: {exc}")

    # -- phases ---------------------------------------------------------------

    async def phase_s3(self, endpoint: str) -> None:
        s = self.sizes
        out: dict[str, list[dict[str, Any]]] = {lib: [] for lib in self.libs}
        create_runs = max(s.runs, -(-s.page_n // s.create_n))
        steps = [(run, {"create": True, "get": run < s.runs}) for run in range(create_runs)]
        steps += [(run, {"page": True}) for run in range(s.page_runs)]
        for step, (run, what) in enumerate(steps):
            for lib in self.libs if step % 2 == 0 else reversed(self.libs):
                spec = {
                    "phase": "s3",
                    "endpoint": endpoint,
                    "bucket": f"bench-{lib}",
                    "run": run,
                    "create_n": s.create_n,
                    "get_n": s.get_n,
                    "page_n": s.page_n if lib == "ssshelf" else s.seed_page_n,
                    "page_sizes": list(s.page_sizes),
                    **what,
                }
                try:
                    result = await self.drive(lib, spec)
                except PhaseFailed as exc:
                    self.failed(f"s3/{lib}/step{step}", exc)
                    continue
                out[lib].append(result)
                done = [
                    f"{name} {result[key]:.1f} s"
                    for name, key in (("create", "create_seconds"), ("gets", "get_seconds"))
                    if key in result
                ]
                done += [
                    f"pages of {k}: {v:.1f} s" for k, v in result.get("page_seconds", {}).items()
                ]
                self.say(f"s3 step {step + 1}/{len(steps)} {lib}: {', '.join(done)}")
        self.results["s3"] = out

    async def phase_latency(self, endpoint: str, proxy: LatencyProxy | None) -> None:
        s = self.sizes
        out: dict[str, dict[str, Any]] = {"s3": {}, "memory": {}}
        for model in ("s3", "memory"):
            for lib in self.libs:
                spec = {
                    "phase": "latency",
                    "model": model,
                    "reps": s.latency_reps,
                    "delay": s.delay,
                    "endpoint": endpoint,
                    "proxy": proxy.url if proxy is not None else "",
                    "inproc": self.on_ceph,
                    "bucket": f"latency-{lib}",
                }
                try:
                    out[model][lib] = await self.drive(lib, spec)
                except PhaseFailed as exc:
                    self.failed(f"latency/{model}/{lib}", exc)
                    continue
                ops = out[model][lib]["ops"]
                summary = ", ".join(
                    f"{op} {v['seconds']['median'] * 1000:.0f} ms/{v['round_trips']:g} rt"
                    for op, v in ops.items()
                )
                self.say(f"latency {model} {lib}: {summary}")
        self.results["latency"] = out

    async def phase_floor(self, endpoint: str) -> None:
        """What the server itself costs for a page of 100 and a create (ssshelf's interpreter)."""
        spec = {
            "phase": "floor",
            "endpoint": endpoint,
            "bucket": "floor",
            "reps": self.sizes.floor_reps,
            "delay": self.sizes.delay,
            "server_pids": self.server_pids,
        }
        try:
            out = await self.drive("ssshelf", spec)
        except PhaseFailed as exc:
            self.failed("floor", exc)
            return
        raw = out["raw"]
        self.say(
            "floor: a minimal client's page of 100"
            f" {raw['page100']['median'] * 1000:.0f} ms, create"
            f" {raw['create']['median'] * 1000:.0f} ms with no added latency"
        )
        self.results["floor"] = out

    async def phase_transport(self, endpoint: str) -> None:
        """S3 clients side by side (``benchmarks/s3_transport.py``): client CPU per request
        and per page of 100; then peak memory of a big put/get beside boto3
        (``benchmarks/s3_memory.py``).  Each in a process of its own."""
        s = self.sizes
        env = {
            **self.env,
            "SSSHELF_TEST_S3_ENDPOINT": endpoint,
            "SSSHELF_TEST_S3_ACCESS_KEY": self.env["AWS_ACCESS_KEY_ID"],
            "SSSHELF_TEST_S3_SECRET_KEY": self.env["AWS_SECRET_ACCESS_KEY"],
        }
        out: dict[str, Any] = {}
        bake_off = [
            "-m", "benchmarks.s3_transport", "--json", "-n", str(s.transport_n),
            "--rounds", str(s.transport_rounds), "--pages", str(s.transport_pages),
            "--clients", "aiobotocore,S3Storage,minimal",
        ]  # fmt: skip
        memory = ["-m", "benchmarks.s3_memory", "--mib", str(s.memory_mib)]
        for name, argv in (("cpu", bake_off), ("memory", memory)):
            try:
                lines = await self._module(argv, env)
            except PhaseFailed as exc:
                self.failed(f"transport/{name}", exc)
                continue
            if name == "cpu":
                out["cpu"] = json.loads(lines[-1])
                cpu = out["cpu"]
                self.say(
                    "transport: client CPU per request "
                    + ", ".join(f"{k} {v['request_ms']:.3f} ms" for k, v in cpu.items())
                )
            else:
                out["memory"] = [json.loads(line) for line in lines if line.startswith("{")]
                self.say(
                    f"transport: {s.memory_mib} MiB put/get, extra memory "
                    + ", ".join(
                        f"{m['client']} +{m['put_extra']:.2f}x/+{m['get_extra']:.2f}x"
                        for m in out["memory"]
                    )
                )
        out["sizes"] = {
            "n": s.transport_n,
            "pages": s.transport_pages,
            "rounds": s.transport_rounds,
            "memory_mib": s.memory_mib,
        }
        self.results["transport"] = out

    async def _module(self, argv: list[str], env: dict[str, str]) -> list[str]:
        """Run ``python argv…`` from the repository root; its stdout lines."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=str(ROOT),
        )
        try:
            async with asyncio.timeout(PHASE_TIMEOUT):
                out, err = await process.communicate()
        except TimeoutError:
            raise PhaseFailed(f"{argv[1]} took over {PHASE_TIMEOUT} s") from None
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-12:]
            raise PhaseFailed(f"{argv[1]} failed:\n" + "\n".join(tail))
        return out.decode().strip().splitlines()

    async def phase_sqlite_bulk(self) -> None:
        """``benchmarks/sqlite_bulk.py``: each variant in a process of its own, alternating."""
        out: dict[str, Any] = {}
        try:
            for n, variants in self.sizes.sqlite_bulk:
                short = n <= SHORT_BULK_LOAD and self.sizes.runs > 1  # not a smoke run
                out[str(n)] = await asyncio.to_thread(
                    sqlite_bulk.measure,
                    n,
                    max(self.sizes.runs, SHORT_BULK_RUNS) if short else self.sizes.runs,
                    WORK / "sqlite_bulk",
                    False,
                    lambda message: self.say(f"sqlite_bulk {message.strip()}"),
                    variants,
                )
        except (RuntimeError, AssertionError, OSError) as exc:
            self.failed("sqlite_bulk", exc)
        self.results["sqlite_bulk"] = out

    async def phase_scan(self) -> None:
        s = self.sizes
        out: dict[str, Any] = {}
        for lib in self.libs:
            spec = {
                "phase": "scan",
                "sizes": list(s.scan_sizes),
                "runs": s.seed_scan_runs if lib == "seed" else s.runs,
                "page_size": s.scan_page,
                "max_seconds": s.seed_scan_max_seconds if lib == "seed" else None,
                "frozen": lib == "ssshelf",
            }
            try:
                out[lib] = await self.drive(lib, spec)
            except PhaseFailed as exc:
                self.failed(f"scan/{lib}", exc)
                continue
            points = ", ".join(
                f"{n}: {v['median']:.2f} s" for n, v in out[lib]["scan"].items() if n.isdigit()
            )
            self.say(f"scan {lib}: {points}")
        self.results["scan"] = out

    async def phase_overhead(self, endpoint: str) -> None:
        s = self.sizes
        runs: list[dict[str, Any]] = []
        orders = [["raw", "storage", "raw_default"], ["storage", "raw", "raw_default"]]
        for run in range(s.runs):
            spec = {
                "phase": "overhead",
                "endpoint": endpoint,
                "bucket": "overhead",
                "run": run,
                "n": s.overhead_n,
                "size": s.overhead_size,
                "conc": s.overhead_conc,
                "list_passes": s.overhead_list_passes,
                "list_page": s.overhead_list_page,
                "order": orders[run % 2],
            }
            try:
                result = await self.drive("ssshelf", spec)
            except PhaseFailed as exc:
                self.failed(f"overhead/run{run}", exc)
                continue
            runs.append(result)
            rates = ", ".join(f"{k} {v['per_second']:.0f} req/s" for k, v in result.items())
            self.say(f"overhead run {run + 1}/{s.runs}: {rates}")
        self.results["overhead"] = runs

    async def phase_cpu(self, endpoint: str) -> None:
        s = self.sizes
        out: dict[str, Any] = {}
        for lib in self.libs:
            spec = {
                "phase": "cpu",
                "endpoint": endpoint,
                "bucket": f"cpu-{lib}",
                "n": s.cpu_n,
                "pages": s.cpu_pages,
            }
            try:
                out[lib] = await self.drive(lib, spec)
            except PhaseFailed as exc:
                self.failed(f"cpu/{lib}", exc)
                continue
            self.say(
                f"cpu {lib}: {out[lib]['get_cpu_ms']:.2f} ms a get,"
                f" {out[lib]['page_cpu_ms']:.1f} ms a page of 100"
            )
        self.results["cpu"] = out

    async def phase_sqlite(self) -> None:
        s = self.sizes
        path = WORK / "iterate.db"
        remove_database(path)
        out: dict[str, Any] = {}
        try:
            out["fill"] = await self.drive(
                "ssshelf", {"phase": "sqlite-fill", "path": str(path), "n": s.sqlite_n}
            )
            self.say(f"sqlite: wrote {s.sqlite_n:,} entries in {out['fill']['seconds']:.1f} s")
            python = str(sys.executable)
            for name, child in (
                ("idle", {"phase": "idle"}),
                ("iter", {"phase": "sqlite-iter", "path": str(path), "page_size": 1000}),
            ):
                argv = [python, str(DRIVER), json.dumps({**child, "tmp": str(WORK)})]
                out[name] = await self.drive("ssshelf", {"phase": "probe", "argv": argv})
            it = out["iter"]
            self.say(
                f"sqlite: iterated {it['child']['entries']:,} entries in"
                f" {it['child']['seconds']:.1f} s, peak RSS {it['max_rss_kib'] / 1024:.0f} MiB"
            )
        except PhaseFailed as exc:
            self.failed("sqlite", exc)
        finally:
            remove_database(path)
        self.results["sqlite"] = out

    async def run(self) -> dict[str, Any]:
        """Every phase in ``sizes.phases``, against one S3 server (Ceph RGW, else moto)."""
        phases = self.sizes.phases
        needs_s3 = any(
            p in phases for p in ("s3", "latency", "floor", "overhead", "cpu", "transport")
        )
        use_ceph = self.s3_server == "ceph" or (self.s3_server == "auto" and CephServer.available())
        ceph = CephServer(WORK) if needs_s3 and use_ceph else None
        server = MotoServer(WORK / "moto.log") if needs_s3 and not use_ceph else None
        proxy: LatencyProxy | None = None
        endpoint = ""
        try:
            if ceph is not None:
                ceph.start()
                endpoint, self.on_ceph = ceph.url, True
                self.env.update(ceph.credentials)
                self.server_pids = list(ceph.daemon_pids().values())
                self.results["s3_server"] = "ceph"
                self.say(f"Ceph RGW on {endpoint}; latency added in the client process")
            if server is not None:
                server.start()
                endpoint = server.url
                proxy = LatencyProxy("127.0.0.1", server.port, self.sizes.delay)
                await proxy.start()
                self.results["s3_server"] = "moto"
                self.say(f"moto on {server.url}, latency proxy on {proxy.url}")
            steps: dict[str, Callable[[], Awaitable[None]]] = {}
            if endpoint:
                steps["s3"] = partial(self.phase_s3, endpoint)
                steps["latency"] = partial(self.phase_latency, endpoint, proxy)
                if self.on_ceph:
                    steps["floor"] = partial(self.phase_floor, endpoint)
                steps["overhead"] = partial(self.phase_overhead, endpoint)
                steps["cpu"] = partial(self.phase_cpu, endpoint)
                steps["transport"] = partial(self.phase_transport, endpoint)
            steps["scan"] = self.phase_scan
            steps["sqlite"] = self.phase_sqlite
            steps["sqlite_bulk"] = self.phase_sqlite_bulk
            for name in PHASES:
                step = steps.get(name)
                if step is None or name not in phases:
                    continue
                began, load, when = time.monotonic(), _load(), datetime.now(UTC)
                await step()
                self.results.setdefault("phases", {})[name] = {
                    "started": when.strftime("%Y-%m-%d %H:%M UTC"),
                    "seconds": time.monotonic() - began,
                    "load_average": [load, _load()],
                }
        finally:
            if proxy is not None:
                await proxy.close()
            if server is not None:
                server.stop()
            if ceph is not None:
                ceph.stop()
        return self.results


def _load() -> list[float]:
    try:
        return list(os.getloadavg())
    except OSError:
        return []


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends the run like Ctrl-C: children and the S3 server are stopped."""
    raise SystemExit(128 + signum)


def merge(previous: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """``fresh`` results over ``previous`` ones, phase by phase (for ``--only`` reruns)."""
    merged = {**previous, **{k: v for k, v in fresh.items() if k in (*PHASES, "s3_server")}}
    merged["phases"] = {**previous.get("phases", {}), **fresh.get("phases", {})}
    kept = {k: v for k, v in previous.get("errors", {}).items() if k.split("/")[0] not in fresh}
    merged["errors"] = {**kept, **fresh.get("errors", {})}
    return merged


def remove_database(path: Path) -> None:
    """Delete an SQLite file and its WAL companions."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of ``python -m benchmarks.run``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--runs", type=int, help="repetitions of each scenario (default 3)")
    parser.add_argument(
        "--page-runs", type=int, help="passes through the S3 entries per page size (default 1)"
    )
    parser.add_argument("--only", nargs="+", choices=PHASES, default=(), help="phases to run")
    parser.add_argument("--no-seed", action="store_true", help="measure ssshelf alone")
    parser.add_argument(
        "--s3-server",
        choices=("auto", "ceph", "moto"),
        default="auto",
        help="the S3 server: Ceph RGW (installed as root when missing) or moto;"
        " auto = Ceph when it can be started here",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="the report (default BENCHMARKS.md; with --quick, benchmarks/.work/quick/)",
    )
    parser.add_argument("--plots", type=Path, help="directory of the plots (docs/benchmarks)")
    parser.add_argument("--results", type=Path, help="raw results (benchmarks/results.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure, report, print the verdicts."""
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_args(arguments)
    quick_dir = WORK / "quick"
    output = args.output or (quick_dir / "BENCHMARKS.md" if args.quick else ROOT / "BENCHMARKS.md")
    plots = args.plots or (quick_dir if args.quick else ROOT / "docs" / "benchmarks")
    saved = args.results or (quick_dir / "results.json" if args.quick else HERE / "results.json")
    sizes = sizes_for(
        quick=args.quick, runs=args.runs, page_runs=args.page_runs, phases=tuple(args.only)
    )
    WORK.mkdir(exist_ok=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    saved.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    machine = machine_info()
    seed: dict[str, Any] = {}
    seed_python: Path | None = None
    if not args.no_seed:
        try:
            env = ensure_seed_env()
            seed = {"versions": env.versions, "error": None}
            seed_python = env.python
        except RuntimeError as exc:
            seed = {"versions": {}, "error": str(exc)}
            print(f"seed not measured: {exc}", file=sys.stderr)
    else:
        seed = {"versions": {}, "error": "--no-seed"}
    runner = Runner(sizes, seed_python=seed_python, s3_server=args.s3_server)
    runner.say(f"{'quick' if args.quick else 'full'} run, phases: {', '.join(sizes.phases)}")
    signal.signal(signal.SIGTERM, _terminate)
    results = asyncio.run(runner.run())
    command = " ".join(["python -m benchmarks.run", *arguments]) if arguments else "make bench"
    meta = {
        "command": command,
        "quick": args.quick,
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.monotonic() - runner.start,
        "sizes": asdict(sizes),
        "machine": machine,
        "load_average_end": _load(),
        "versions": versions(),
        "seed": seed,
        "runs": 1,
    }
    if args.only and not args.quick and saved.exists():
        previous = json.loads(saved.read_text())
        results = merge(previous, results)
        before = previous.get("meta")
        if before and not before.get("quick"):
            meta["command"] = f"{before['command']}, then {command}"
            meta["started"] = before["started"]
            meta["seconds"] += before["seconds"]
            meta["machine"] = before["machine"]
            meta["sizes"] = {**before["sizes"], "phases": PHASES}
            meta["runs"] = before.get("runs", 2) + 1
    results["meta"] = meta
    saved.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    written = report.write_report(results, output, plots)
    print()
    for target in report.targets(results):
        print(f"{target.verdict:4}  {target.name}: {target.measured} (needed {target.threshold})")
    print()
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
