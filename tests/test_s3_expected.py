"""What botocore users rely on, through S3Storage's own transport.

Each test runs against the suite's S3 server (moto in ``make test``, Ceph RGW
in ``make test-ceph``), behind a front started here where the case needs one:
a keep-alive front that closes idle connections, a proxy, a slow reader, a
front that answers a region redirect.  ``tests/test_s3_differential.py`` puts
boto3 through the same cases.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ssshelf.errors import PreconditionFailed, StorageUnavailable
from ssshelf.storages.s3 import RetryPolicy, S3Storage
from tests.fault_proxy import FaultProxy, ThreadedProxy, corrupt
from tests.s3_server import S3Endpoint, remove_buckets, unique_bucket_name

pytestmark = pytest.mark.s3

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01)
IDLE_408 = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
Make = Callable[..., S3Storage]


@pytest.fixture
async def bucket(s3_endpoint: S3Endpoint) -> AsyncIterator[str]:
    """A fresh bucket, created directly (emptied and removed afterwards on an external server)."""
    name = unique_bucket_name()
    async with s3_endpoint.storage(name) as admin:
        await admin.create_bucket()
    yield name
    if s3_endpoint.external:
        await remove_buckets(s3_endpoint, {name})


@pytest.fixture
async def make(s3_endpoint: S3Endpoint, bucket: str) -> AsyncIterator[Make]:
    """``make(endpoint_url=..., **kwargs)``: a storage on ``bucket``, closed after the test."""
    made: list[S3Storage] = []

    def build(**kwargs: Any) -> S3Storage:
        kwargs.setdefault("retries", FAST)
        storage = s3_endpoint.storage(bucket, **kwargs)
        made.append(storage)
        return storage

    yield build
    for storage in made:
        await storage.close()


def methods(proxy: FaultProxy) -> list[str]:
    return [request.method for request in proxy.requests]


# -- 2. a pooled connection is checked before it is reused --------------------------------


@pytest.mark.parametrize("reply", [None, IDLE_408], ids=["closed", "408-then-closed"])
async def test_a_connection_closed_while_idle_is_not_written_into(
    s3_endpoint: S3Endpoint, make: Make, reply: bytes | None
) -> None:
    front = FaultProxy(s3_endpoint.url, keep_alive=True, idle_close=0.2, idle_reply=reply)
    with ThreadedProxy(front):
        storage = make(endpoint_url=front.url)
        await storage.put("k", b"v")
        # The loop is blocked while the front closes the idle connection, so
        # nothing but the check before reuse can notice.
        time.sleep(0.6)  # noqa: ASYNC251 -- blocking the loop is the point
        with pytest.raises(PreconditionFailed):
            await storage.put("k", b"w", if_absent=True)
        assert methods(front) == ["PUT", "PUT"]  # no resend, no read to settle a doubt
        assert front.connections == 2
    obj = await make().get("k")
    assert obj is not None and obj.data == b"v"


async def test_a_kept_alive_connection_is_reused(s3_endpoint: S3Endpoint, make: Make) -> None:
    front = FaultProxy(s3_endpoint.url, keep_alive=True)
    async with front:
        storage = make(endpoint_url=front.url)
        for index in range(5):
            await storage.put(f"k{index}", b"v")
            await storage.get(f"k{index}")
        assert len(front.requests) == 10 and front.connections == 1


# -- 9. the pool bound, and the MD5 of a single-part body ----------------------------------


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "close-each"])
async def test_500_gets_in_flight_never_open_more_sockets_than_the_pool(
    s3_endpoint: S3Endpoint, make: Make, keep_alive: bool
) -> None:
    front = FaultProxy(s3_endpoint.url, keep_alive=keep_alive)
    async with front:
        storage = make(endpoint_url=front.url, max_in_flight=500, max_pool_connections=16)
        await storage.put("k", b"v")
        objects = await asyncio.gather(*(storage.get("k") for _ in range(500)))
        assert all(obj is not None and obj.data == b"v" for obj in objects)
        assert front.max_connections <= 16
        if keep_alive:
            assert front.connections <= 16
        state = storage._loops.get()
        assert state is not None and state.pool._count <= 16


async def test_the_default_pool_bounds_sockets_too(s3_endpoint: S3Endpoint, make: Make) -> None:
    front = FaultProxy(s3_endpoint.url, keep_alive=True)
    async with front:
        storage = make(endpoint_url=front.url, max_in_flight=500)
        await storage.put("k", b"v")
        await asyncio.gather(*(storage.get("k") for _ in range(300)))
        assert front.max_connections <= 64


async def test_a_body_whose_md5_is_not_its_etag_is_rejected(
    s3_endpoint: S3Endpoint, make: Make
) -> None:
    # Cut short with a Content-Length rewritten to match: only the MD5 shows it.
    async with FaultProxy(s3_endpoint.url) as front:
        storage = make(endpoint_url=front.url)
        data = bytes(range(256)) * 4
        version = await storage.put("k", data)
        front.inject(corrupt(100), times=1, when=lambda r: r.method == "GET")
        obj = await storage.get("k")
        assert obj is not None and obj.data == data and obj.version == version
        assert [r.fault is not None for r in front.requests if r.method == "GET"] == [True, False]
        front.inject(corrupt(1000), when=lambda r: r.method == "GET")
        with pytest.raises(StorageUnavailable, match="is corrupt") as info:
            await storage.get("k")
        assert "MD5 is not the ETag" in str(info.value)
