"""Documentation examples run, so none can rot: the README's code and the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def run(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_readme_seed_example_runs_on_s3_as_written(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from .conftest import BACKENDS

    if "s3" not in BACKENDS:
        pytest.skip("S3 backend not selected")
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "README.md has no python example"
    endpoint: Any = request.getfixturevalue("s3_endpoint")
    store = await request.getfixturevalue("s3_storage_factory")()
    try:
        env = {
            "SSSHELF_BUCKET": store.bucket,
            "AWS_ENDPOINT_URL": endpoint.url,
            "AWS_ACCESS_KEY_ID": endpoint.access_key,
            "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
            "AWS_DEFAULT_REGION": endpoint.region,
        }
        for code in blocks:
            done = run(code, env, tmp_path)
            assert done.returncode == 0, done.stderr
        listed = await store.list("")
        assert len(listed.keys) == 2  # the bookmark and its one index entry
    finally:
        await store.close()


def test_demo_runs_twice_on_sqlite(tmp_path: Path) -> None:
    env = {"SSSHELF_URL": f"sqlite:///{tmp_path}/demo.db"}
    first = run((ROOT / "examples" / "bookmarks.py").read_text(), env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "stored 300 bookmarks" in first.stdout
    assert "check: 299 items" in first.stdout and "-> ok" in first.stdout
    assert "is already taken by item 'bm0007'" in first.stdout
    second = run((ROOT / "examples" / "bookmarks.py").read_text(), env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "removed 299 bookmarks left by an earlier run" in second.stdout


def test_demo_reports_a_bad_url_in_one_line(tmp_path: Path) -> None:
    done = run(
        (ROOT / "examples" / "bookmarks.py").read_text(), {"SSSHELF_URL": "nope://x"}, tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("demo failed: unknown storage URL")
