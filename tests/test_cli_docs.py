"""docs/cli.md runs: every ``$ command`` prints what the page shows under it.

The tour starts at the repository root; see :mod:`tests.console_docs` for
how commands are run and matched.  ``python -m tests.test_cli_docs`` prints
what each command prints now, to bring the page up to date after a change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .console_docs import ROOT, matches, mismatches, read_steps, run_steps

PAGE = ROOT / "docs" / "cli.md"


def test_every_command_of_the_tour_prints_what_the_page_shows(tmp_path: Path) -> None:
    steps = read_steps(PAGE.read_text())
    assert sum(not s.python for s in steps) >= 25
    wrong = mismatches(steps, run_steps(steps, tmp_path / "tour"))
    assert not wrong, "\n\n".join(wrong)


def test_matching_with_ellipses() -> None:
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "...", "d"], ["a", "d"])
    assert matches(["x ... y"], ["x 1 2 y"])
    assert not matches(["x ... y"], ["x 1 2 z"])
    assert not matches(["a"], ["a", "b"])
    assert not matches(["a", "b"], ["a"])


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        found = read_steps(PAGE.read_text())
        for step, printed in zip(found, run_steps(found, Path(scratch) / "tour"), strict=True):
            if not step.python:
                print("$ " + step.command)
            print("\n".join(printed))
            print()
