"""docs/items.md: every Python example runs, and prints what its comments say.

A line ``print(...)   # TEXT`` promises that the block prints a line matching
``TEXT``, where ``...`` stands for anything; the block's prints are matched in
order.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "items.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def promised_lines(code: str) -> list[re.Pattern[str]]:
    """What the block's commented ``print`` calls say they print."""
    promises = []
    for line in code.splitlines():
        if line.strip().startswith("print(") and "  # " in line:
            text = line.split("  # ", 1)[1].strip()
            pattern = ".*".join(re.escape(part) for part in text.split("..."))
            promises.append(re.compile(pattern))
    return promises


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_each_example_runs_and_prints_what_it_says(tmp_path: Path, number: int) -> None:
    code = BLOCKS[number]
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    promises = promised_lines(code)
    assert len(printed) == len(promises), (printed, promises)
    for line, promise in zip(printed, promises, strict=True):
        assert promise.fullmatch(line), (line, promise.pattern)
