"""Issue 9: at least 10,000 seeded schedules of concurrent managers, every run.

The same number of seeds under each profile of ``ssshelf.testing.sim.schedule``
(10,000 schedules in all, rounded up), fanned out over two worker processes,
each checked for precision too (every error true, none from queueing).
``SSSHELF_SIM_SEEDS`` sets the number of seeds per profile instead.

That every schedule runs to its end (no crash of the simulator itself, no
schedule lost) and that none breaks an invariant are both asserted.  (The
write protocol before issue 9's rework failed 2,536 of these schedules, each
of its eight problems among them: ``docs/simulation.md``.)
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from ssshelf.testing.sim.batch import BatchResult, run_batch
from ssshelf.testing.sim.schedule import PROFILES

RUN = list(PROFILES)

TOTAL = 10_000
SEEDS = int(os.environ.get("SSSHELF_SIM_SEEDS", -(-TOTAL // len(RUN))))


@pytest.fixture(scope="module")
def batch() -> BatchResult:
    return run_batch(range(SEEDS), RUN, jobs=2)


def test_every_schedule_runs_to_the_end(batch: BatchResult) -> None:
    assert batch.schedules == SEEDS * len(RUN)
    if "SSSHELF_SIM_SEEDS" not in os.environ:
        assert batch.schedules >= TOTAL
    print(
        f"\n{batch.schedules} schedules in {batch.seconds:.1f} s: "
        f"{batch.per_second:.0f} schedules/s over 2 processes, "
        f"{batch.requests / batch.schedules:.0f} requests each"
    )


def test_no_schedule_breaks_an_invariant(batch: BatchResult) -> None:
    broken = Counter(name for failure in batch.failures for name in failure.invariants)
    first = "\n".join(f"{f.violations[0]}\n    {f.replay}" for f in batch.failures[:20])
    assert not batch.failures, f"{batch.line()}; by invariant {dict(broken)}\n{first}"
