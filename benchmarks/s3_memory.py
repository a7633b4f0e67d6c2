"""Peak memory of a big put and get: S3Storage beside boto3.

Each client is measured in a fresh process, so that one measurement does not
inherit another's heap.  The process first makes a small request (its
connection, imports and buffers are then in place), then:

* **put**: it holds the value and puts it; the peak of memory allocated
  during the put is what the put cost;
* **get**: it gets the value back; the peak allocated during the get, less
  the value itself (which the caller then holds), is what the get cost.

Two ways of counting, both as multiples of the value's size: ``tracemalloc``'s
peak (every Python allocation, exactly: ``put_extra``, ``get_extra``) and the
process's resident size sampled every millisecond by a thread
(``put_extra_rss``, ``get_extra_rss``: kernel and OpenSSL buffers too, but a
peak shorter than a sample can be missed).  One JSON line per client::

    .venv/bin/python -m benchmarks.s3_memory [--mib 100] [--client S3Storage boto3]

The server: ``SSSHELF_TEST_S3_ENDPOINT`` / ``_ACCESS_KEY`` / ``_SECRET_KEY``
(Ceph RGW under ``scripts/ceph/start.sh``), else a moto server started here.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

CLIENTS = ("S3Storage", "boto3")
REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


class Peak:
    """The peak extra memory of what runs inside ``with Peak() as peak:`` (bytes)."""

    def __enter__(self) -> Peak:
        gc.collect()
        self._stop = threading.Event()
        self.rss_before = self._rss_peak = _rss()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        tracemalloc.start()
        self._traced_before = tracemalloc.get_traced_memory()[0]
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self._rss_peak = max(self._rss_peak, _rss())

    def __exit__(self, *exc_info: object) -> None:
        self.traced = tracemalloc.get_traced_memory()[1] - self._traced_before
        tracemalloc.stop()
        self._stop.set()
        self._sampler.join()
        self.rss = max(self._rss_peak, _rss()) - self.rss_before


def _figures(put: Peak, get: Peak, size: int) -> dict[str, float]:
    return {
        "put_extra": put.traced / size,
        "get_extra": (get.traced - size) / size,
        "put_extra_rss": put.rss / size,
        "get_extra_rss": (get.rss - size) / size,
    }


async def _measure_storage(
    endpoint: str, keys: tuple[str, str], bucket: str, size: int
) -> dict[str, float]:
    from ssshelf.storages.s3 import S3Storage

    kwargs = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": keys[0],
        "aws_secret_access_key": keys[1],
    }
    async with S3Storage(bucket, kwargs) as storage:
        await storage.put("warm-up", os.urandom(64 * 1024))
        await storage.get("warm-up")
        data = os.urandom(size)
        with Peak() as put:
            await storage.put("big", data)
        del data
        with Peak() as get:
            obj = await storage.get("big")
        assert obj is not None and len(obj.data) == size
    return _figures(put, get, size)


def _measure_boto3(
    endpoint: str, keys: tuple[str, str], bucket: str, size: int
) -> dict[str, float]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
    )
    client.put_object(Bucket=bucket, Key="warm-up", Body=os.urandom(64 * 1024))
    client.get_object(Bucket=bucket, Key="warm-up")["Body"].read()
    data = os.urandom(size)
    with Peak() as put:
        client.put_object(Bucket=bucket, Key="big", Body=data)
    del data
    with Peak() as get:
        body = client.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert len(body) == size
    return _figures(put, get, size)


def measure(
    client: str, endpoint: str, keys: tuple[str, str], bucket: str, mib: int
) -> dict[str, Any]:
    """Run one client's measurement in a fresh process; its result."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.s3_memory", "--child", client, "--mib", str(mib),
         "--endpoint", endpoint, "--bucket", bucket],
        env={**os.environ, "S3_MEMORY_KEYS": f"{keys[0]}:{keys[1]}"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{client} memory measurement failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _child(args: argparse.Namespace) -> None:
    access, _, secret = os.environ["S3_MEMORY_KEYS"].partition(":")
    size = args.mib * 1024 * 1024
    if args.child == "boto3":
        figures = _measure_boto3(args.endpoint, (access, secret), args.bucket, size)
    else:
        figures = asyncio.run(_measure_storage(args.endpoint, (access, secret), args.bucket, size))
    print(json.dumps({"client": args.child, "mib": args.mib, **figures}))


async def _with_bucket(
    endpoint: str, keys: tuple[str, str], clients: list[str], mib: int
) -> list[dict[str, Any]]:
    from ssshelf.storages.s3 import S3Storage

    bucket = f"ssshelf-memory-{uuid.uuid4().hex[:12]}"
    kwargs = {"region_name": REGION, "aws_access_key_id": keys[0], "aws_secret_access_key": keys[1]}
    async with S3Storage(bucket, kwargs, endpoint_url=endpoint) as admin:
        await admin.create_bucket()
        try:
            return [
                await asyncio.to_thread(measure, c, endpoint, keys, bucket, mib) for c in clients
            ]
        finally:
            await admin.delete_many(["big", "warm-up"])
            await admin.delete_bucket()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--client", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    from benchmarks.s3_transport import server

    process, endpoint, access, secret = server()
    try:
        for result in asyncio.run(_with_bucket(endpoint, (access, secret), args.client, args.mib)):
            print(json.dumps(result))
    finally:
        if process is not None:
            process.terminate()
            process.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
