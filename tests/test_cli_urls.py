"""Storage URLs as a person types them: forms, one-line mistakes, credentials kept secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ssshelf.cli import main
from ssshelf.errors import ConfigurationError
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.s3 import S3Storage
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.url import open_storage, redact_url, url_secrets

from .conftest import BACKENDS

SSSHELF = str(Path(sys.executable).with_name("ssshelf"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("s3://AKIA1:wJal%2Fr+Xu@bucket/p", "s3://***@bucket/p"),
        ("s3://bucket/p?secret_key=abc+/d&region=x", "s3://bucket/p?secret_key=***&region=x"),
        (
            "s3://b?access_key=AKIA&secret_key=s&session_token=t",
            "s3://b?access_key=***&secret_key=***&session_token=***",
        ),
        ("s3://b?endpoint=http://K:S@127.0.0.1:9000", "s3://b?endpoint=http://***@127.0.0.1:9000"),
        (
            "s3://bucket/p?endpoint=http://127.0.0.1:9000",
            "s3://bucket/p?endpoint=http://127.0.0.1:9000",
        ),
        ("sqlite:///a@b.db", "sqlite:///a@b.db"),
        ("s3://bucket/pre@fix", "s3://bucket/pre@fix"),
    ],
)
def test_redact_url_masks_credentials_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_url_secrets_are_found_as_written_and_decoded() -> None:
    assert url_secrets("s3://AKIA1:wJal%2Fr@bucket?session_token=t%2Bk") == [
        "wJal%2Fr",
        "wJal/r",
        "AKIA1",
        "t%2Bk",
        "t+k",
    ]
    assert url_secrets("s3://bucket/prefix?region=x") == []


async def test_the_local_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_storage("memory://"), InMemoryStorage)
    forms = {
        "sqlite:///here.db": "here.db",
        "sqlite:///sub/../here.db": "sub/../here.db",
        f"sqlite:///{tmp_path}/there.db": f"{tmp_path}/there.db",  # four slashes: absolute
        f"sqlite://///{tmp_path}/there.db": f"{tmp_path}/there.db",
    }
    (tmp_path / "sub").mkdir()
    for url, path in forms.items():
        store = open_storage(url)
        assert isinstance(store, SQLiteStorage) and store.path == path, url
        await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://relative.db", "write sqlite:///relative.db (relative to the current directory)"),
        ("sqlite:relative.db", "write sqlite:///relative.db"),
        ("sqlite://", "needs three slashes before the path: write sqlite:///path/to/file.db"),
        ("sqlite:///", "names no file; write sqlite:///path/to/file.db"),
        ("nope://x", "unknown storage URL 'nope://x'"),
        ("s3://", "names no bucket; write s3://bucket/optional/prefix"),
        ("s3://K:S@", "names no bucket"),
        (
            "s3://bucket?endpoint=127.0.0.1:5055",
            "storage URL 's3://bucket?endpoint=127.0.0.1:5055': endpoint '127.0.0.1:5055' needs "
            "a scheme; write endpoint=http://127.0.0.1:5055 (or https://)",
        ),
        ("s3://bucket?endpoint=localhost:9000", "write endpoint=http://localhost:9000"),
        ("s3://bucket?endpoint=ftp://host", "write endpoint=http://host"),
        ("s3://b?endpoint=http://K:S@host", "not in the endpoint"),
        ("s3://b?endpoint=http://[::1", "endpoint is not a URL"),
        ("s3://[bucket", "is malformed"),
        ("s3://b?colour=red", "unknown options ['colour']; known: endpoint, region, access_key"),
        ("s3://KEY@b", "credentials go before the bucket as s3://KEY:SECRET@bucket"),
        ("s3://K:S@b?secret_key=S", "gives credentials twice"),
        ("s3://b?access_key=K", "access_key and secret_key go together"),
        ("s3://b?session_token=T", "session_token needs access_key and secret_key"),
    ],
)
def test_mistakes_are_configuration_errors_saying_what_to_write(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_storage(url)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_endpoint_without_a_scheme_is_one_line_on_the_command_line() -> None:
    done = subprocess.run(
        [SSSHELF, "ls", "--url", "s3://bucket?endpoint=127.0.0.1:5055"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "ssshelf: error: storage URL 's3://bucket?endpoint=127.0.0.1:5055': endpoint "
        "'127.0.0.1:5055' needs a scheme; write endpoint=http://127.0.0.1:5055 (or https://)\n"
    )


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIAEXAMPLE:hunter2%2Bsecret@bucket?colour=red",
        "s3://bucket?access_key=AKIAEXAMPLE&secret_key=hunter2+secret&colour=red",
    ],
)
def test_errors_never_echo_credentials(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "--url", url]) == 2
    err = capsys.readouterr().err
    assert "unknown options ['colour']" in err and "***" in err
    assert "hunter2" not in err and "AKIAEXAMPLE" not in err


def test_the_console_masks_secrets_that_reach_it_another_way(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ssshelf.cli.console import Console

    console = Console(secrets=url_secrets("s3://AK:se%2Fcret@bucket"))
    console.error("the server said: bad signature for se/cret (AK)")
    console.note("se%2Fcret")
    assert capsys.readouterr().err == (
        "ssshelf: error: the server said: bad signature for *** (***)\n***\n"
    )


# -- on the S3 test server -------------------------------------------------------------

needs_s3 = pytest.mark.skipif("s3" not in BACKENDS, reason="S3 backend not selected")


@pytest.fixture
async def bucket(s3_storage_factory: object) -> AsyncIterator[S3Storage]:
    storage: S3Storage = await s3_storage_factory()  # type: ignore[operator]
    try:
        yield storage
    finally:
        await storage.close()


def no_aws_environment(home: Path) -> dict[str, str]:
    """An environment in which only a storage URL can supply credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SSSHELF_"))}
    return {
        **env,
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@needs_s3
async def test_credentials_in_the_url_are_used_and_never_shown(
    bucket: S3Storage, s3_endpoint: object, tmp_path: Path
) -> None:
    await bucket.put("a", b"1")
    await bucket.put("b", b"2")
    key, secret = s3_endpoint.access_key, s3_endpoint.secret_key  # type: ignore[attr-defined]
    endpoint = f"endpoint={s3_endpoint.url}&region=us-east-1"  # type: ignore[attr-defined]
    url = f"s3://{key}:{secret}@{bucket.bucket}?{endpoint}"

    def ssshelf(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SSSHELF, *argv],
            env=no_aws_environment(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = ssshelf("ls", "--limit", "1", "--url", url)
    assert (done.returncode, done.stdout) == (0, "a\n"), done.stderr
    assert done.stderr == (
        f"more keys follow: ssshelf ls --limit 1 --url 's3://***@{bucket.bucket}?{endpoint}' "
        "--after a\n"
    )
    as_options = f"s3://{bucket.bucket}?{endpoint}&access_key={key}&secret_key={secret}"
    done = ssshelf("ls", "--json", "--url", as_options)
    assert json.loads(done.stdout) == {"keys": ["a", "b"], "after": None}, done.stderr

    missing = url.replace(bucket.bucket, "no-such-bucket-here")
    done = ssshelf("ls", "--url", missing)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "no-such-bucket-here" in done.stderr
    assert secret not in done.stderr.replace("***", "") and key not in done.stderr

    done = ssshelf("ls", "--url", f"s3://{bucket.bucket}?{endpoint}")
    assert done.returncode == 2, "without the URL's credentials there are none"
