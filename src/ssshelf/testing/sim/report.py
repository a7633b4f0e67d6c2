"""Turning runs into text: a failing seed's report, batch summaries, shrinking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .run import RunResult, run_schedule
from .schedule import ScheduleParams, draw
from .trace import numbered
from .workload import Workload


def replay_command(params: ScheduleParams) -> str:
    """The command that replays ``params`` (shrunk ones included)."""
    command = f"python -m ssshelf.testing.sim --seed {params.seed} --profile {params.profile}"
    full = draw(params.seed, params.profile)
    if params.actors != full.actors:
        names = {a.name: i for i, a in enumerate(full.actors)}
        kept = [names[a.name] for a in params.actors]
        command += f" --keep {','.join(map(str, kept))}"
        ops = {a.name: a.ops for a in full.actors}
        if any(a.ops < ops[a.name] for a in params.actors):
            command += f" --max-ops {max(a.ops for a in params.actors)}"
    return command + " --trace"


def failure_report(result: RunResult, *, trace: bool, trace_lines: int | None = None) -> str:
    """Seed, parameters, the invariants broken and (optionally) the trace."""
    params = result.params
    lines = [
        f"seed {params.seed} (profile {params.profile}): {len(result.violations)} violation(s)"
    ]
    lines += [f"  {line}" for line in params.describe()]
    lines += [f"  {v.describe()}" for v in result.violations]
    if result.loop_errors:
        lines += [f"  event loop reported: {e}" for e in result.loop_errors]
    lines.append(f"  replay: {replay_command(params)}")
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


def summarize(result: RunResult) -> Summary:
    return Summary(
        result.params.seed,
        result.params.profile,
        tuple(v.describe() for v in result.violations),
        tuple(dict.fromkeys(v.invariant for v in result.violations)),
        result.requests,
        result.simulated,
        replay_command(result.params),
    )


def shrink(
    params: ScheduleParams,
    workload: Workload | None = None,
    *,
    budget: int = 40,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """A smaller schedule that still breaks the same invariant as ``params``.

    Greedy: drop actors one at a time, then cut every actor's operations,
    keeping each change that still fails the same way; at most ``budget`` runs.
    Fates are drawn afresh for the smaller run, so the smaller trace may show
    another interleaving of the same bug.
    """
    best = run_schedule(params, workload)
    if best.ok:
        return best
    wanted = best.violations[0].invariant

    def still_fails(candidate: ScheduleParams) -> RunResult | None:
        nonlocal budget
        budget -= 1
        result = run_schedule(candidate, workload)
        if any(v.invariant == wanted for v in result.violations):
            if progress is not None:
                progress(
                    f"shrunk to {len(candidate.actors)} actors, {len(result.trace.events)} events"
                )
            return result
        return None

    full = draw(params.seed, params.profile)
    index = {a.name: i for i, a in enumerate(full.actors)}
    changed = True
    while changed and budget > 0:
        changed = False
        current = [index[a.name] for a in best.params.actors]
        for drop in range(len(current)):
            if budget <= 0 or len(current) == 1:
                break
            keep = tuple(i for j, i in enumerate(current) if j != drop)
            found = still_fails(full.shrunk(keep, _max_ops(best.params)))
            if found is not None:
                best, changed = found, True
                break
    cap = _max_ops(best.params)
    while cap is not None and cap > 1 and budget > 0:
        cap = cap // 2
        keep = tuple(index[a.name] for a in best.params.actors)
        found = still_fails(full.shrunk(keep, cap))
        if found is None:
            break
        best = found
    return best


def _max_ops(params: ScheduleParams) -> int | None:
    full = draw(params.seed, params.profile)
    ops = {a.name: a.ops for a in full.actors}
    if all(a.ops == ops[a.name] for a in params.actors):
        return None
    return max(a.ops for a in params.actors)
