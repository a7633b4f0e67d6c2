"""One benchmark phase for one library, in a process of its own; prints one JSON line.

``benchmarks.run`` starts it as ``<python> benchmarks/driver.py '<json spec>'``
with our virtualenv (``"lib": "ssshelf"``) or the seed's (``"lib": "seed"``).
It imports nothing from the ``benchmarks`` package, only the standard
library, aiobotocore and the library under test, so the same file runs under
either interpreter; the smoke test imports it to run the pure-Python phases
in-process.

Both libraries are driven through the same small adapter (:class:`Lib`)
with the same data (:func:`bookmark`), the same concurrency and, on S3, the
same client settings: S3Storage's own (a pool of 64 connections, no
``Expect: 100-continue``, no CRC checksums).  The seed's ``S3Storage``
takes a client (``s3_client=``); ours builds its own from the same settings.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import AsyncExitStack, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, cast

REGION = "us-east-1"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
#: Requests in flight for bulk loads (our add_items' window) and bulk reads.
BULK_WRITE_CONCURRENCY = 16
BULK_READ_CONCURRENCY = 64
OPS = ("create", "get", "page100", "replace", "update", "remove")


# -- data -------------------------------------------------------------------


def bookmark(n: int) -> dict[str, Any]:
    """Bookmark number ``n``: same bytes for both libraries, ordered by ``n`` in time."""
    site = f"site{n % 50}.example"
    return {
        "pk": f"{n:09d}",
        "link": f"https://{site}/articles/{n}",
        "title": f"Bookmark number {n}",
        "user": f"user{n % 100:03d}",
        "site": site,
        "created_at": (EPOCH + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tags": ["bench", f"t{n % 7}"],
    }


def changed(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with a new title and a new user (one collection key moves)."""
    new = dict(item)
    new["title"] = item["title"] + " (edited)"
    new["user"] = "user" + str((int(item["user"][4:]) + 1) % 100).zfill(3)
    return new


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    """Run the calls with at most ``limit`` in flight; results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


# -- the two libraries behind one interface ---------------------------------


class Lib(Protocol):
    """What a scenario asks of a library."""

    async def create(self, item: dict[str, Any]) -> None: ...
    async def create_many(self, items: Sequence[dict[str, Any]]) -> None: ...
    async def get(self, pk: str) -> Any: ...
    async def get_many(self, pks: Sequence[str]) -> list[Any]: ...
    async def page(self, max_keys: int, after: str | None) -> tuple[list[Any], str | None]: ...
    async def replace(self, item: dict[str, Any]) -> None: ...
    async def update(self, pk: str) -> None: ...
    async def remove(self, item: dict[str, Any]) -> None: ...


class Ours:
    """ssshelf 1.x: a CManager with ``every`` (+ ``by_user``, ``by_site``)."""

    def __init__(self, storage: Any, *, collections: int = 3) -> None:
        from ssshelf.collections import Collection
        from ssshelf.items import IManager
        from ssshelf.managers import CManager

        class Every(Collection):
            def key(self, item: Any) -> Any:
                return item["created_at"]

        class ByUser(Collection):
            def key(self, item: Any) -> Any:
                return (item["user"], item["created_at"])

        class BySite(Collection):
            def key(self, item: Any) -> Any:
                return (item["site"], item["created_at"])

        attrs: dict[str, Any] = {"namespace": "bm", "item_manager": IManager(), "every": Every()}
        if collections >= 3:
            attrs.update(by_user=ByUser(), by_site=BySite())
        self.manager: Any = type("Bookmarks", (CManager,), attrs)(storage)

    async def create(self, item: dict[str, Any]) -> None:
        await self.manager.create_item(item)

    async def create_many(self, items: Sequence[dict[str, Any]]) -> None:
        await self.manager.add_items(items)

    async def get(self, pk: str) -> Any:
        return await self.manager.get_item(pk)

    async def get_many(self, pks: Sequence[str]) -> list[Any]:
        result: list[Any] = await self.manager.get_items_by_pk(pks)
        return result

    async def page(self, max_keys: int, after: str | None) -> tuple[list[Any], str | None]:
        resp = await self.manager.every.get_items(max_keys=max_keys, after=after)
        return resp["items"], resp.get("after")

    async def replace(self, item: dict[str, Any]) -> None:
        await self.manager.add_item(item)

    async def update(self, pk: str) -> None:
        await self.manager.update_item(pk, changed)

    async def remove(self, item: dict[str, Any]) -> None:
        await self.manager.remove_item(item["pk"])


class Seed:
    """ssshelf 0.1.3, used as its README shows (fresh classes: they hold the storage)."""

    def __init__(self, storage: Any, *, collections: int = 3) -> None:
        from ssshelf.collections import Collection
        from ssshelf.items import IManager
        from ssshelf.managers import CManager

        class Bookmark(IManager):  # the seed's class (untyped)
            def get_pk(self, item: Any) -> str:
                return str(item["pk"])

            def serialize_item(self, item: Any) -> bytes:
                return json.dumps(item).encode("utf-8")

            def deserialize_item(self, data: bytes) -> Any:
                return json.loads(data)

        def collection(parts: Callable[[Any], list[str]]) -> Any:
            class C(Collection):
                def get_pk(self, item: Any) -> str:
                    return str(item["pk"])

                def key(self, item: Any) -> list[list[str]]:
                    return [parts(item)]

            return C

        attrs: dict[str, Any] = {
            "item_manager": Bookmark(),
            "every": collection(lambda i: [i["created_at"]])(name="every"),
        }
        if collections >= 3:
            attrs["by_user"] = collection(lambda i: [i["user"], i["created_at"]])(name="by-user")
            attrs["by_site"] = collection(lambda i: [i["site"], i["created_at"]])(name="by-site")
        self.manager: Any = type("BookmarkManager", (CManager,), attrs)(storage)

    async def create(self, item: dict[str, Any]) -> None:
        await self.manager.add_item(item)

    async def create_many(self, items: Sequence[dict[str, Any]]) -> None:
        add = self.manager.add_item
        await bounded([partial(add, i) for i in items], BULK_WRITE_CONCURRENCY)

    async def get(self, pk: str) -> Any:
        return await self.manager.item_manager.get_item(pk)

    async def get_many(self, pks: Sequence[str]) -> list[Any]:
        get = self.manager.item_manager.get_item
        return await bounded([partial(get, p) for p in pks], BULK_READ_CONCURRENCY)

    async def page(self, max_keys: int, after: str | None) -> tuple[list[Any], str | None]:
        resp = await self.manager.every.get_items(max_keys=max_keys, after=after)
        return resp["items"], resp.get("after")

    async def replace(self, item: dict[str, Any]) -> None:
        await self.manager.add_item(item)

    async def update(self, pk: str) -> None:
        item = await self.get(pk)
        await self.manager.add_item(changed(item))

    async def remove(self, item: dict[str, Any]) -> None:
        await self.manager.remove_item(item)


def make_lib(lib: str, storage: Any, *, collections: int = 3) -> Lib:
    """The adapter of ``lib`` ("ssshelf" or "seed") over ``storage``."""
    if lib == "ssshelf":
        return Ours(storage, collections=collections)
    if lib == "seed":
        return Seed(storage, collections=collections)
    raise ValueError(f"unknown lib {lib!r}")


# -- storages -----------------------------------------------------------------


def client_config() -> Any:
    """S3Storage's client settings, for the seed's client and the raw client."""
    from aiobotocore.config import AioConfig

    return AioConfig(
        max_pool_connections=64,
        retries={"total_max_attempts": 1},
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


async def open_client(stack: AsyncExitStack, endpoint: str, *, tuned: bool = True) -> Any:
    """An aiobotocore S3 client for ``endpoint``, closed with ``stack``."""
    from aiobotocore.session import AioSession
    from botocore.handlers import add_expect_header

    kwargs: dict[str, Any] = {"endpoint_url": endpoint, "region_name": REGION}
    if tuned:
        kwargs["config"] = client_config()
    client = await stack.enter_async_context(AioSession().create_client("s3", **kwargs))
    if tuned:
        client.meta.events.unregister("before-call.s3", add_expect_header)
    return client


async def ensure_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` unless it exists."""
    async with AsyncExitStack() as stack:
        client = await open_client(stack, endpoint)
        with suppress(client.exceptions.BucketAlreadyOwnedByYou):
            await client.create_bucket(Bucket=bucket)


