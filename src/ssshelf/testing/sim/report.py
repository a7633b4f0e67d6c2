"""Turning runs into text: a failing seed's report, batch summaries, shrinking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .run import RunResult, run_schedule
from .schedule import PROFILES, ScheduleParams, draw
from .trace import numbered
from .workload import DefaultWorkload, Workload

HAND_MADE = "(a schedule built by hand: rerun it with run_schedule)"


def replay_command(params: ScheduleParams, workload: type[Workload] | None = None) -> str:
    """The command that replays ``params`` (shrunk ones included) with ``workload``."""
    if params.profile not in PROFILES:
        return HAND_MADE
    command = f"python -m ssshelf.testing.sim --seed {params.seed} --profile {params.profile}"
    if workload is not None and workload is not DefaultWorkload:
        command += f" --workload {workload.__module__}:{workload.__qualname__}"
    full = draw(params.seed, params.profile)
    keep: tuple[int, ...] | None = None
    max_ops: int | None = None
    if params.actors != full.actors:
        names = {a.name: i for i, a in enumerate(full.actors)}
        if any(a.name not in names for a in params.actors):
            return HAND_MADE
        keep = tuple(names[a.name] for a in params.actors)
        if keep == tuple(range(len(full.actors))):
            keep = None
        else:
            command += f" --keep {','.join(map(str, keep))}"
        ops = {a.name: a.ops for a in full.actors}
        if any(a.ops < ops[a.name] for a in params.actors):
            max_ops = max(a.ops for a in params.actors)
            command += f" --max-ops {max_ops}"
    if full.shrunk(keep, max_ops) != params:
        return HAND_MADE
    return command + " --trace"


def failure_report(
    result: RunResult,
    *,
    trace: bool,
    trace_lines: int | None = None,
    workload: type[Workload] | None = None,
) -> str:
    """Seed, parameters, the invariants broken and (optionally) the trace."""
    params = result.params
    lines = [
        f"seed {params.seed} (profile {params.profile}): {len(result.violations)} violation(s)"
    ]
    lines += [f"  {line}" for line in params.describe()]
    lines += [f"  {v.describe()}" for v in result.violations]
    if result.loop_errors:
        lines += [f"  event loop reported: {e}" for e in result.loop_errors]
    lines.append(f"  replay: {replay_command(params, workload)}")
    if trace:
        lines.append(f"trace ({len(result.trace.events)} events, {result.requests} requests):")
        lines.append(numbered(result.trace.lines(), trace_lines))
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a worker process sends back about one schedule."""

    seed: int
    profile: str
    violations: tuple[str, ...]
    invariants: tuple[str, ...]
    requests: int
    simulated: float
    replay: str


def summarize(result: RunResult, workload: type[Workload] | None = None) -> Summary:
    return Summary(
        result.params.seed,
        result.params.profile,
        tuple(v.describe() for v in result.violations),
        tuple(dict.fromkeys(v.invariant for v in result.violations)),
        result.requests,
        result.simulated,
        replay_command(result.params, workload),
    )


def shrink(
    params: ScheduleParams,
    workload: Workload | None = None,
    *,
    budget: int = 40,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """A smaller schedule that still breaks the same invariant as ``params``.

    Greedy: drop actors one at a time, then halve every actor's operations,
    keeping each change that still fails the same way; at most ``budget`` runs.
    Fates are drawn afresh for the smaller run, so the smaller trace may show
    another interleaving of the same bug.
    """
    best = run_schedule(params, workload)
    if best.ok:
        return best
    wanted = best.violations[0].invariant
    runs = 1

    def attempt(keep: tuple[int, ...], cap: int | None) -> RunResult | None:
        nonlocal runs
        runs += 1
        result = run_schedule(params.shrunk(keep, cap), workload)
        if not any(v.invariant == wanted for v in result.violations):
            return None
        if progress is not None:
            progress(f"{len(keep)} actors, {len(result.trace.events)} trace events")
        return result

    keep = tuple(range(len(params.actors)))
    cap: int | None = None
    changed = True
    while changed and runs < budget and len(keep) > 1:
        changed = False
        for drop in range(len(keep)):
            if runs >= budget:
                break
            candidate = keep[:drop] + keep[drop + 1 :]
            found = attempt(candidate, cap)
            if found is not None:
                best, keep, changed = found, candidate, True
                break
    cap = max(a.ops for a in best.params.actors)
    while cap > 1 and runs < budget:
        found = attempt(keep, cap // 2)
        if found is None:
            break
        best, cap = found, cap // 2
    return best
