"""What type checkers learn from a typed manager: mypy --strict and pyright
(strict) on the sample programs in tests/typing/ and on docs/items.md's
typed example, and the samples run.

The samples state every expected type with ``assert_type`` and every
expected error with an ignore comment naming it; each checker must report
nothing, so a wrong type, a mistake no longer caught (its ignore becomes
unneeded) or a new error fails.  By hand, from the repository root::

    MYPYPATH=src .venv/bin/mypy --strict tests/typing
    .venv/bin/pyright --pythonpath .venv/bin/python -p tests/typing
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.typing import seed_style, typed_blocking, typed_manager

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "typing"
SAMPLE_FILES = sorted(SAMPLES.glob("*.py"))

# A sample that must fail both checkers twice: a wrong type and an ignore
# that is not needed.  It proves the checks above can fail.
CANARY = """
from typing import assert_type

from tests.typing.models import B1, Bookmarks


async def wrong(m: Bookmarks) -> None:
    assert_type(await m.get_item("b1"), int)
    await m.add_item(B1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
"""


def run_mypy(*paths: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *map(str, paths)],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def pyright_command() -> list[str]:
    """The pyright command, or a skip saying why it cannot run here."""
    pytest.importorskip("pyright", reason="pyright is not installed (pip install -e '.[test]')")
    command = [sys.executable, "-m", "pyright"]
    try:
        done = subprocess.run(
            [*command, "--version"],
            env=pyright_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"pyright is installed but cannot start (it needs Node.js): {exc}")
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        pytest.skip(f"pyright is installed but cannot start (it needs Node.js): {tail}")
    return command


def pyright_env() -> dict[str, str]:
    # No "a newer pyright exists" look-up on each run.
    return {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"}


def run_pyright(command: list[str], *paths: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            *command,
            "--pythonpath",
            sys.executable,
            "-p",
            str(SAMPLES / "pyrightconfig.json"),
            "--outputjson",
            *map(str, paths),
        ],
        cwd=ROOT,
        env=pyright_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright gave no report (exit {done.returncode}): {done.stderr[-2000:]}")
    return report


def pyright_errors(report: dict[str, Any]) -> list[str]:
    found = []
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] == "error":
            where = f"{Path(diagnostic['file']).name}:{diagnostic['range']['start']['line'] + 1}"
            found.append(f"{where}: {diagnostic['message']} ({diagnostic.get('rule')})")
    return found


# -- the checkers ----------------------------------------------------------------------


def test_mypy_strict_accepts_the_samples_and_refuses_their_mistakes() -> None:
    status, out = run_mypy(SAMPLES)
    assert status == 0, out
    assert f"no issues found in {len(SAMPLE_FILES)} source files" in out, out


def test_pyright_strict_accepts_the_samples_and_refuses_their_mistakes() -> None:
    report = run_pyright(pyright_command())
    assert pyright_errors(report) == []
    assert report["summary"]["filesAnalyzed"] >= len(SAMPLE_FILES)


def test_both_checkers_fail_a_wrong_type_and_an_unneeded_ignore(tmp_path: Path) -> None:
    canary = tmp_path / "canary.py"
    canary.write_text(CANARY)

    status, out = run_mypy(canary)
    assert status == 1, out
    assert re.search(
        r'canary.py:8: error: Expression is of type "Bookmark \| None", not "int"', out
    )
    assert re.search(r'canary.py:9: error: Unused "type: ignore" comment', out)
    assert "Found 2 errors" in out, out

    errors = pyright_errors(run_pyright(pyright_command(), canary))
    assert len(errors) == 2, errors
    assert errors[0].startswith('canary.py:8: "assert_type" mismatch'), errors
    assert errors[1].startswith('canary.py:9: Unnecessary "# pyright: ignore" rule'), errors


def test_the_documented_example_passes_both_checkers(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "items.md").read_text()
    section = page.split("\n## Types\n", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    documented = tmp_path / "documented.py"
    documented.write_text(example)

    status, out = run_mypy(documented)
    assert status == 0, out
    assert pyright_errors(run_pyright(pyright_command(), documented)) == []


def test_every_expected_mistake_names_an_error_for_both_checkers() -> None:
    lines = (SAMPLES / "mistakes.py").read_text().splitlines()
    marked = [line for line in lines if re.search(r"\S  # (type|pyright): ignore", line)]
    assert len(marked) >= 19
    for line in marked:
        assert re.search(r"# type: ignore\[[a-z-, ]+\]  # pyright: ignore\[[A-Za-z, ]+\]$", line), (
            line
        )


# -- the samples run --------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'typed.db'}"


async def test_the_typed_manager_sample_runs(url: str) -> None:
    await typed_manager.run(url)
    await typed_manager.untyped_collections_take_the_managers_type(url)


def test_the_typed_blocking_sample_runs(url: str) -> None:
    typed_blocking.run(url)


async def test_the_seed_style_sample_runs(url: str) -> None:
    await seed_style.run(url)
    await seed_style.run_dicts(url)
    await seed_style.run_overriding(url)


def test_the_seed_style_blocking_sample_runs(url: str) -> None:
    seed_style.run_blocking(url)
