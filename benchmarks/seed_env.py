"""The seed's published package, ``ssshelf==0.1.3``, in a virtualenv of its own.

It is imported as ``ssshelf`` too, so it cannot share our environment: it
lives in ``benchmarks/.seed-venv`` (git-ignored) and its scenarios run in a
subprocess with that interpreter.  The seed pins no aiobotocore version;
we install the same aiobotocore as ours so both speak through the same
client code.

How 0.1.3 fares on Python 3.11 (checked when this was written):

* it installs: its ``setup.py`` imports ``setuptools.command.test``, which
  current setuptools still ships as a stub (with a deprecation warning);
* its ``S3Storage.get_s3_client`` calls ``aiobotocore.get_session()``,
  which aiobotocore 1.0 and later no longer have.  The seed accepts a
  ready client (``S3Storage(bucket, s3_client=...)``), so the benchmark
  passes one in and needs no patch;
* everything else it uses (``attrs``, ``six``, ``pygtrie``, ``retrying``)
  still works.  Its ``@retry`` wraps the call that *creates* the request
  coroutine, not the request, so it never retries anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

SEED_VERSION = "0.1.3"
HERE = Path(__file__).resolve().parent
VENV = HERE / ".seed-venv"


@dataclass(frozen=True)
class SeedEnv:
    """A ready seed virtualenv: its interpreter and what is installed in it."""

    python: Path
    versions: dict[str, str]


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_seed_env(venv: Path = VENV, *, python: str = sys.executable) -> SeedEnv:
    """Create (once) and check the seed's virtualenv; raise RuntimeError saying why not."""
    aiobotocore_version = metadata.version("aiobotocore")
    stamp = venv / f".installed-ssshelf-{SEED_VERSION}-aiobotocore-{aiobotocore_version}"
    interpreter = _venv_python(venv)
    if not stamp.exists():
        if not interpreter.exists():
            _run([python, "-m", "venv", str(venv)], "create the seed virtualenv")
        _run(
            [
                str(interpreter),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"ssshelf=={SEED_VERSION}",
                f"aiobotocore=={aiobotocore_version}",
            ],
            f"install ssshelf=={SEED_VERSION} from PyPI",
        )
        stamp.touch()
    probe = (
        "import json, importlib.metadata as m, ssshelf, ssshelf.managers, ssshelf.storages.s3;"
        "print(json.dumps({n: m.version(n) for n in ('ssshelf', 'aiobotocore', 'botocore')}))"
    )
    out = _run([str(interpreter), "-c", probe], f"import ssshelf {SEED_VERSION}")
    versions: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    if versions.get("ssshelf") != SEED_VERSION:
        raise RuntimeError(f"the seed virtualenv holds ssshelf {versions.get('ssshelf')}")
    return SeedEnv(interpreter, versions)


def _run(argv: list[str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise RuntimeError(f"could not {what}: " + "\n".join(tail))
    return result.stdout
