"""Command line: ``python -m ssshelf.testing.sim``.

Run N schedules from seed S (the last line is ``sim: N schedules, K
violations``; exit 1 when K > 0)::

    python -m ssshelf.testing.sim --seeds 2000 --start 0 [--profile NAME|all] [--jobs 2]

Replay one seed with its full trace (optionally shrunk first)::

    python -m ssshelf.testing.sim --seed 17 --profile random --trace [--shrink]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .batch import load_workload, run_batch
from .report import Summary, failure_report, shrink
from .run import run_schedule
from .schedule import PROFILES, draw
from .workload import Workload


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ssshelf.testing.sim",
        description="Seeded deterministic simulation of concurrent ssshelf managers.",
    )
    parser.add_argument("--seeds", type=int, default=100, help="how many schedules (default 100)")
    parser.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--seed", type=int, help="replay this one seed")
    parser.add_argument(
        "--profile",
        default="random",
        help=f"schedule profile, or 'all' for each in turn: {', '.join(PROFILES)}",
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--workload",
        help="your own workload, as module:Class (a subclass of ssshelf.testing.sim.Workload)",
    )
    parser.add_argument("--trace", action="store_true", help="print the whole trace")
    parser.add_argument("--trace-lines", type=int, help="print only the last N trace lines")
    parser.add_argument("--shrink", action="store_true", help="look for a smaller failing run")
    parser.add_argument("--keep", help="actors to keep, by index (a shrunk replay)")
    parser.add_argument("--max-ops", type=int, help="at most this many ops per actor")
    parser.add_argument(
        "--quiet", action="store_true", help="batch: no line per failing seed, only the total"
    )
    return parser


def _profiles(name: str) -> list[str]:
    if name == "all":
        return list(PROFILES)
    if name not in PROFILES:
        raise SystemExit(f"unknown profile {name!r}; known: {', '.join(PROFILES)}, all")
    return [name]


def _workload(args: argparse.Namespace) -> type[Workload] | None:
    if args.workload is None:
        return None
    try:
        return load_workload(args.workload)
    except (ImportError, ValueError) as exc:
        raise SystemExit(f"--workload: {exc}") from None


def _replay(args: argparse.Namespace) -> int:
    params = draw(args.seed, _profiles(args.profile)[0])
    workload_class = _workload(args)
    workload = workload_class() if workload_class is not None else None
    if args.keep is not None or args.max_ops is not None:
        keep = tuple(int(i) for i in args.keep.split(",")) if args.keep else None
        params = params.shrunk(keep, args.max_ops)
    if args.shrink:
        result = shrink(params, workload, progress=lambda text: print(f"# {text}", file=sys.stderr))
    else:
        result = run_schedule(params, workload)
    if result.ok:
        print("\n".join(params.describe()))
        if args.trace or args.trace_lines:
            from .trace import numbered

            print(numbered(result.trace.lines(), args.trace_lines))
        print("sim: 1 schedules, 0 violations")
        return 0
    print(
        failure_report(
            result,
            trace=args.trace or bool(args.trace_lines),
            trace_lines=args.trace_lines,
            workload=workload_class,
        )
    )
    print("sim: 1 schedules, 1 violations")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.seed is not None:
        return _replay(args)
    profiles = _profiles(args.profile)

    def show(summary: Summary) -> None:
        if not args.quiet:
            print(f"seed {summary.seed} [{summary.profile}]: {summary.violations[0]}")
            print(f"    replay: {summary.replay}")

    batch = run_batch(
        range(args.start, args.start + args.seeds),
        profiles,
        jobs=args.jobs,
        workload=_workload(args),
        on_failure=show,
    )
    by_invariant: dict[str, int] = {}
    for failure in batch.failures:
        for name in failure.invariants:
            by_invariant[name] = by_invariant.get(name, 0) + 1
    if by_invariant:
        print(
            "failing schedules by invariant: "
            + ", ".join(f"{name} {count}" for name, count in sorted(by_invariant.items()))
        )
    print(
        f"{batch.schedules / max(batch.seconds, 1e-9):.0f} schedules/s over {args.jobs} job(s), "
        f"{batch.requests / max(batch.schedules, 1):.0f} requests and "
        f"{batch.simulated / max(batch.schedules, 1):.1f} simulated s per schedule"
    )
    print(batch.line())
    return 1 if batch.failures else 0


if __name__ == "__main__":
    sys.exit(main())
