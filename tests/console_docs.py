"""Running the console examples of a page: ``$ command`` lines and the output under them.

A page's ``console`` and ``python`` blocks run in order in one bash session
(``python`` blocks through this interpreter, on stdin), with ``/tmp/tour``
replaced by a fresh directory.  A command's output (stdout and stderr, as a
terminal shows them) must match the lines under it, where a line ``...``
stands for any number of lines and ``...`` inside a line for any text.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def run_steps(
    steps: list[Step],
    directory: Path,
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> list[list[str]]:
    """What each step printed (run in ``cwd``), with ``directory`` shown as ``/tmp/tour``.

    The environment has no ``SSSHELF_`` or ``AWS_`` variables but ``env``'s,
    and this interpreter's scripts (``ssshelf``, ``python``) first on ``PATH``.
    """
    bin_dir = str(Path(sys.executable).parent)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SSSHELF_", "AWS_"))}
    clean.update(
        PATH=f"{bin_dir}:{clean.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        AWS_CONFIG_FILE=str(directory / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(directory / "no-aws-credentials"),
        **(env or {}),
    )
    done = subprocess.run(
        ["bash", "-c", script(steps, str(directory))],
        cwd=cwd,
        env=clean,
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


def mismatches(steps: list[Step], outputs: list[list[str]]) -> list[str]:
    """A report for each command whose output does not fit the page."""
    return [
        f"$ {step.command}\n--- the page shows:\n" + "\n".join(step.expected)
        + "\n--- it printed:\n" + "\n".join(actual)
        for step, actual in zip(steps, outputs, strict=True)
        if not matches(step.expected, actual)
    ]  # fmt: skip
