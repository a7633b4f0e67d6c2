"""The README's console blocks, run as a new user runs them: in a fresh copy of
the repository, from an environment that holds nothing but ``PATH`` and
``HOME`` (no ``SSSHELF_URL``, no AWS settings), each block in a shell of its
own, every command exactly as written.

A command the README shows output for must print that (``...`` standing for
any lines or text, as in :mod:`tests.console_docs`); any other command must
succeed.  Two commands are not run here, and why: ``make test`` is this very
suite, and a command that needs a server the README names but the test cannot
be (AWS, R2) is an ``export`` only, which is run.  The MinIO line runs as
written against an S3 test server listening where the README says MinIO does,
127.0.0.1:9000, with the bucket it names.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssshelf.storages.s3 import S3Storage

from .console_docs import ROOT, matches
from .s3_server import MotoServer

README = ROOT / "README.md"
NOT_RUN = {"make test"}
MINIO = ("127.0.0.1", 9000)


def console_blocks() -> list[list[tuple[str, list[str]]]]:
    """Each ``console`` block of the README: its ``$`` commands and the output shown."""
    blocks = []
    for body in re.findall(r"```console\n(.*?)```", README.read_text(), flags=re.S):
        steps: list[tuple[str, list[str]]] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps and not line.startswith("#"):
                steps[-1][1].append(line)
        blocks.append(steps)
    return blocks


def user_environment() -> dict[str, str]:
    """What a new user's shell holds that matters here: where programs are, and home."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as a fresh clone has it: tracked files (and new ones not
    yet committed), without a virtualenv, a store or build output."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    target = tmp_path_factory.mktemp("fresh") / "ssshelf"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    assert not (target / ".venv").exists() and not (target / "ssshelf.db").exists()
    return target


def run_block(steps: list[tuple[str, list[str]]], cwd: Path) -> list[str]:
    """Run a block's commands in one shell; a report for each that went wrong."""
    wrong = []
    marker = "@@readme-step@@"
    script = "\n".join(
        f"printf '%s\\n' '{marker} {number}'\n{command} 2>&1\necho \"{marker} status $?\""
        for number, (command, _) in enumerate(steps)
        if command.split("#")[0].strip() not in NOT_RUN
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=user_environment(),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    printed: dict[int, list[str]] = {}
    status: dict[int, int] = {}
    current = -1
    for line in done.stdout.splitlines():
        if line.startswith(f"{marker} status "):
            status[current] = int(line.rsplit(" ", 1)[1])
        elif line.startswith(marker):
            current = int(line.split()[-1])
            printed[current] = []
        elif current >= 0:
            printed[current].append(line.rstrip())
    for number, (command, shown) in enumerate(steps):
        if number not in printed:
            continue
        output = printed[number]
        while output and not output[-1]:
            output.pop()
        failed = status.get(number) != 0
        if (shown and not matches(shown, output)) or (not shown and failed):
            wrong.append(
                f"$ {command}\n--- exit status {status.get(number)}; the README shows:\n"
                + "\n".join(shown)
                + "\n--- it printed:\n"
                + "\n".join(output[-30:])
            )
    return wrong


@pytest.fixture(scope="module")
def minio_stand_in() -> Iterator[None]:
    """An S3 test server where the README's MinIO is, with its bucket."""
    with socket.socket() as probe:
        if probe.connect_ex(MINIO) == 0:
            pytest.fail(f"{MINIO[0]}:{MINIO[1]} is taken: the README's MinIO example needs it free")
    with MotoServer(port=MINIO[1]) as server:
        import asyncio

        async def make_bucket() -> None:
            async with S3Storage(
                "my-bucket",
                aws_client_kwargs={
                    "endpoint_url": server.url,
                    "region_name": "us-east-1",
                    "aws_access_key_id": "minioadmin",
                    "aws_secret_access_key": "minioadmin",
                },
            ) as bucket:
                await bucket.create_bucket()

        asyncio.run(make_bucket())
        yield


def test_every_console_block_of_the_readme_runs_as_written(
    clone: Path, minio_stand_in: None
) -> None:
    blocks = console_blocks()
    commands = [command for block in blocks for command, _ in block]
    assert commands[0].startswith("make demo"), "the first command is make demo"
    assert any(c.startswith("make test") for c in commands)
    wrong = [report for block in blocks for report in run_block(block, clone)]
    assert not wrong, "\n\n".join(wrong)
    assert (clone / "ssshelf.db").is_file(), "make demo used the embedded default"
    assert len((clone / "backup.jsonl").read_text().splitlines()) == 299


def test_make_shortener_serves_its_page_on_the_default_store(clone: Path) -> None:
    """``make shortener``, as the README names it: the page on 127.0.0.1:8000."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8000)) == 0:
            pytest.fail("127.0.0.1:8000 is taken: make shortener serves there")
    server = subprocess.Popen(
        ["make", "shortener"],
        cwd=clone,
        env=user_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        page = _wait_for_page("http://127.0.0.1:8000/", server, timeout=300)
        assert "<form" in page and "shorten" in page.lower()
        assert (clone / "ssshelf.db").is_file(), "it runs on the embedded default"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert "shortener on http://127.0.0.1:8000/" in output, output


def _wait_for_page(url: str, server: subprocess.Popen[bytes], *, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.communicate()[0].decode(errors="replace")
            pytest.fail(f"make shortener stopped (status {server.returncode}):\n{output}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                body: str = answer.read().decode()
                return body
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"nothing answered on {url} within {timeout:.0f} s")