async def s3_storage(lib: str, stack: AsyncExitStack, endpoint: str, bucket: str) -> Any:
    """The library's own S3 storage on ``endpoint``/``bucket``."""
    if lib == "ssshelf":
        from ssshelf.storages.s3 import S3Storage

        storage = S3Storage(bucket, endpoint_url=endpoint, region=REGION)
        stack.push_async_callback(storage.close)
        return storage
    from ssshelf.storages.s3 import S3Storage as SeedS3Storage

    return SeedS3Storage(bucket, s3_client=await open_client(stack, endpoint))


class Counts:
    """Requests and round trips, read from wherever they are counted."""

    def reset(self) -> None:
        raise NotImplementedError

    def read(self) -> dict[str, Any]:
        raise NotImplementedError


class ProxyCounts(Counts):
    """The latency proxy's counters (``GET /__proxy__/stats``)."""

    def __init__(self, proxy: str) -> None:
        self.url = proxy + "/__proxy__/stats"

    def _get(self, query: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + query, timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def reset(self) -> None:
        self._get("?reset=1")

    def read(self) -> dict[str, Any]:
        return self._get("")


class SeedLatency:
    """A seed StorageProxy that waits ``delay`` before each request and counts them."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.counts: Counter[str] = Counter()
        self.round_trips = 0
        self._in_flight = 0

    async def _call(self, kind: str, request: Callable[[], Awaitable[Any]]) -> Any:
        self.counts[kind] += 1
        if self._in_flight == 0:
            self.round_trips += 1
        self._in_flight += 1
        try:
            await asyncio.sleep(self.delay)
            return await request()
        finally:
            self._in_flight -= 1

    async def create_key(self, storage_key: Any, data: bytes | None = None) -> Any:
        return await self._call("put", lambda: self.inner.create_key(storage_key, data))

    async def remove_key(self, storage_key: Any) -> None:
        await self._call("delete", lambda: self.inner.remove_key(storage_key))

    async def remove_keys(self, storage_keys: Any) -> None:
        for key in storage_keys:
            await self.remove_key(key)

    async def get_key(self, storage_key: Any) -> Any:
        return await self._call("get", lambda: self.inner.get_key(storage_key))

    async def get_keys(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("list", lambda: self.inner.get_keys(*args, **kwargs))


class WrapperCounts(Counts):
    """Counts kept by an in-process wrapper (ours: CountingStorage; seed: SeedLatency)."""

    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def reset(self) -> None:
        self.wrapper.counts.clear()
        self.wrapper.round_trips = 0

    def read(self) -> dict[str, Any]:
        counts = dict(self.wrapper.counts)
        return {
            "requests": sum(counts.values()),
            "round_trips": self.wrapper.round_trips,
            "by_kind": counts,
        }


def memory_storage(lib: str) -> Any:
    """An empty in-memory storage of ``lib``."""
    if lib == "ssshelf":
        from ssshelf.storages.inmemory import InMemoryStorage

        return InMemoryStorage()
    from ssshelf.storages.inmemory import InMemoryStorage as SeedInMemory

    return SeedInMemory()


def latency_memory_storage(lib: str, delay: float) -> tuple[Any, Counts, Callable[[float], None]]:
    """An in-memory storage behind a latency wrapper, its counts and a delay setter."""
    return latency_storage(lib, memory_storage(lib), delay)


def latency_storage(
    lib: str, inner: Any, delay: float
) -> tuple[Any, Counts, Callable[[float], None]]:
    """``inner`` behind a latency wrapper (in this process), its counts and a delay setter.

    The wait is an ``asyncio.sleep`` before each request: no proxy's CPU in the path.
    """
    if lib == "ssshelf":
        from ssshelf.testing import CountingStorage, LatencyStorage

        latency = LatencyStorage(inner, delay)
        counting = CountingStorage(cast(Any, latency))  # its properties satisfy Storage

        def set_ours(seconds: float) -> None:
            latency.seconds = seconds

        return counting, WrapperCounts(counting), set_ours
    wrapper = SeedLatency(inner, delay)

    def set_seed(seconds: float) -> None:
        wrapper.delay = seconds

    return wrapper, WrapperCounts(wrapper), set_seed


# -- phases -------------------------------------------------------------------


def timed(seconds: list[float]) -> dict[str, Any]:
    """Median, min and max of a list of durations."""
    return {
        "median": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "samples": seconds,
    }


async def phase_s3(spec: dict[str, Any]) -> dict[str, Any]:
    """One step on S3 (no added latency): create batch ``run``, get from it, or page through.

    Batches accumulate in the bucket: the paging runs come after enough
    create runs to hold ``page_n`` entries.
    """
    lib, endpoint, bucket, run = spec["lib"], spec["endpoint"], spec["bucket"], spec["run"]
    create_n, get_n, page_n = spec["create_n"], spec["get_n"], spec["page_n"]
    await ensure_bucket(endpoint, bucket)
    out: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        library = make_lib(lib, await s3_storage(lib, stack, endpoint, bucket))
        batch = [bookmark(run * create_n + i) for i in range(create_n)]
        if spec.get("create"):
            start = time.perf_counter()
            await library.create_many(batch)
            out["create_seconds"] = time.perf_counter() - start

        if spec.get("get"):
            rng = random.Random(run)
            pks = [item["pk"] for item in rng.sample(batch, min(get_n, len(batch)))]
            pks += [pks[i % len(pks)] for i in range(get_n - len(pks))]
            start = time.perf_counter()
            got = await library.get_many(pks)
            out["get_seconds"] = time.perf_counter() - start
            if any(g is None or g["pk"] != pk for g, pk in zip(got, pks, strict=True)):
                raise RuntimeError(f"{lib}: get_many returned wrong items")

        if spec.get("page"):
            out["page_seconds"] = {}
            out["page_each"] = {}
            for size in spec["page_sizes"]:
                seen, after = 0, None
                each: list[float] = []
                start = time.perf_counter()
                while seen < page_n:
                    began = time.perf_counter()
                    items, after = await library.page(min(size, page_n - seen), after)
                    each.append(time.perf_counter() - began)
                    seen += len(items)
                    if after is None:
                        break
                out["page_seconds"][str(size)] = time.perf_counter() - start
                out["paged"] = page_n
                out["page_each"][str(size)] = statistics.median(each)
                if seen != page_n:
                    raise RuntimeError(f"{lib}: paged {seen} entries, expected {page_n}")
    return out


async def phase_latency(spec: dict[str, Any]) -> dict[str, Any]:
    """Each single operation with ``delay`` s per request: time, requests, round trips."""
    lib, model, reps, delay = spec["lib"], spec["model"], spec["reps"], spec["delay"]
    base = 5 * 10**8
    setup_n = 100 + 4 * reps + 2
    items = [bookmark(base + i) for i in range(setup_n)]
    counts: Counts
    async with AsyncExitStack() as stack:
        if model == "s3" and spec.get("inproc"):
            await ensure_bucket(spec["endpoint"], spec["bucket"])
            inner = await s3_storage(lib, stack, spec["endpoint"], spec["bucket"])
            storage, counts, set_delay = latency_storage(lib, inner, 0.0)
            await make_lib(lib, storage).create_many(items)
            set_delay(delay)
            measured = make_lib(lib, storage)
        elif model == "s3":
            await ensure_bucket(spec["endpoint"], spec["bucket"])
            setup = make_lib(lib, await s3_storage(lib, stack, spec["endpoint"], spec["bucket"]))
            await setup.create_many(items)
            storage = await s3_storage(lib, stack, spec["proxy"], spec["bucket"])
            measured = make_lib(lib, storage)
            counts = ProxyCounts(spec["proxy"])
        else:
            storage, counts, set_delay = latency_memory_storage(lib, 0.0)
            await make_lib(lib, storage).create_many(items)
            set_delay(delay)
            measured = make_lib(lib, storage)
        # Warm up (not measured): clients, connection pools, code paths.
        await measured.get(items[0]["pk"])
        await measured.page(100, None)
        await measured.create(bookmark(base + 10**6 + reps + 1))

        pools = {
            "get": items[100 : 100 + reps],
            "replace": items[100 + reps : 100 + 2 * reps],
            "update": items[100 + 2 * reps : 100 + 3 * reps],
            "remove": items[100 + 3 * reps : 100 + 4 * reps],
        }

        async def run_op(op: str, i: int) -> None:
            if op == "create":
                await measured.create(bookmark(base + 10**6 + i))
            elif op == "get":
                got = await measured.get(pools["get"][i]["pk"])
                assert got is not None and got["pk"] == pools["get"][i]["pk"]
            elif op == "page100":
                page, _ = await measured.page(100, None)
                assert len(page) == 100, len(page)
            elif op == "replace":
                await measured.replace(changed(pools["replace"][i]))
            elif op == "update":
                await measured.update(pools["update"][i]["pk"])
            else:
                await measured.remove(pools["remove"][i])

        results: dict[str, Any] = {}
        for op in OPS:
            seconds: list[float] = []
            requests: list[int] = []
            trips: list[int] = []
            kinds: Counter[str] = Counter()
            for i in range(reps):
                counts.reset()
                start = time.perf_counter()
                await run_op(op, i)
                seconds.append(time.perf_counter() - start)
                stats = counts.read()
                requests.append(stats["requests"])
                trips.append(stats["round_trips"])
                kinds.update(stats["by_kind"])
            results[op] = {
                "seconds": timed(seconds),
                "requests": statistics.median(requests),
                "round_trips": statistics.median(trips),
                "by_kind": {k: v / reps for k, v in sorted(kinds.items())},
            }
    return {"ops": results}


def daemon_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far (``/proc``)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def phase_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """What this S3 server itself costs for a page of 100 and a create (3 collections).

    The same requests as ssshelf's, sent by a minimal client (ssshelf's
    ``S3Storage`` called directly, no manager): a page is one listing of 100
    keys, then GETs of the 100 items all at once; a create is three index
    entries written together, then the item (``if_absent``).  Each runs
    ``reps`` times with no added latency and again behind ``LatencyStorage``
    with ``delay`` before each request; ssshelf's own page and create run with
    no added latency too.  With ``server_pids`` (the Ceph daemons), their CPU
    per operation is measured over the no-latency runs.
    """
    from ssshelf.storages.s3 import S3Storage
    from ssshelf.testing import LatencyStorage

    endpoint, bucket, reps, delay = spec["endpoint"], spec["bucket"], spec["reps"], spec["delay"]
    pids = spec.get("server_pids") or []
    await ensure_bucket(endpoint, bucket)
    items = [bookmark(9 * 10**8 + i) for i in range(100)]
    bodies = {f"floor/i/{it['pk']}": json.dumps(it).encode() for it in items}
    async with AsyncExitStack() as stack:
        storage = S3Storage(bucket, endpoint_url=endpoint, region=REGION)
        stack.push_async_callback(storage.close)
        await asyncio.gather(*(storage.put(k, v) for k, v in bodies.items()))
        fresh = iter(range(10**6))

        async def raw_page(store: Any) -> None:
            listed = await store.list("floor/i/", limit=100)
            got = await asyncio.gather(*(store.get(k) for k in listed.keys))
            if len(got) != 100 or any(g is None for g in got):
                raise RuntimeError(f"raw page: {len(got)} objects")

        async def raw_create(store: Any) -> None:
            n = next(fresh)
            await asyncio.gather(*(store.put(f"floor/e{c}/{n:07d}", b"") for c in range(3)))
            await store.put(f"floor/c/{n:07d}", json.dumps(bookmark(n)).encode(), if_absent=True)

        library = make_lib("ssshelf", storage)
        await library.create_many(items)
        created = iter(range(8 * 10**8, 9 * 10**8))

        async def lib_page(_: Any) -> None:
            page, _after = await library.page(100, None)
            if len(page) != 100:
                raise RuntimeError(f"ssshelf page: {len(page)} items")

        async def lib_create(_: Any) -> None:
            await library.create(bookmark(next(created)))

        async def measure(op: Callable[[Any], Awaitable[None]], store: Any) -> dict[str, Any]:
            await op(store)  # warm up
            seconds: list[float] = []
            cpu = daemon_cpu_seconds(pids) if pids else 0.0
            for _ in range(reps):
                start = time.perf_counter()
                await op(store)
                seconds.append(time.perf_counter() - start)
            out = timed(seconds)
            if pids:
                out["server_cpu_ms"] = 1000 * (daemon_cpu_seconds(pids) - cpu) / reps
            return out

        delayed = LatencyStorage(storage, delay)
        return {
            "raw": {
                "page100": await measure(raw_page, storage),
                "create": await measure(raw_create, storage),
            },
            "raw_delayed": {
                "page100": await measure(raw_page, delayed),
                "create": await measure(raw_create, delayed),
            },
            "ssshelf": {
                "page100": await measure(lib_page, storage),
                "create": await measure(lib_create, storage),
            },
            "round_trips": {"page100": 2, "create": 2},
            "delay": delay,
            "reps": reps,
        }


async def phase_scan(spec: dict[str, Any]) -> dict[str, Any]:
    """Full scans of one in-memory collection of growing size, pages of ``page_size``.

    Each size is scanned ``runs`` times as is and, with ``frozen``, ``runs``
    times more after ``gc.freeze()``: the in-memory store keeps every object
    in this process's heap, and CPython's cyclic collector walks that heap
    again and again while the scan allocates, which adds a cost that grows
    with N and is no part of paging (a store on SQLite or S3 holds its data
    outside the heap).  With ``max_seconds``, a size whose scan would take
    longer than that, judged from the previous size as if time grew with the
    square of N, is skipped.
    """
    lib, sizes, runs, page_size = spec["lib"], spec["sizes"], spec["runs"], spec["page_size"]
    limit = spec.get("max_seconds")
    storage = memory_storage(lib)
    library = make_lib(lib, storage, collections=1)

    async def scan(n: int) -> float:
        seen, after = 0, None
        start = time.perf_counter()
        while True:
            items, after = await library.page(page_size, after)
            seen += len(items)
            if after is None:
                break
        if seen != n:
            raise RuntimeError(f"{lib}: scanned {seen} of {n} entries")
        return time.perf_counter() - start

    have = 0
    out: dict[str, Any] = {}
    frozen: dict[str, Any] = {}
    for n in sizes:
        if limit is not None and have:
            predicted = out[str(have)]["median"] * (n / have) ** 2
            if predicted > limit:
                out["stopped"] = (
                    f"N = {n:,} skipped: its scan would take about {predicted:,.0f} s"
                    f" (over the {limit:g} s cap)"
                )
                break
        await library.create_many([bookmark(i) for i in range(have, n)])
        have = n
        gc.collect()
        out[str(n)] = timed([await scan(n) for _ in range(runs)])
        if spec.get("frozen"):
            gc.collect()
            gc.freeze()
            try:
                frozen[str(n)] = timed([await scan(n) for _ in range(runs)])
            finally:
                gc.unfreeze()
    result: dict[str, Any] = {"scan": out}
    if frozen:
        result["scan_frozen"] = frozen
    return result


async def phase_overhead(spec: dict[str, Any]) -> dict[str, Any]:
    """The same requests through S3Storage and through bare aiobotocore clients."""
    from ssshelf.storages.s3 import S3Storage

    endpoint, bucket, n, concurrency = spec["endpoint"], spec["bucket"], spec["n"], spec["conc"]
    list_passes, page = spec["list_passes"], spec["list_page"]
    await ensure_bucket(endpoint, bucket)
    body = b"x" * spec["size"]

    async def via_storage(prefix: str) -> tuple[float, int]:
        storage = S3Storage(bucket, endpoint_url=endpoint, region=REGION)
        try:
            await storage.get("warm-up")
            keys = [f"{prefix}/{i:06d}" for i in range(n)]
            start = time.perf_counter()
            await bounded([partial(storage.put, k, body) for k in keys], concurrency)
            await bounded([partial(storage.get, k) for k in keys], concurrency)
            requests = 2 * n
            for _ in range(list_passes):
                after = None
                while True:
                    listed = await storage.list(prefix + "/", after=after, limit=page)
                    requests += 1
                    after = listed.next_after
                    if after is None:
                        break
            batches = [keys[i : i + page] for i in range(0, n, page)]
            await bounded([partial(storage.delete_many, b) for b in batches], concurrency)
            requests += len(batches)
            return time.perf_counter() - start, requests
        finally:
            await storage.close()

    async def via_client(prefix: str, *, tuned: bool) -> tuple[float, int]:
        async with AsyncExitStack() as stack:
            client = await open_client(stack, endpoint, tuned=tuned)
            with suppress(client.exceptions.NoSuchKey):
                await client.get_object(Bucket=bucket, Key="warm-up")
            keys = [f"{prefix}/{i:06d}" for i in range(n)]

            async def get(key: str) -> bytes:
                response = await client.get_object(Bucket=bucket, Key=key)
                async with response["Body"] as stream:
                    data: bytes = await stream.read()
                    return data

            start = time.perf_counter()
            await bounded(
                [partial(client.put_object, Bucket=bucket, Key=k, Body=body) for k in keys],
                concurrency,
            )
            await bounded([partial(get, k) for k in keys], concurrency)
            requests = 2 * n
            for _ in range(list_passes):
                params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix + "/", "MaxKeys": page}
                while True:
                    listed = await client.list_objects_v2(**params)
                    requests += 1
                    contents = listed.get("Contents", [])
                    if not listed.get("IsTruncated") or not contents:
                        break
                    params["StartAfter"] = contents[-1]["Key"]
            batches = [keys[i : i + page] for i in range(0, n, page)]
            await bounded(
                [
                    partial(
                        client.delete_objects,
                        Bucket=bucket,
                        Delete={"Objects": [{"Key": k} for k in b], "Quiet": True},
                    )
                    for b in batches
                ],
                concurrency,
            )
            requests += len(batches)
            return time.perf_counter() - start, requests

    order = spec.get("order", ["raw", "storage", "raw_default"])
    out: dict[str, Any] = {}
    for name in order:
        prefix = f"{name}-{spec.get('run', 0)}"
        cpu = time.process_time()
        if name == "storage":
            seconds, requests = await via_storage(prefix)
        else:
            seconds, requests = await via_client(prefix, tuned=name == "raw")
        cpu = time.process_time() - cpu
        out[name] = {
            "seconds": seconds,
            "requests": requests,
            "per_second": requests / seconds,
            "cpu_ms_per_request": 1000 * cpu / requests,
        }
    return out


async def phase_cpu(spec: dict[str, Any]) -> dict[str, Any]:
    """Client CPU (``time.process_time()``) of the library per get by pk and per page of 100."""
    lib, endpoint, bucket, n = spec["lib"], spec["endpoint"], spec["bucket"], spec["n"]
    pages = spec["pages"]
    await ensure_bucket(endpoint, bucket)
    async with AsyncExitStack() as stack:
        library = make_lib(lib, await s3_storage(lib, stack, endpoint, bucket))
        items = [bookmark(7 * 10**8 + i) for i in range(n)]
        await library.create_many(items)
        pks = [item["pk"] for item in items]
        await library.get_many(pks[:50])  # warm up
        cpu = time.process_time()
        got = await library.get_many(pks)
        get_cpu = time.process_time() - cpu
        if any(g is None for g in got):
            raise RuntimeError(f"{lib}: get_many missed items")
        await library.page(100, None)
        cpu = time.process_time()
        for _ in range(pages):
            page, _ = await library.page(100, None)
            if len(page) != 100:
                raise RuntimeError(f"{lib}: a page of {len(page)} items, not 100")
        page_cpu = time.process_time() - cpu
    return {
        "get_cpu_ms": 1000 * get_cpu / n,
        "page_cpu_ms": 1000 * page_cpu / pages,
        "gets": n,
        "pages": pages,
    }


async def phase_sqlite_fill(spec: dict[str, Any]) -> dict[str, Any]:
    """Write ``n`` index entries of collection ``every`` into an SQLite file (setup).

    Keys come from ssshelf's own layout.  By default the rows go in with one
    ``executemany`` into the table SQLiteStorage created (a million ``put``
    calls would take over a minute), then SQLiteStorage reads a sample back; if
    that fails (the file format changed), or with ``"bulk": false``, every
    entry is written with ``SQLiteStorage.put``.
    """
    import sqlite3

    from ssshelf.keys import encode_tuple
    from ssshelf.layout import Layout
    from ssshelf.storages.sqlite import SQLiteStorage

    path, n, batch = spec["path"], spec["n"], spec.get("batch", 2000)
    layout = Layout("big")

    def key(i: int) -> str:
        return layout.entry_key("every", encode_tuple((i,)), f"{i:09d}", "w")

    start = time.perf_counter()
    storage = SQLiteStorage(path)
    method = "put"
    try:
        if spec.get("bulk", True) and n:
            await storage.close()
            with sqlite3.connect(path) as db:
                db.executemany(
                    "INSERT INTO objects (key, data, version, modified) VALUES (?, ?, ?, ?)",
                    ((key(i).encode(), b"", "bulk", time.time()) for i in range(n)),
                )
            db.close()
            storage = SQLiteStorage(path)
            sample = await storage.get(key(n // 2))
            first = await storage.list(layout.entry_prefix("every"), limit=1)
            if sample is not None and first.keys == [key(0)]:
                method = "executemany"
            else:  # SQLiteStorage no longer reads such rows: start again with put()
                await storage.close()
                for suffix in ("", "-wal", "-shm"):
                    with suppress(FileNotFoundError):
                        os.remove(path + suffix)
                storage = SQLiteStorage(path)
        if method == "put":
            for low in range(0, n, batch):
                keys = [key(i) for i in range(low, min(n, low + batch))]
                await asyncio.gather(*(storage.put(k, b"") for k in keys))
    finally:
        await storage.close()
    return {"seconds": time.perf_counter() - start, "entries": n, "method": method}


async def phase_sqlite_iter(spec: dict[str, Any]) -> dict[str, Any]:
    """Iterate every entry of collection ``every`` with ``iter_keys`` (bounded memory)."""
    from ssshelf.collections import Collection
    from ssshelf.items import IManager
    from ssshelf.managers import CManager
    from ssshelf.storages.sqlite import SQLiteStorage

    class Every(Collection):
        def key(self, item: Any) -> Any:
            return item["n"]

    manager_class: Any = type(
        "Big", (CManager,), {"namespace": "big", "item_manager": IManager(), "every": Every()}
    )
    manager = manager_class(SQLiteStorage(spec["path"]))
    seen = 0
    start = time.perf_counter()
    try:
        async for _key, _pk in manager.every.iter_keys(page_size=spec.get("page_size", 1000)):
            seen += 1
    finally:
        await manager.close()
    seconds = time.perf_counter() - start
    return {
        "entries": seen,
        "seconds": seconds,
        "self_max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def phase_probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``argv`` as the only child of this process; report its peak RSS.

    ``ru_maxrss`` of ``RUSAGE_CHILDREN`` is the largest of the waited-for
    children, so a process of its own keeps other children (the S3 server,
    earlier phases) out of the figure.
    """
    result = subprocess.run(spec["argv"], capture_output=True, text=True, check=False)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"probed command failed: {result.stderr.strip()[-2000:]}")
    lines = result.stdout.strip().splitlines()
    return {
        "max_rss_kib": usage.ru_maxrss,
        "child": json.loads(lines[-1]) if lines else None,
    }


