"""The README's examples run, so none can rot: both ways in, and the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .test_docs_examples import read_programs, run_program

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def run(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


#: ``datetime.utcnow()``, which the seed's example calls, is deprecated from Python 3.12 on.
_UTCNOW_DEPRECATED = re.compile(r".*DeprecationWarning: datetime\.datetime\.utcnow\(\).*\n.*\n?")


def test_the_readme_shows_both_ways_in_after_the_two_commands() -> None:
    text = README.read_text()
    order = [
        text.index("$ make demo"),
        text.index("$ make test"),
        text.index("## Two ways in"),
        text.index("await bookmark_manager.add_item(bookmark)"),
        text.index("BookmarkManager.sync("),
        text.index("## Concepts"),
    ]
    assert order == sorted(order), order
    assert text.index("```") == text.index("```console\n$ make demo"), "the two commands come first"
    programs = read_programs(README)
    assert len(programs) == 1, "the blocking example continues the seed's"
    assert "asyncio.run(demo())" in programs[0].code and ".sync(" in programs[0].code


async def run_readme_on_s3(request: pytest.FixtureRequest, cwd: Path) -> tuple[Any, int]:
    """The README's program run as written, the seed's part on a fresh bucket of the
    S3 test server: how it ended, and how many objects the bucket then holds."""
    from .conftest import BACKENDS

    if "s3" not in BACKENDS:
        pytest.skip("S3 backend not selected")
    (program,) = read_programs(README)
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
        done = run_program(program, cwd, env)
        return done, len((await store.list("")).keys)
    finally:
        await store.close()


async def test_readme_examples_run_on_s3_as_written(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The seed's example on the S3 test server, then the blocking twin's on SQLite."""
    done, stored = await run_readme_on_s3(request, tmp_path)
    assert done.returncode == 0, done.stderr
    assert stored == 2  # the bookmark and its one index entry
    assert (tmp_path / "bookmarks.db").is_file()  # where the blocking twin wrote


async def test_readme_examples_leave_nothing_unclosed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    done, _ = await run_readme_on_s3(request, tmp_path)
    assert _UTCNOW_DEPRECATED.sub("", done.stderr) == "", done.stderr


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
