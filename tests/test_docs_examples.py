"""Every Python example of the documentation site runs, and prints what it says.

Each ````python`` block of a page is a program, run by this interpreter in a
fresh directory, with the repository importable (``from examples.bookmarks
import ...``) and no ``SSSHELF_`` or ``AWS_`` variable of the caller's.  It
must exit 0 with nothing on stderr (``-W default`` shows every warning, an
unclosed resource included).  A line ``print(...)  # TEXT`` promises that
the program prints a line matching ``TEXT``, where ``...`` stands for any
text; when a program makes promises, its printed lines must match them in
order, one for one.

An HTML comment on the line before a block (invisible where the page is
shown) changes how it runs:

``<!-- example: continued -->``
    the block continues the program of the block before it (one process);
``<!-- example: S3 test server -->``
    the program runs against the S3 test server: its endpoint, credentials
    and region in the ``AWS_`` variables, and an empty bucket ``my-bucket``
    (also ``SSSHELF_BUCKET``);
``<!-- example: not run, REASON -->``
    the block is not run; ``REASON`` says why (a fragment of a file, a
    signature, the shape of some data).

A page whose examples need more than that has its own runner, named in
:data:`OWN_RUNNERS`.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: The bucket the pages' S3 examples name, created empty for each of them.
EXAMPLE_BUCKET = "my-bucket"

#: Pages whose examples another test runs, in the way the page needs.
OWN_RUNNERS = {
    "docs/cli.md": "tests/test_cli_docs.py",  # a shell session: commands and their output
    "docs/items.md": "tests/test_items_docs.py",
    "docs/blocking.md": "tests/test_blocking.py",
}

_BLOCK = re.compile(
    r"^(?:<!--[ \t]*example:[ \t]*(?P<marker>[^\n]*?)[ \t]*-->\n)?```python\n(?P<code>.*?)^```",
    flags=re.M | re.S,
)
_NOT_RUN = re.compile(r"not run, (?P<reason>\S.*)")


@dataclass
class Program:
    """One program: a block, and the blocks marked as continuing it."""

    page: str
    line: int
    code: str
    on_s3: bool = False

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def read_programs(path: Path, root: Path = ROOT) -> list[Program]:
    """The programs of a page, in order; a marker this module does not know is an error."""
    text = path.read_text()
    page = path.relative_to(root).as_posix()
    programs: list[Program] = []
    previous_ran = False
    for block in _BLOCK.finditer(text):
        marker, code = block["marker"], block["code"]
        line = text.count("\n", 0, block.start("code"))
        if marker is None or marker == "S3 test server":
            programs.append(Program(page, line, code, on_s3=marker is not None))
            previous_ran = True
        elif marker == "continued":
            if not previous_ran:
                raise ValueError(f"{page}:{line}: 'continued' follows no block that runs")
            programs[-1].code += code
        elif _NOT_RUN.fullmatch(marker):
            previous_ran = False
        else:
            raise ValueError(
                f"{page}:{line}: unknown example marker {marker!r}; write 'continued', "
                "'S3 test server' or 'not run, REASON'"
            )
    return programs


def promised_lines(code: str) -> list[re.Pattern[str]]:
    """What the program's commented ``print`` calls say they print."""
    promises = []
    for line in code.splitlines():
        if line.strip().startswith("print(") and "  # " in line:
            text = line.split("  # ", 1)[1].strip()
            promises.append(re.compile(".*".join(re.escape(p) for p in text.split("..."))))
    return promises


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without ``SSSHELF_``/``AWS_`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSSHELF_", "AWS_"))}
    env.update(PYTHONPATH=str(ROOT), AWS_CONFIG_FILE=os.devnull)
    env.update(AWS_SHARED_CREDENTIALS_FILE=os.devnull, **extra)
    return env


def run_program(
    program: Program, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``program`` as the script ``example.py`` in ``cwd``."""
    script = cwd / "example.py"
    script.write_text(program.code)
    return subprocess.run(
        [sys.executable, "-W", "default", str(script)],
        cwd=cwd,
        env=clean_environment(env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def failures(program: Program, done: subprocess.CompletedProcess[str]) -> list[str]:
    """What is wrong with one run of ``program``: an empty list when nothing is."""
    wrong = []
    if done.returncode != 0:
        wrong.append(f"exit status {done.returncode}")
    if done.stderr:
        wrong.append("stderr:\n" + done.stderr)
    promises = promised_lines(program.code)
    printed = done.stdout.splitlines()
    if promises and (
        len(printed) != len(promises)
        or not all(p.fullmatch(line) for p, line in zip(promises, printed, strict=False))
    ):
        wanted = "\n".join(p.pattern for p in promises)
        wrong.append(f"printed:\n{done.stdout}\npromised (as patterns):\n{wanted}")
    return wrong


def site_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


PROGRAMS = [
    program
    for page in site_pages()
    if page.relative_to(ROOT).as_posix() not in OWN_RUNNERS
    for program in read_programs(page)
]


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_example_runs_and_prints_what_it_says(
    program: Program, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env: dict[str, str] = {}
    if program.on_s3:
        env = example_bucket(request)
    done = run_program(program, tmp_path, env)
    wrong = failures(program, done)
    assert not wrong, f"{program.name}:\n" + "\n".join(wrong)


def example_bucket(request: pytest.FixtureRequest) -> dict[str, str]:
    """An empty ``my-bucket`` on the S3 test server (removed after the test), and
    the environment that names it."""
    from .conftest import BACKENDS
    from .s3_server import remove_buckets

    if "s3" not in BACKENDS:
        pytest.skip("S3 backend not selected")
    endpoint: Any = request.getfixturevalue("s3_endpoint")

    async def create() -> None:
        async with endpoint.storage(EXAMPLE_BUCKET) as storage:
            await storage.create_bucket()

    asyncio.run(create())
    request.addfinalizer(lambda: asyncio.run(remove_buckets(endpoint, {EXAMPLE_BUCKET})))
    return {
        "AWS_ENDPOINT_URL": endpoint.url,
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        "AWS_DEFAULT_REGION": endpoint.region,
        "SSSHELF_BUCKET": EXAMPLE_BUCKET,
    }


def test_pages_with_their_own_runner_are_run_by_it() -> None:
    for page, runner in OWN_RUNNERS.items():
        assert (ROOT / page).exists(), page
        assert Path(page).name in (ROOT / runner).read_text(), (page, runner)


def test_every_concept_page_has_examples_that_run() -> None:
    concepts = sorted(p.relative_to(ROOT).as_posix() for p in DOCS.glob("concepts/*.md"))
    assert len(concepts) >= 9
    assert set(concepts) <= {p.page for p in PROGRAMS}


def test_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nx = 1\n```\n\n<!-- example: continued -->\n```python\nprint(x)  # 1\n```\n"
        "<!-- example: not run, a fragment -->\n```python\n...\n```\n"
        "<!-- example: S3 test server -->\n```python\ny = 2\n```\n"
    )
    programs = read_programs(page, tmp_path)
    assert [(p.line, p.code, p.on_s3) for p in programs] == [
        (1, "x = 1\nprint(x)  # 1\n", False),
        (14, "y = 2\n", True),
    ]
    for bad in ("<!-- example: not run -->", "<!-- example: skip -->"):
        page.write_text(f"{bad}\n```python\nx = 1\n```\n")
        with pytest.raises(ValueError, match="unknown example marker"):
            read_programs(page, tmp_path)
    page.write_text("<!-- example: continued -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="follows no block that runs"):
        read_programs(page, tmp_path)


def test_promises_are_checked(tmp_path: Path) -> None:
    program = Program("page.md", 1, 'print("a 1 b")  # a ... b\nprint("c")  # d\n')
    assert failures(program, run_program(program, tmp_path)) != []
    program.code = 'print("a 1 b")  # a ... b\nprint("d")  # d\n'
    assert failures(program, run_program(program, tmp_path)) == []
    program.code = "import warnings\nwarnings.warn('careful', DeprecationWarning)\n"
    assert any("careful" in f for f in failures(program, run_program(program, tmp_path)))
