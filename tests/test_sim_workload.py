"""The simulation runs on a user's own manager: the example of docs/simulation.md."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from ssshelf import CManager, Collection, IManager
from ssshelf.testing.sim import (
    ActorSpec,
    FaultRates,
    Quirks,
    Range,
    ScheduleParams,
    Timing,
    Workload,
    draw,
    run_batch,
    run_schedule,
)
from ssshelf.testing.sim.__main__ import main


class ByOwner(Collection):
    def key(self, note: Any) -> Any:
        return (note["owner"], note["day"])


class ByTitle(Collection):
    unique = True

    def key(self, note: Any) -> Any:
        return note["title"]


class Notes(CManager):
    namespace = "notes"
    item_manager = IManager()
    by_owner = ByOwner()
    by_title = ByTitle()


class NotesWorkload(Workload):
    manager = Notes
    pks = ("n1", "n2", "n3")

    def new_item(self, rng: random.Random, pk: str, op_id: str, *, uniques: bool) -> Any:
        title = rng.choice(("todo", "ideas", None)) if uniques else None
        return {
            "pk": pk,
            "owner": rng.choice(("ann", "bob")),
            "day": rng.randint(1, 3),
            "title": title,
            "op": op_id,
        }

    def ranges(self, collection: str) -> list[Range]:
        if collection == "by_owner":
            return [Range(), Range(prefix=("ann",)), Range(start=("bob", 2))]
        return [Range()]

    def unique_values(self, collection: str) -> list[Any]:
        return ["todo", "ideas"] if collection == "by_title" else []


def test_a_lone_writer_of_notes_breaks_nothing() -> None:
    for seed in range(10):
        params = ScheduleParams(
            seed=seed,
            profile="hand",
            quirks=Quirks(),
            faults=FaultRates(reorder=0.3),
            timing=Timing(),
            lease=30.0,
            actors=(
                ActorSpec("w0", "writer", seed=seed, ops=12),
                ActorSpec("r1", "reader", seed=seed, ops=6, think=100.0),
            ),
        )
        result = run_schedule(params, NotesWorkload())
        assert result.ok, [v.describe() for v in result.violations]
        stored = [op for op in result.history.ops if op.kind == "create_item"]
        assert stored or any(op.kind == "add_item" for op in result.history.ops)


def test_every_profile_runs_on_notes() -> None:
    for profile in ("random", "cached", "timeouts", "no-conditional"):
        for seed in range(3):
            result = run_schedule(draw(seed, profile), NotesWorkload())
            assert result.requests > 0
            assert not any(v.invariant == "unexpected-error" for v in result.violations)


def test_notes_over_worker_processes_and_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = run_batch(range(4), ["random"], jobs=2, workload=NotesWorkload)
    assert batch.schedules == 4
    for failure in batch.failures:
        assert "--workload tests.test_sim_workload:NotesWorkload" in failure.replay
    main(["--seeds", "4", "--workload", "tests.test_sim_workload:NotesWorkload", "--quiet"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(rf"sim: 4 schedules, {len(batch.failures)} violations", last)


def test_a_workload_that_is_not_one_is_refused() -> None:
    with pytest.raises(SystemExit, match="not a subclass"):
        main(["--seeds", "1", "--workload", "tests.test_sim_workload:Notes"])
