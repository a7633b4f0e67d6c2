"""The S3 transport bake-off: client CPU per request, side by side in one run.

Two workloads, through each client in turn (alternating rounds, fresh keys
each round):

* N PutObject then N GetObject of SIZE-byte objects, CONCURRENCY in flight:
  client CPU **per request**;
* PAGES pages of 100: one ListObjectsV2 of 100 keys, then the 100 GetObjects
  at once (what a manager's page of 100 items asks): client CPU **per page**.

The clients:

* ``aiobotocore``:     raw aiobotocore, default settings (the baseline);
* ``S3Storage``:       ``put``/``get``/``list`` of :class:`ssshelf.storages.s3.S3Storage`;
* ``minimal``:         a minimal asyncio SigV4 client (``benchmarks/minimal_s3.py``:
  keep-alive streams, ssshelf's signer, nothing else) — the floor;
* ``aiohttp+sigv4``:   aiohttp requests signed by ssshelf's signer (the floor
  of an aiohttp-based transport; requests only);
* ``obstore``:         obstore (Rust object_store), when installed (requests only).

Client CPU is this process's ``time.process_time()`` over the requests,
divided by their number: what the client itself costs, which the server's
speed and other load do not blur.  Never read an S3 speed off moto (one
Python process serving one request at a time): client CPU per request on it
is a fair comparison, its wall-clock rates are not.

The server: moto's stock ``moto_server`` started here, or the one named by
``SSSHELF_TEST_S3_ENDPOINT`` / ``_ACCESS_KEY`` / ``_SECRET_KEY`` (Ceph RGW
under ``scripts/ceph/start.sh``).  Run from the repository root::

    .venv/bin/python -m benchmarks.s3_transport [-n 1000] [-c 16] [--rounds 5] [--pages 20]
    .venv/bin/python -m benchmarks.s3_transport --exit-runs 200 --client obstore
    .venv/bin/python -m benchmarks.s3_transport --uvloop   # uvloop installed by hand
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from benchmarks.minimal_s3 import MinimalS3
from ssshelf.storages.s3 import S3Storage

REGION = "us-east-1"
Runner = Callable[[list[str], bytes], Awaitable[None]]
#: One page: list 100 keys under the prefix, then get them all at once.
PageRunner = Callable[[str], Awaitable[None]]
PAGE = 100


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


def server() -> tuple[subprocess.Popen[bytes] | None, str, str, str]:
    """(the process started here or None, endpoint, access key, secret key)."""
    external = os.environ.get("SSSHELF_TEST_S3_ENDPOINT")
    if external:
        return (
            None,
            external,
            os.environ["SSSHELF_TEST_S3_ACCESS_KEY"],
            os.environ["SSSHELF_TEST_S3_SECRET_KEY"],
        )
    process, url = start_moto()
    return process, url, "bench", "bench"


async def bounded(concurrency: int, jobs: list[Callable[[], Awaitable[Any]]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


async def aiobotocore_runners(
    stack: AsyncExitStack, url: str, access: str, secret: str, bucket: str, concurrency: int
) -> tuple[Runner, Runner]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession

    config = AioConfig(max_pool_connections=concurrency, s3={"addressing_style": "path"})
    client = await stack.enter_async_context(
        AioSession().create_client(
            "s3",
            region_name=REGION,
            endpoint_url=url,
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            config=config,
        )
    )

    async def get(key: str) -> None:
        response = await client.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as stream:
            await stream.read()

    async def puts(keys: list[str], body: bytes) -> None:
        await bounded(
            concurrency,
            [lambda k=k: client.put_object(Bucket=bucket, Key=k, Body=body) for k in keys],
        )

    async def gets(keys: list[str], body: bytes) -> None:
        await bounded(concurrency, [lambda k=k: get(k) for k in keys])

    async def page(prefix: str) -> None:
        listed = await client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=PAGE)
        got = await asyncio.gather(*(get(item["Key"]) for item in listed["Contents"]))
        assert len(got) == PAGE

    PAGE_RUNNERS[id(puts)] = page
    return puts, gets


#: The page runner of each client that has one, by its put runner's id.
PAGE_RUNNERS: dict[int, PageRunner] = {}


def storage_runners(storage: S3Storage) -> tuple[Runner, Runner]:
    async def puts(keys: list[str], body: bytes) -> None:
        await asyncio.gather(*(storage.put(k, body) for k in keys))

    async def gets(keys: list[str], body: bytes) -> None:
        await asyncio.gather(*(storage.get(k) for k in keys))

    async def page(prefix: str) -> None:
        listed = await storage.list(prefix, limit=PAGE)
        got = await asyncio.gather(*(storage.get(k) for k in listed.keys))
        assert len(got) == PAGE and all(g is not None for g in got)

    PAGE_RUNNERS[id(puts)] = page
    return puts, gets


def minimal_runners(client: MinimalS3, concurrency: int) -> tuple[Runner, Runner]:
    async def puts(keys: list[str], body: bytes) -> None:
        await asyncio.gather(*(client.put(k, body) for k in keys))

    async def gets(keys: list[str], body: bytes) -> None:
        await asyncio.gather(*(client.get(k) for k in keys))

    async def page(prefix: str) -> None:
        keys = await client.list(prefix, PAGE)
        got = await asyncio.gather(*(client.get(k) for k in keys))
        assert len(got) == PAGE

    PAGE_RUNNERS[id(puts)] = page
    return puts, gets


async def aiohttp_runners(
    stack: AsyncExitStack, url: str, access: str, secret: str, bucket: str, concurrency: int
) -> tuple[Runner, Runner]:
    import aiohttp

    from ssshelf.storages.s3._signing import EMPTY_SHA256, Keys, Signer, quote_path

    session = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    )
    signer, keys = Signer(REGION), Keys(access, secret, None)
    host = url.split("://", 1)[1]

    async def request(method: str, key: str, body: bytes) -> None:
        path = f"/{bucket}/{quote_path(key)}"
        digest = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        headers = signer.headers(keys, method, host, path, "", {}, digest)
        async with session.request(method, url + path, data=body or None, headers=headers) as r:
            await r.read()
            assert r.status == 200, r.status

    async def puts(keys_: list[str], body: bytes) -> None:
        await bounded(concurrency, [lambda k=k: request("PUT", k, body) for k in keys_])

    async def gets(keys_: list[str], body: bytes) -> None:
        await bounded(concurrency, [lambda k=k: request("GET", k, b"") for k in keys_])

    return puts, gets


def obstore_runners(
    url: str, access: str, secret: str, bucket: str, concurrency: int
) -> tuple[Runner, Runner] | None:
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError:
        return None
    store = S3Store(
        bucket,
        endpoint=url,
        access_key_id=access,
        secret_access_key=secret,
        region=REGION,
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )

    async def get(key: str) -> None:
        result = await obstore.get_async(store, key)
        await result.bytes_async()

    async def puts(keys: list[str], body: bytes) -> None:
        await bounded(concurrency, [lambda k=k: obstore.put_async(store, k, body) for k in keys])

    async def gets(keys: list[str], body: bytes) -> None:
        await bounded(concurrency, [lambda k=k: get(k) for k in keys])

    return puts, gets


async def measure(runners: tuple[Runner, Runner], keys: list[str], body: bytes) -> float:
    """Client CPU milliseconds per request for the PUTs and GETs of ``keys``."""
    puts, gets = runners
    cpu = time.process_time()
    await puts(keys, body)
    await gets(keys, body)
    return 1000 * (time.process_time() - cpu) / (2 * len(keys))


async def measure_pages(page: PageRunner, prefix: str, pages: int) -> float:
    """Client CPU milliseconds per page of 100."""
    cpu = time.process_time()
    for _ in range(pages):
        await page(prefix)
    return 1000 * (time.process_time() - cpu) / pages


async def bake_off(
    n: int, concurrency: int, size: int, rounds: int, clients: list[str], pages: int = 20
) -> dict[str, dict[str, float]]:
    """Run both workloads; print the table; return the medians by client
    (``request_ms``, and ``page_ms`` for the clients that page)."""
    process, url, access, secret = server()
    bucket = f"bake-off-{uuid.uuid4().hex[:12]}"
    try:
        async with AsyncExitStack() as stack:
            storage = S3Storage(
                bucket,
                {"aws_access_key_id": access, "aws_secret_access_key": secret},
                endpoint_url=url,
                region=REGION,
                max_in_flight=concurrency,
            )
            stack.push_async_callback(storage.close)
            await storage.create_bucket()
            minimal = MinimalS3(url, access, secret, bucket, REGION, concurrency)
            stack.push_async_callback(minimal.close)
            every: dict[str, tuple[Runner, Runner] | None] = {
                "aiobotocore": await aiobotocore_runners(
                    stack, url, access, secret, bucket, concurrency
                ),
                "S3Storage": storage_runners(storage),
                "minimal": minimal_runners(minimal, concurrency),
                "aiohttp+sigv4": await aiohttp_runners(
                    stack, url, access, secret, bucket, concurrency
                ),
                "obstore": obstore_runners(url, access, secret, bucket, concurrency),
            }
            variants = {
                name: runners
                for name, runners in every.items()
                if runners is not None and name in clients
            }
            body = os.urandom(size)
            for name, runners in variants.items():  # warm up: connections, models
                await measure(runners, [f"warm/{name}/{i}" for i in range(50)], body)
            cpu: dict[str, list[float]] = {name: [] for name in variants}
            for round_no in range(1, rounds + 1):
                for name, runners in variants.items():
                    keys = [f"r{round_no}/{name}/{i}" for i in range(n)]
                    cpu[name].append(await measure(runners, keys, body))
                    print(f"round {round_no}  {name:<14} {cpu[name][-1]:.3f} ms", flush=True)
            paging = {
                name: PAGE_RUNNERS[id(runners[0])]
                for name, runners in variants.items()
                if id(runners[0]) in PAGE_RUNNERS
            }
            page_cpu: dict[str, list[float]] = {name: [] for name in paging}
            if pages and paging:
                await asyncio.gather(*(storage.put(f"page/{i:03d}", body) for i in range(PAGE)))
                for page in paging.values():  # warm up
                    await page("page/")
                for round_no in range(1, rounds + 1):
                    for name, page in paging.items():
                        page_cpu[name].append(await measure_pages(page, "page/", pages))
                        print(
                            f"round {round_no}  {name:<14} {page_cpu[name][-1]:.2f} ms a page",
                            flush=True,
                        )
            keys = (await storage.list()).keys
            while keys:
                await storage.delete_many(keys)
                keys = (await storage.list()).keys
            await storage.delete_bucket()
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
    medians: dict[str, dict[str, float]] = {
        name: {"request_ms": statistics.median(values)} for name, values in cpu.items()
    }
    for name, values in page_cpu.items():
        if values:
            medians[name]["page_ms"] = statistics.median(values)
    print(
        f"\n{n} PUT + {n} GET of {size}-byte objects, {concurrency} in flight; pages of"
        f" {PAGE} (a listing, then {PAGE} GETs at once), {pages} a round; at {url};"
        f" client CPU, median of {rounds} rounds"
    )
    print(format_table(medians))
    return medians


def format_table(medians: dict[str, dict[str, float]]) -> str:
    """The bake-off table (Markdown): CPU per request and per page, against the floor
    (``minimal``) and the baseline (``aiobotocore``) when they ran."""
    floor = medians.get("minimal", {})
    base = medians.get("aiobotocore", {})

    def ratio(value: float | None, against: float | None) -> str:
        return f"{value / against:.2f}x" if value and against else "-"

    lines = [
        "| client | CPU / request | vs minimal | vs aiobotocore | CPU / page of 100"
        " | vs minimal | vs aiobotocore |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, figures in medians.items():
        request, page = figures.get("request_ms"), figures.get("page_ms")
        lines.append(
            f"| {name} | {request:.3f} ms | {ratio(request, floor.get('request_ms'))}"
            f" | {ratio(request, base.get('request_ms'))}"
            f" | {f'{page:.2f} ms' if page else '-'} | {ratio(page, floor.get('page_ms'))}"
            f" | {ratio(page, base.get('page_ms'))} |"
        )
    return "\n".join(lines)


EXIT_PROGRAM = """
import asyncio, sys
sys.path.insert(0, {root!r})
from benchmarks.s3_transport import {factory}
puts, gets = {factory}({url!r}, {access!r}, {secret!r}, {bucket!r}, 8)
async def main():
    keys = [f"exit/{{i}}" for i in range(8)]
    await puts(keys, b"x" * 200)
    await gets(keys, b"")
