"""Issue 17: the simulation looks where it did not, and finds cases 1, 2, 3 and 5.

Each ``test_case_*`` replays seeds that break an invariant on the write
protocol as it was when the widening came (``docs/simulation.md``, "Issue 17:
where the simulation did not look"); they are expected to fail until the
protocol change lands, then to pass (the marks go).  The other tests show
that each new profile stresses what it says.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ssshelf.testing.sim.report import failure_report
from ssshelf.testing.sim.run import RunResult, run_schedule
from ssshelf.testing.sim.schedule import PROFILES, FaultRates, draw
from ssshelf.testing.sim.store import Request

WIDENED = ("long-history", "bulk-split", "overload", "untrue-errors")


def replay(profile: str, seed: int) -> RunResult:
    result = run_schedule(draw(seed, profile))
    assert result.ok, failure_report(result, trace=False)
    return result


@pytest.mark.parametrize("seed", [137, 369, 30])
def test_case_1_a_removal_settles_right_after_8_writes_on_top(seed: int) -> None:
    # 137: at-most-once (removed twice, the acknowledged update between lost);
    # 369: I2-failed (remove_item(if_version) raised ConflictError yet removed);
    # 30: precision (remove_item answered False though its removal took effect).
    # (Each also shows precision: OutcomeUnknown of writes whose commit was
    # never sent, their round one having met a lost answer.)
    replay("long-history", seed)


@pytest.mark.parametrize("seed", [535, 19, 47])
def test_case_2_a_split_bulk_commit_keeps_what_committed(seed: int) -> None:
    # 535: I4 (a single write takes a committed item's value), I2-settled, I3;
    # 19: I2-settled (committed items lose their entries); 47: also listing-once.
    replay("bulk-split", seed)


@pytest.mark.parametrize("seed", [0, 6])
def test_case_3_writes_slow_down_under_overload(seed: int) -> None:
    # 0: OutcomeUnknown for a commit that was never sent (given up in the queue);
    # 6: "took longer than its commit window" spent in the client's queue.
    replay("overload", seed)


@pytest.mark.parametrize("seed", [0, 22, 49])
def test_case_5_every_error_is_true(seed: int) -> None:
    # 0: AlreadyExistsError while repair purged the tombstone, no item existed;
    # 22: add_items blames item #0 for its sibling's UniqueViolation;
    # 49: put_many refuses two claims of one value: legal input refused.
    replay("untrue-errors", seed)


# -- what each widened profile stresses -------------------------------------------


def test_the_widened_profiles_are_registered_and_precise() -> None:
    for name in WIDENED:
        assert name in PROFILES
        assert all(draw(seed, name).precise for seed in range(5))
    assert all(draw(seed, name).precise for seed in range(5) for name in ("random", "bulk"))


def fingerprint(name: str, seed: int) -> str:
    """A run's whole trace and violations, hashed."""
    result = run_schedule(draw(seed, name))
    text = "\n".join(result.trace.lines()) + repr([v.describe() for v in result.violations])
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_widened_seed_replays_in_another_process_with_other_string_hashes() -> None:
    here = [fingerprint(name, 3) for name in WIDENED]
    code = (
        "from tests.test_sim_widened import WIDENED, fingerprint\n"
        "for name in WIDENED:\n"
        "    print(fingerprint(name, 3))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONHASHSEED": "4321"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.split() == here


def test_long_history_has_ten_writers_of_one_item_whose_answers_are_held() -> None:
    for seed in range(20):
        params = draw(seed, "long-history")
        assert sum(a.role == "writer" for a in params.actors) >= 10
        assert params.pks == 1 and params.faults.hold_answer > 0
        assert params.timing.hold_max >= 0.5


def _requests(result: RunResult) -> dict[int, Request]:
    return {e[3]: e[5] for e in result.trace.events if e[2] == "send"}


def _applied(result: RunResult) -> list[tuple[float, int, object]]:
    """(time, request number, result) of every request the store applied."""
    return [(e[0], e[3], e[4]) for e in result.trace.events if e[2] == "applied"]


def test_long_history_lands_eight_writes_while_a_removal_waits_for_its_answer() -> None:
    """Case 1's interleaving is reached: a removal's tombstone lands, its
    answer is held, and eight or more writes of the item land meanwhile."""
    for seed in range(120):
        result = run_schedule(draw(seed, "long-history"))
        requests = _requests(result)
        writes = [
            at
            for at, number, answer in _applied(result)
            if isinstance(answer, str) and requests[number].key == "sim/items/p0"
        ]
        for op in result.history.ops:
            if op.kind != "remove_item" or not any(f.endswith(" hold") for f in op.faults):
                continue
            landed = [at for _, at, kind in op.effects if kind == "removed"]
            assert op.ended is not None
            if landed and sum(landed[0] < at < op.ended for at in writes) >= 8:
                return
    raise AssertionError("no removal's answer was held across 8 writes in 120 seeds")


def test_bulk_split_commits_one_load_over_several_requests_and_refuses_some() -> None:
    limits: Counter[int] = Counter()
    split = refused = 0
    for seed in range(15):
        params = draw(seed, "bulk-split")
        assert params.quirks.put_many
        limits[params.quirks.max_put_batch] += 1
        result = run_schedule(params)
        commits: Counter[str] = Counter()
        for event in result.trace.events:
            if event[2] != "send" or event[5].kind != "put_many":
                continue
            if all(p.key.startswith("sim/items/") for p in event[5].puts):
                commits[event[4]] += 1
                refused += event[6] == "refuse"
        split += any(n > 1 for n in commits.values())
    assert split >= 5 and refused >= 1
    assert len(limits) >= 4 and min(limits) <= 3  # small limits among them


def test_overload_bursts_outlast_a_commit_window() -> None:
    """Bursts ask more of their client than it can send within one commit
    window: most bursts' writes take longer than half the lease, all told
    (they wait to be admitted, not in the client's queue), and none fails."""
    outlasting = 0
    for seed in range(5):
        params = draw(seed, "overload")
        assert params.faults == FaultRates(reorder=params.faults.reorder)  # no fault at all
        assert all(a.slots is not None and a.slots <= 4 for a in params.actors)
        result = run_schedule(params)
        bursts = [op for op in result.history.ops if op.kind in ("add_item", "create_item")]
        assert len(bursts) >= 8
        spans = [op.ended - op.invoked for op in bursts if op.ended is not None]
        outlasting += max(spans) > params.lease / 2
        assert not result.violations
    assert outlasting >= 3


def test_untrue_errors_repairs_beside_creates_and_removes() -> None:
    kinds: Counter[str] = Counter()
    for seed in range(5):
        params = draw(seed, "untrue-errors")
        assert params.lease <= 2 and any(a.role == "maintenance" for a in params.actors)
        kinds.update(op.kind for op in run_schedule(params).history.ops)
    assert kinds["repair"] >= 10 and kinds["create_item"] >= 10 and kinds["remove_item"] >= 5
    assert kinds["add_items"] >= 3


def test_settings_vary_per_actor_in_the_widened_profiles() -> None:
    seen: dict[str, set[object]] = {"bulk_batch": set(), "max_concurrency": set()}
    for seed in range(20):
        for actor in draw(seed, "bulk-split").actors:
            for name, values in seen.items():
                values.add(getattr(actor, name))
    assert len(seen["bulk_batch"]) >= 4 and None in seen["bulk_batch"]
    assert len(seen["max_concurrency"]) >= 4 and 1 in seen["max_concurrency"]
    leases = {draw(seed, name).lease for seed in range(20) for name in WIDENED}
    assert {1.0, 2.0, 5.0, 30.0} <= leases
