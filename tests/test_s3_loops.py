"""S3Storage from any event loop: successive ``asyncio.run`` calls, threads, and exits.

Sync tests on purpose: each makes its own event loops, as a script would.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ssshelf.storages.s3 import S3Storage
from tests.s3_server import S3Endpoint, remove_buckets, unique_bucket_name

pytestmark = pytest.mark.s3

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bucket(s3_endpoint: S3Endpoint) -> Iterator[str]:
    """A fresh bucket, made and (on an external server) removed in loops of its own."""
    name = unique_bucket_name()

    async def create() -> None:
        async with s3_endpoint.storage(name) as admin:
            await admin.create_bucket()

    asyncio.run(create())
    yield name
    if s3_endpoint.external:
        asyncio.run(remove_buckets(s3_endpoint, {name}))


def test_successive_event_loops_share_one_storage(s3_endpoint: S3Endpoint, bucket: str) -> None:
    storage = s3_endpoint.storage(bucket)
    version = asyncio.run(storage.put("k", b"first loop"))
    obj = asyncio.run(storage.get("k"))
    assert obj is not None and obj.data == b"first loop" and obj.version == version
    assert asyncio.run(storage.list()).keys == ["k"]
    assert not storage._loops._states  # each loop's connections went with it
    asyncio.run(storage.close())


def test_threads_with_their_own_loops_share_one_storage(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    storage = s3_endpoint.storage(bucket)
    barrier = threading.Barrier(4)

    def worker(n: int) -> list[str]:
        async def run() -> list[str]:
            barrier.wait()  # all four loops use the storage at once
            await asyncio.gather(
                *(storage.put(f"t{n}/{i}", f"{n}.{i}".encode()) for i in range(10))
            )
            objects = await asyncio.gather(*(storage.get(f"t{n}/{i}") for i in range(10)))
            assert [o.data if o else None for o in objects] == [
                f"{n}.{i}".encode() for i in range(10)
            ]
            return (await storage.list(f"t{n}/")).keys

        return asyncio.run(run())

    with ThreadPoolExecutor(4) as pool:
        listed = list(pool.map(worker, range(4)))
    assert listed == [[f"t{n}/{i}" for i in range(10)] for n in range(4)]
    assert not storage._loops._states
    asyncio.run(storage.close())


def test_close_from_one_loop_closes_what_another_thread_uses(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    storage = s3_endpoint.storage(bucket)
    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_thread() -> None:
        async def run() -> None:
            await storage.put("k", b"v")
            started.set()
            await asyncio.to_thread(release.wait)
            try:
                await storage.get("k")
            except BaseException as exc:
                errors.append(exc)

        asyncio.run(run())

    thread = threading.Thread(target=other_thread)
    thread.start()
    started.wait(30)
    asyncio.run(storage.close())
    release.set()
    thread.join(30)
    assert [type(e).__name__ for e in errors] == ["StorageClosed"]


def run_python(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args, "-c", code],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def s3_env(endpoint: S3Endpoint, bucket: str) -> dict[str, str]:
    return {
        "SSSHELF_BUCKET": bucket,
        "AWS_ENDPOINT_URL": endpoint.url,
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        "AWS_DEFAULT_REGION": endpoint.region,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }


def test_the_seed_readme_example_exits_cleanly_without_close(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    # Run as written (it never closes its storage), with every ResourceWarning shown.
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "S3Storage()" in code and "close" not in code
    done = run_python(code, s3_env(s3_endpoint, bucket), "-W", "always::ResourceWarning")
    assert done.returncode == 0, done.stderr
    for sign in ("nclosed", "ResourceWarning", "Traceback", "Exception ignored"):
        assert sign not in done.stderr, done.stderr


REQUESTS_THEN_EXIT = """
import asyncio, sys
from ssshelf.storages.s3 import S3Storage

storage = S3Storage(max_in_flight=8)

async def main():
    n = sys.argv[1]
    await asyncio.gather(*(storage.put(f"exit/{n}/{i}", b"x" * 200) for i in range(16)))
    await asyncio.gather(*(storage.get(f"exit/{n}/{i}") for i in range(16)))
    # the last requests are still in flight when the program ends
    for i in range(4):
        asyncio.ensure_future(storage.get(f"exit/{n}/{i}"))
    await asyncio.sleep(0)

asyncio.run(main())
"""


def test_requests_then_exit_50_times_in_fresh_interpreters(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    env = s3_env(s3_endpoint, bucket)

    def one(n: int) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-c", REQUESTS_THEN_EXIT, str(n)],
            env={**os.environ, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stderr

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(one, range(50)))
    assert [code for code, _ in outcomes] == [0] * 50, [err for _, err in outcomes if err][:1]
    assert all(err == "" for _, err in outcomes), [err for _, err in outcomes if err][:1]


def test_a_loop_closed_by_hand_does_not_break_the_next_one(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    storage = s3_endpoint.storage(bucket)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(storage.put("k", b"v"))
    loop.close()  # without shutting down its async generators
    obj = asyncio.run(storage.get("k"))
    assert obj is not None and obj.data == b"v"
    asyncio.run(storage.close())


def test_first_use_in_several_loops_resolves_credentials_once(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    storage: S3Storage = s3_endpoint.storage(bucket)
    asyncio.run(storage.put("k", b"v"))
    source = storage._credentials
    asyncio.run(storage.get("k"))
    assert storage._credentials is source and source.resolved
    asyncio.run(storage.close())