asyncio.run(main())
"""


def storage_exit_runners(
    url: str, access: str, secret: str, bucket: str, concurrency: int
) -> tuple[Runner, Runner]:
    storage = S3Storage(
        bucket, {"aws_access_key_id": access, "aws_secret_access_key": secret}, endpoint_url=url
    )
    return storage_runners(storage)


def exit_runs(runs: int, client: str) -> None:
    """``runs`` fresh interpreters each making requests and exiting; count the failures."""
    process, url, access, secret = server()
    bucket = f"exit-{uuid.uuid4().hex[:12]}"
    factory = {"obstore": "obstore_exit_runners", "S3Storage": "storage_exit_runners"}[client]
    try:
        admin = S3Storage(
            bucket, {"aws_access_key_id": access, "aws_secret_access_key": secret}, endpoint_url=url
        )
        asyncio.run(admin.create_bucket())
        code = EXIT_PROGRAM.format(
            root=str(Path(__file__).resolve().parent.parent),
            factory=factory,
            url=url,
            access=access,
            secret=secret,
            bucket=bucket,
        )
        codes: dict[int, int] = {}
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
            codes[done.returncode] = codes.get(done.returncode, 0) + 1
        print(f"{client}: {runs} runs of 'requests, then exit': exit codes {codes}")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)


def obstore_exit_runners(
    url: str, access: str, secret: str, bucket: str, concurrency: int
) -> tuple[Runner, Runner]:
    runners = obstore_runners(url, access, secret, bucket, concurrency)
    assert runners is not None, "obstore is not installed"
    return runners


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="PUTs, then as many GETs, a round")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--size", type=int, default=200, help="object size in bytes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pages", type=int, default=20, help="pages of 100 a round")
    parser.add_argument("--json", action="store_true", help="end with the medians as JSON")
    parser.add_argument(
        "--clients",
        default="aiobotocore,S3Storage,minimal,aiohttp+sigv4,obstore",
        help="which to run",
    )
    parser.add_argument("--exit-runs", type=int, default=0, help="run the exit test instead")
    parser.add_argument("--client", default="obstore", help="the client of --exit-runs")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    args = parser.parse_args()
    if args.exit_runs:
        exit_runs(args.exit_runs, args.client)
    else:
        main = bake_off(
            args.n, args.concurrency, args.size, args.rounds, args.clients.split(","), args.pages
        )
        if args.uvloop:
            import uvloop

            medians = uvloop.run(main)
        else:
            medians = asyncio.run(main)
        if args.json:
            print(json.dumps(medians))
