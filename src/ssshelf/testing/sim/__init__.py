"""A seeded, deterministic simulation of concurrent managers over a simulated store.

One integer seed decides a whole run: the store's quirks, the actors (each its
own manager over its own client), what each of them does, and the fate of
every request (on time, late, reordered, answer lost, refused, the actor
killed).  Time is virtual, so a run of many simulated seconds takes
milliseconds, and the same seed replays the same trace.  The checks hold
the run against the invariants of ``DESIGN.md``; see ``docs/simulation.md``.

::

    from ssshelf.testing.sim import draw, run_schedule

    result = run_schedule(draw(17, "random"))
    for violation in result.violations:
        print(violation.describe())

or from a shell: ``python -m ssshelf.testing.sim --seeds 2000``.
"""

from __future__ import annotations

from .batch import BatchResult, run_batch
from .checks import Violation
from .report import failure_report, replay_command, shrink
from .run import RunResult, run_schedule
from .schedule import PROFILES, ActorSpec, FaultRates, ScheduleParams, Timing, draw
from .scheduler import ActorKilled
from .store import Quirks
from .workload import DefaultWorkload, Range, Workload

__all__ = [
    "PROFILES",
    "ActorKilled",
    "ActorSpec",
    "BatchResult",
    "DefaultWorkload",
    "FaultRates",
    "Quirks",
    "Range",
    "RunResult",
    "ScheduleParams",
    "Timing",
    "Violation",
    "Workload",
    "draw",
    "failure_report",
    "replay_command",
    "run_batch",
    "run_schedule",
    "shrink",
]
