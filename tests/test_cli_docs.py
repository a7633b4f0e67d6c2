"""docs/cli.md runs: every ``$ command`` prints what the page shows under it.

The page's ``console`` and ``python`` blocks run in order in one bash
session started at the repository root (``python`` blocks through the same
interpreter, on stdin), with ``/tmp/tour`` replaced by a fresh directory.
A command's output (stdout and stderr, as a terminal shows them) must match
the lines under it, where a line ``...`` stands for any number of lines and
``...`` inside a line for any text.

``python -m tests.test_cli_docs`` prints what each command prints now, to
bring the page up to date after a change.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "cli.md"
TOUR = "/tmp/tour"
_MARK = "@@ssshelf-docs-step@@"


@dataclass
class Step:
    """One ``$ command`` (or one python block) and the output the page shows for it."""

    command: str
    expected: list[str]
    python: bool = False


def read_steps(text: str) -> list[Step]:
    steps: list[Step] = []
    for kind, body in re.findall(r"```(console|python)\n(.*?)```", text, flags=re.S):
        if kind == "python":
            steps.append(Step(body, [], python=True))
            continue
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:], []))
            elif steps and not steps[-1].python:
                steps[-1].expected.append(line)
    for step in steps:
        while step.expected and not step.expected[-1].strip():
            step.expected.pop()
    return steps


def script(steps: list[Step], tour: str) -> str:
    lines = ["__status=0"]
    for number, step in enumerate(steps):
        lines.append(f"printf '%s\\n' '{_MARK} {number}'")
        if step.python:
            body = step.command.replace(TOUR, tour)
            lines.append(f"python - <<'PYTHON_BLOCK' 2>&1\n{body}PYTHON_BLOCK")
        else:
            lines.append("( exit $__status )")  # so that `echo $?` sees the command before
            lines.append(step.command.replace(TOUR, tour) + " 2>&1")
        lines.append("__status=$?")
    return "\n".join(lines) + "\n"


def run_steps(steps: list[Step], directory: Path) -> list[list[str]]:
    """What each step printed, with the directory written back as ``/tmp/tour``."""
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSSHELF_", "AWS_"))}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        COLUMNS="100",
        AWS_CONFIG_FILE=str(directory / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(directory / "no-aws-credentials"),
    )
    done = subprocess.run(
        ["bash", "-c", script(steps, str(directory))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 or done.stdout, done.stderr
    outputs: list[list[str]] = [[] for _ in steps]
    current = -1
    for line in done.stdout.replace(str(directory), TOUR).splitlines():
        if line.startswith(_MARK):
            current = int(line.split()[-1])
        elif current >= 0:
            outputs[current].append(line.rstrip())
    for printed in outputs:
        while printed and not printed[-1]:
            printed.pop()
    return outputs


def matches(expected: list[str], actual: list[str]) -> bool:
    """``actual`` fits ``expected``, where ``...`` stands for any lines or any text."""
    if not expected:
        return not actual
    head, rest = expected[0].rstrip(), expected[1:]
    if head == "...":
        return any(matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    pattern = ".*".join(re.escape(part) for part in head.split("..."))
    return re.fullmatch(pattern, actual[0]) is not None and matches(rest, actual[1:])


def test_every_command_of_the_tour_prints_what_the_page_shows(tmp_path: Path) -> None:
    steps = read_steps(PAGE.read_text())
    assert sum(not s.python for s in steps) >= 25
    outputs = run_steps(steps, tmp_path / "tour")
    wrong = [
        f"$ {step.command}\n--- the page shows:\n" + "\n".join(step.expected)
        + "\n--- it printed:\n" + "\n".join(actual)
        for step, actual in zip(steps, outputs, strict=True)
        if not matches(step.expected, actual)
    ]  # fmt: skip
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
