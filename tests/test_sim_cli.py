"""``python -m ssshelf.testing.sim``: batches end with one line, seeds replay with traces."""

from __future__ import annotations

import re

import pytest

from ssshelf.testing.sim.__main__ import main
from ssshelf.testing.sim.batch import run_batch
from ssshelf.testing.sim.run import run_schedule
from ssshelf.testing.sim.schedule import PROFILES, draw

LAST_LINE = re.compile(r"^sim: (\d+) schedules, (\d+) violations$")


def last_line(text: str) -> re.Match[str]:
    found = LAST_LINE.match(text.strip().splitlines()[-1])
    assert found is not None, text[-500:]
    return found


def test_a_batch_ends_with_the_count_line_and_the_matching_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--seeds", "6", "--start", "3"])
    out = capsys.readouterr().out
    line = last_line(out)
    assert int(line.group(1)) == 6
    failures = [s for s in range(3, 9) if not run_schedule(draw(s)).ok]
    assert int(line.group(2)) == len(failures)
    assert code == (1 if failures else 0)
    for seed in failures:
        assert f"seed {seed} [random]" in out
        assert f"--seed {seed} --profile random --trace" in out
    assert "schedules/s" in out


def test_every_profile_runs_with_all(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--seeds", "1", "--profile", "all", "--quiet"])
    assert int(last_line(capsys.readouterr().out).group(1)) == len(PROFILES)


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown profile 'nope'"):
        main(["--seeds", "1", "--profile", "nope"])


def _first(seeds: range, *, ok: bool) -> int | None:
    return next((s for s in seeds if run_schedule(draw(s)).ok == ok), None)


def test_replaying_a_failing_seed_prints_params_violations_and_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed = _first(range(200), ok=False)
    if seed is None:
        pytest.skip("no failing seed left among the first 200")
    assert main(["--seed", str(seed), "--trace"]) == 1
    out = capsys.readouterr().out
    assert f"seed {seed} (profile random)" in out
    assert "store quirks:" in out and "faults:" in out
    assert re.search(r"\[[\w-]+\] at \d+\.\d+: ", out)
    assert " fate=" in out and " invoke " in out
    assert last_line(out).group(0) == "sim: 1 schedules, 1 violations"


def test_replaying_a_passing_seed_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    seed = _first(range(200), ok=True)
    assert seed is not None
    assert main(["--seed", str(seed), "--trace-lines", "5"]) == 0
    out = capsys.readouterr().out
    assert "earlier lines not shown" in out
    assert last_line(out).group(0) == "sim: 1 schedules, 0 violations"


def test_a_shrunk_replay_runs_the_smaller_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--seed", "4", "--profile", "cached", "--keep", "0", "--max-ops", "1"])
    out = capsys.readouterr().out
    assert "w0: writer ops=1" in out and "m8:" not in out


def test_two_worker_processes_find_what_one_finds() -> None:
    seeds = range(20, 36)
    alone = run_batch(seeds, jobs=1)
    shared = run_batch(seeds, jobs=2)
    assert shared.schedules == alone.schedules == 16
    assert [f.seed for f in shared.failures] == [f.seed for f in alone.failures]
    assert [f.violations for f in shared.failures] == [f.violations for f in alone.failures]