def phase_idle(spec: dict[str, Any]) -> dict[str, Any]:
    """Import ssshelf and aiobotocore and do nothing (the baseline RSS)."""
    import importlib

    for module in ("aiobotocore.session", "ssshelf.managers", "ssshelf.storages.sqlite"):
        importlib.import_module(module)

    return {"self_max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


ASYNC_PHASES: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]] = {
    "s3": phase_s3,
    "latency": phase_latency,
    "scan": phase_scan,
    "overhead": phase_overhead,
    "cpu": phase_cpu,
    "floor": phase_floor,
    "sqlite-fill": phase_sqlite_fill,
    "sqlite-iter": phase_sqlite_iter,
}
SYNC_PHASES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "probe": phase_probe,
    "idle": phase_idle,
}


def run_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the phase ``spec["phase"]`` in this process."""
    phase = spec["phase"]
    if phase in SYNC_PHASES:
        return SYNC_PHASES[phase](spec)
    return asyncio.run(ASYNC_PHASES[phase](spec))


def main(argv: list[str]) -> int:
    """``driver.py '<json spec>'``: run it, print the result as one JSON line."""
    spec = json.loads(argv[1])
    tempfile.tempdir = spec.get("tmp") or tempfile.gettempdir()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    result = run_phase(spec)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
