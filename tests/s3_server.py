"""Pytest plugin: a real S3-protocol server on 127.0.0.1 for the suite.

By default the session starts moto's standalone server (``moto_server``
from this virtualenv) on a free port and stops it at the end.  With
``SSSHELF_TEST_S3_ENDPOINT`` set (plus ``SSSHELF_TEST_S3_ACCESS_KEY``,
``SSSHELF_TEST_S3_SECRET_KEY`` and optionally ``SSSHELF_TEST_S3_REGION``) the
suite uses that server instead, e.g. Ceph RGW under ``make test-ceph``.

Fixtures:

* ``s3_endpoint`` (session): where the server is and how to sign for it;
  ``s3_endpoint.storage(bucket, **kwargs)`` builds an ``S3Storage``.
* ``s3_storage_factory``: ``await factory(**kwargs)`` creates a fresh,
  uniquely named bucket and returns an ``S3Storage`` on it; the test closes
  it (the ``storage`` fixture does), and on an external server the bucket is
  emptied and removed after the test.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ssshelf.storages.s3 import S3Storage

MOTO_CREDENTIALS = ("testing", "testing")


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-protocol server the tests may use."""

    url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    #: Not started by the suite (buckets are cleaned up after each test).
    external: bool = False

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``S3Storage(aws_client_kwargs=...)`` (and botocore clients)."""
        return {
            "endpoint_url": self.url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        }

    def storage(self, bucket: str, **kwargs: Any) -> S3Storage:
        """An ``S3Storage`` on ``bucket`` of this server (the bucket is not created)."""
        return S3Storage(bucket, aws_client_kwargs=self.client_kwargs(), **kwargs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: ``moto_server``'s own ``main()``, run by this virtualenv's Python, with two
#: changes.  It serves one request at a time when argv[1] is "serial": the
#: stock server gives each request its own thread, and moto checks
#: ``If-Match`` and stores the object in separate steps, so two racing
#: conditional PUTs can both pass the check (a lost update S3 itself never
#: allows).  And it exits when the test process that started it is gone, so
#: a killed pytest leaves no server behind.
_MOTO_SERVER = """
import os
import sys
import threading
import time

import moto.server
import werkzeug.serving

serial = sys.argv.pop(1) == "serial"
parent = os.getppid()


def run_simple(*args, **kwargs):
    kwargs["threaded"] = not serial
    werkzeug.serving.run_simple(*args, **kwargs)


def exit_with_parent():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


threading.Thread(target=exit_with_parent, daemon=True).start()
moto.server.run_simple = run_simple
moto.server.main(sys.argv[1:])
"""


class MotoServer:
    """moto's standalone server in a child process on 127.0.0.1.

    ``serial`` (the default) handles one request at a time, ``serial=False``
    a thread a request like the stock ``moto_server`` (see
    :data:`_MOTO_SERVER`); ``port`` (default: a free one) is where it listens.
    stop() terminates and reaps the process; it also exits by itself if this
    process dies.
    """

    def __init__(
        self, *, env: dict[str, str] | None = None, serial: bool = True, port: int | None = None
    ) -> None:
        self.serial = serial
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **(env or {})}
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by stop()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        mode = "serial" if self.serial else "threaded"
        self._process = subprocess.Popen(
            [sys.executable, "-c", _MOTO_SERVER, mode, "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env,
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                output = self._output()
                self.stop()
                raise RuntimeError(f"moto_server did not start on {self.url}:\n{output}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def _output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._log.close()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def external_endpoint() -> S3Endpoint | None:
    """The server named by ``SSSHELF_TEST_S3_*``, if any."""
    url = os.environ.get("SSSHELF_TEST_S3_ENDPOINT")
    if not url:
        return None
    try:
        access = os.environ["SSSHELF_TEST_S3_ACCESS_KEY"]
        secret = os.environ["SSSHELF_TEST_S3_SECRET_KEY"]
    except KeyError as missing:
        raise pytest.UsageError(f"SSSHELF_TEST_S3_ENDPOINT is set but {missing} is not") from None
    region = os.environ.get("SSSHELF_TEST_S3_REGION") or "us-east-1"
    return S3Endpoint(url, access, secret, region, external=True)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """The S3 server of this test session (moto, or the external one)."""
    external = external_endpoint()
    if external is not None:
        yield external
        return
    with MotoServer() as server:
        yield S3Endpoint(server.url, *MOTO_CREDENTIALS)


def unique_bucket_name() -> str:
    """A valid, unused bucket name."""
    return f"ssshelf-test-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def s3_storage_factory(
    s3_endpoint: S3Endpoint,
) -> Iterator[Callable[..., Awaitable[S3Storage]]]:
    """``await factory(**S3Storage_kwargs)``: a storage on a new, empty bucket.

    A plain fixture returning an async callable, so that async fixtures
    (``storage`` in conftest) can request it with ``getfixturevalue``.  The
    test closes what it creates; on an external server the buckets are
    emptied and removed afterwards.
    """
    created: list[S3Storage] = []

    async def factory(**kwargs: Any) -> S3Storage:
        storage = s3_endpoint.storage(unique_bucket_name(), **kwargs)
        created.append(storage)
        await storage.create_bucket()
        return storage

    yield factory
    if s3_endpoint.external and created:
        asyncio.run(remove_buckets(s3_endpoint, {storage.bucket for storage in created}))


async def remove_buckets(endpoint: S3Endpoint, buckets: set[str]) -> None:
    """Delete every object of each bucket, then the bucket (directly: no proxy a test set)."""
    for bucket in buckets:
        async with endpoint.storage(bucket, proxies={}) as storage:
            while keys := (await storage.list()).keys:
                await storage.delete_many(keys)
            await storage.delete_bucket()
