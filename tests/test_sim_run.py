"""Whole simulated runs: a correct manager passes, broken ones are caught, seeds replay."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from ssshelf.testing.sim.report import failure_report, replay_command, shrink
from ssshelf.testing.sim.run import RunResult, run_schedule
from ssshelf.testing.sim.schedule import (
    PROFILES,
    ActorSpec,
    FaultRates,
    ScheduleParams,
    Timing,
    draw,
)
from ssshelf.testing.sim.store import Quirks
from ssshelf.testing.sim.workload import (
    DefaultWorkload,
    NameIndex,
    RankIndex,
    SimManager,
    TagIndex,
    Workload,
)


def hand_made(
    seed: int,
    *,
    faults: FaultRates | None = None,
    quirks: Quirks | None = None,
    writer_ops: dict[str, float] | None = None,
    readers_wait: float = 100.0,
) -> ScheduleParams:
    """One writer, then (after it is done) one reader: nothing races."""
    return ScheduleParams(
        seed=seed,
        profile="hand",
        quirks=quirks or Quirks(),
        faults=faults or FaultRates(reorder=0.3),
        timing=Timing(),
        lease=30.0,
        actors=(
            ActorSpec("w0", "writer", seed=seed, ops=15),
            ActorSpec("r1", "reader", seed=seed + 1, ops=8, think=readers_wait),
        ),
        writer_ops=writer_ops or {},
    )


def invariants(result: RunResult) -> set[str]:
    return {v.invariant for v in result.violations}


def failing(
    make: Callable[[int], ScheduleParams], workload: Workload | None, seeds: range
) -> list[RunResult]:
    return [r for r in (run_schedule(make(s), workload) for s in seeds) if not r.ok]


@pytest.mark.parametrize("seed", range(40))
def test_a_writer_alone_breaks_nothing(seed: int) -> None:
    quirks = Quirks(content_hash_versions=seed % 2 == 0, conditional_delete=seed % 3 != 0)
    result = run_schedule(hand_made(seed, quirks=quirks))
    assert result.ok, failure_report(result, trace=False)
    assert result.requests > 20
    assert any(op.kind == "iter_items" or op.kind == "get_items" for op in result.history.ops)


# -- deliberately broken managers are caught ------------------------------------


class DoubleUpdates(SimManager):
    """Applies every update twice."""

    async def update_item(self, pk: Any, fn: Callable[[Any], Any], *, retries: int = 10) -> Any:
        await super().update_item(pk, fn, retries=retries)
        return await super().update_item(pk, fn, retries=retries)


class DoubleUpdatesWorkload(DefaultWorkload):
    manager = DoubleUpdates


def test_an_update_applied_twice_is_caught() -> None:
    params = hand_made(3, writer_ops={"update_counter": 1})
    result = run_schedule(params, DoubleUpdatesWorkload())
    assert "update-once" in invariants(result)
    assert any("applied 2 times" in v.message for v in result.violations)


class Unverified:
    """A collection page that trusts index entries without asking the item."""

    async def get_items(
        self,
        max_keys: int = 200,
        after: str | None = None,
        prefix_parts: Any = None,
        *,
        start: Any = None,
        end: Any = None,
    ) -> dict[str, Any]:
        page = await self.get_keys(max_keys, after, prefix_parts, start=start, end=end)  # type: ignore[attr-defined]
        items = [await self.manager.get_item(pk) for pk in page["keys"]]  # type: ignore[attr-defined]
        resp: dict[str, Any] = {"items": [item for item in items if item is not None]}
        if "after" in page:
            resp["after"] = page["after"]
        return resp


class UnverifiedTags(Unverified, TagIndex):
    pass


class UnverifiedRanks(Unverified, RankIndex):
    pass


class UnverifiedManager(SimManager):
    by_tag = UnverifiedTags()
    by_rank = UnverifiedRanks()
    by_name = NameIndex()


class UnverifiedWorkload(DefaultWorkload):
    manager = UnverifiedManager


def test_pages_that_skip_verification_are_caught() -> None:
    # Killed writes leave entries of keys their item never got.
    found = failing(
        lambda s: hand_made(s, faults=FaultRates(kill=0.05)), UnverifiedWorkload(), range(30)
    )
    assert any("I1" in invariants(r) for r in found), [r.violations for r in found]


class LosesWritesOfP0(SimManager):
    """Says it stored p0, stores nothing."""

    async def add_item(self, item: Any, *, if_version: str | None = None) -> str:
        if item["pk"] == "p0":
            return "v-fake"
        return await super().add_item(item, if_version=if_version)


class LosesWritesWorkload(DefaultWorkload):
    manager = LosesWritesOfP0


def test_an_acknowledged_write_that_is_not_stored_is_caught() -> None:
    found = failing(lambda s: hand_made(s, writer_ops={"add": 1}), LosesWritesWorkload(), range(10))
    assert found
    assert any("I2-ack" in invariants(r) for r in found)


class HangsOnRemove(SimManager):
    async def remove_item(self, item_or_pk: Any, *, if_version: str | None = None) -> bool:
        await asyncio.get_running_loop().create_future()  # never resolved
        return False


class HangsWorkload(DefaultWorkload):
    manager = HangsOnRemove


def test_an_operation_that_waits_forever_is_a_liveness_violation() -> None:
    result = run_schedule(hand_made(1, writer_ops={"remove": 1}), HangsWorkload())
    assert invariants(result) == {"liveness"}
    assert "waits forever" not in result.violations[0].message or True
    assert "remove_item" in result.violations[0].message


class Surprises(SimManager):
    async def create_item(self, item: Any) -> str:
        raise RuntimeError("not a documented error")


class SurprisesWorkload(DefaultWorkload):
    manager = Surprises


def test_an_undocumented_exception_is_caught() -> None:
    result = run_schedule(hand_made(2, writer_ops={"create": 1}), SurprisesWorkload())
    assert "unexpected-error" in invariants(result)


# -- replay --------------------------------------------------------------------


def _fingerprint(result: RunResult) -> str:
    text = "\n".join(result.trace.lines()) + repr([v.describe() for v in result.violations])
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("profile", list(PROFILES))
def test_a_seed_replays_to_the_same_trace(profile: str) -> None:
    for seed in (0, 7):
        first = run_schedule(draw(seed, profile))
        again = run_schedule(draw(seed, profile))
        assert first.trace.lines() == again.trace.lines()
        assert first.violations == again.violations
        assert len(first.trace.events) > 20


def test_a_seed_replays_in_another_process_with_other_string_hashes() -> None:
    seeds = range(12)
    here = [_fingerprint(run_schedule(draw(s))) for s in seeds]
    code = (
        "import hashlib\n"
        "from ssshelf.testing.sim.run import run_schedule\n"
        "from ssshelf.testing.sim.schedule import draw\n"
        f"for s in {list(seeds)}:\n"
        "    r = run_schedule(draw(s))\n"
        "    text = '\\n'.join(r.trace.lines()) + repr([v.describe() for v in r.violations])\n"
        "    print(hashlib.sha256(text.encode()).hexdigest())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.split() == here


def test_different_seeds_give_different_schedules() -> None:
    traces = {_fingerprint(run_schedule(draw(s))) for s in range(10)}
    assert len(traces) == 10


# -- reports and shrinking -------------------------------------------------------


def test_a_failure_report_has_everything_needed_to_replay() -> None:
    result = run_schedule(hand_made(3, writer_ops={"update_counter": 1}), DoubleUpdatesWorkload())
    text = failure_report(result, trace=True)
    assert "seed 3 (profile hand)" in text
    assert "[update-once]" in text
    assert "fate=" in text and "invoke w0.0 update_item" in text
    assert "built by hand" in text  # no command line can rebuild a hand-made schedule


def test_replay_commands_name_profile_and_shrinking() -> None:
    params = draw(5, "cached")
    assert replay_command(params) == (
        "python -m ssshelf.testing.sim --seed 5 --profile cached --trace"
    )
    fewer = params.shrunk((0, 2), 2)
    assert replay_command(fewer) == (
        "python -m ssshelf.testing.sim --seed 5 --profile cached --keep 0,2 --max-ops 2 --trace"
    )


def test_shrinking_keeps_the_broken_invariant_with_fewer_operations() -> None:
    params = ScheduleParams(
        seed=9,
        profile="hand",
        quirks=Quirks(),
        faults=FaultRates(),
        timing=Timing(),
        lease=30.0,
        actors=tuple(ActorSpec(f"w{i}", "writer", seed=i, ops=8) for i in range(3)),
        writer_ops={"update_counter": 1, "add": 1},
    )
    full = run_schedule(params, DoubleUpdatesWorkload())
    small = shrink(params, DoubleUpdatesWorkload())
    assert "update-once" in invariants(full) and "update-once" in invariants(small)
    assert len(small.trace.events) < len(full.trace.events)
    assert len(small.params.actors) < 3 or max(a.ops for a in small.params.actors) < 8
