"""What S3Storage costs over raw aiobotocore doing the same requests.

Starts moto's standalone server on 127.0.0.1, then times N PutObject and N
GetObject requests of SIZE-byte objects at a given concurrency, three ways:

* ``raw default``: one aiobotocore client with botocore's defaults (only the
  pool size raised to the concurrency);
* ``raw tuned``:   one aiobotocore client with the settings S3Storage uses
  (no ``Expect: 100-continue``, checksums only when required, no retries);
* ``S3Storage``:   ``put``/``get`` of :class:`ssshelf.storages.s3.S3Storage`.

Each variant runs ``--rounds`` times, alternating, on fresh keys; the best
round counts.  Besides requests a second (bounded by moto, a single Python
process), it prints the client process's CPU time a request: the cost the
client itself adds, which moto's speed and other load on the machine do not
blur.  Run from the repository root::

    .venv/bin/python benchmarks/s3_overhead.py [-n 2000] [-c 32] [--size 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.handlers import add_expect_header

from ssshelf.storages.s3 import S3Storage

CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
BUCKET = "ssshelf-bench"
Runner = Callable[[str, bytes, int, int], Awaitable[None]]


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/moto-api/data.json", timeout=1):
                return process, url
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    process.terminate()
    raise SystemExit(f"moto_server did not start on {url}")


async def bounded(concurrency: int, jobs: list[Callable[[], Awaitable[Any]]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


async def raw_client(stack: AsyncExitStack, url: str, concurrency: int, *, tuned: bool) -> Any:
    if tuned:
        config = AioConfig(
            max_pool_connections=concurrency,
            retries={"total_max_attempts": 1},
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
    else:
        config = AioConfig(max_pool_connections=concurrency, s3={"addressing_style": "path"})
    client = await stack.enter_async_context(
        AioSession().create_client(
            "s3", region_name="us-east-1", endpoint_url=url, config=config, **CREDENTIALS
        )
    )
    if tuned:
        client.meta.events.unregister("before-call.s3", add_expect_header)
    return client


def raw_runner(client: Any, concurrency: int) -> tuple[Runner, Runner]:
    async def puts(tag: str, body: bytes, n: int, _: int) -> None:
        await bounded(
            concurrency,
            [
                lambda i=i: client.put_object(Bucket=BUCKET, Key=f"{tag}/{i}", Body=body)
                for i in range(n)
            ],
        )

    async def get(key: str) -> bytes:
        response = await client.get_object(Bucket=BUCKET, Key=key)
        async with response["Body"] as stream:
            data: bytes = await stream.read()
            return data

    async def gets(tag: str, body: bytes, n: int, _: int) -> None:
        await bounded(concurrency, [lambda i=i: get(f"{tag}/{i}") for i in range(n)])

    return puts, gets


def storage_runner(storage: S3Storage) -> tuple[Runner, Runner]:
    async def puts(tag: str, body: bytes, n: int, _: int) -> None:
        await asyncio.gather(*(storage.put(f"{tag}/{i}", body) for i in range(n)))

    async def gets(tag: str, body: bytes, n: int, _: int) -> None:
        await asyncio.gather(*(storage.get(f"{tag}/{i}") for i in range(n)))

    return puts, gets


async def measure(
    name: str, runners: tuple[Runner, Runner], round_no: int, n: int, size: int, concurrency: int
) -> tuple[float, float]:
    """Requests a second, and this (client) process's CPU milliseconds a request."""
    puts, gets = runners
    tag = f"{name.replace(' ', '-')}/{round_no}"
    body = os.urandom(size)
    started, cpu = time.perf_counter(), time.process_time()
    await puts(tag, body, n, concurrency)
    await gets(tag, body, n, concurrency)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return 2 * n / elapsed, 1000 * cpu / (2 * n)


async def main(n: int, concurrency: int, size: int, rounds: int) -> None:
    process, url = start_moto()
    try:
        async with AsyncExitStack() as stack:
            storage = S3Storage(
                BUCKET,
                aws_client_kwargs=CREDENTIALS,
                endpoint_url=url,
                region="us-east-1",
                max_pool_connections=concurrency,
                max_in_flight=concurrency,
            )
            stack.push_async_callback(storage.close)
            await storage.create_bucket()
            variants: dict[str, tuple[Runner, Runner]] = {
                "raw default": raw_runner(
                    await raw_client(stack, url, concurrency, tuned=False), concurrency
                ),
                "raw tuned": raw_runner(
                    await raw_client(stack, url, concurrency, tuned=True), concurrency
                ),
                "S3Storage": storage_runner(storage),
            }
            for runners in variants.values():  # warm up: connections, models, moto
                await measure("warmup", runners, 0, 50, size, concurrency)
            best = dict.fromkeys(variants, 0.0)
            cpu = dict.fromkeys(variants, float("inf"))
            for round_no in range(1, rounds + 1):
                for name, runners in variants.items():
                    rate, ms = await measure(name, runners, round_no, n, size, concurrency)
                    best[name], cpu[name] = max(best[name], rate), min(cpu[name], ms)
                    print(
                        f"round {round_no}  {name:<12} {rate:8.1f} requests/s"
                        f"  {ms:.3f} client CPU ms/request",
                        flush=True,
                    )
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(f"\n{n} PUT + {n} GET of {size}-byte objects, concurrency {concurrency}, moto at {url}")
    for name in variants:
        print(
            f"  {name:<12} {best[name]:8.1f} requests/s,"
            f" {cpu[name]:.3f} client CPU ms/request (best of {rounds})"
        )
    for base in ("raw tuned", "raw default"):
        print(
            f"  S3Storage / {base:<11}: throughput x{best['S3Storage'] / best[base]:.3f},"
            f" client CPU x{cpu['S3Storage'] / cpu[base]:.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="PUTs, then as many GETs")
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--size", type=int, default=200, help="object size in bytes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.concurrency, args.size, args.rounds))
