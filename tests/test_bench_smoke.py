"""The benchmark scripts cannot rot: their pure-Python parts run here, tiny and in-process.

``make bench`` itself (moto, the seed's virtualenv, full sizes) is not part
of the test suite; this runs the quick mode's phases that need neither, the
latency proxy against a stub HTTP server, and the report writer.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from benchmarks import driver, report
from benchmarks.config import QUICK
from benchmarks.latency_proxy import LatencyProxy
from benchmarks.machine import machine_info, versions


async def _stub_http_server() -> asyncio.Server:
    """Answers every request with a small body (HEAD and DELETE with none)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            method = head.split(b" ", 1)[0]
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            if method == b"DELETE":
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:
                payload = b"ok:" + body
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
                if method != b"HEAD":
                    writer.write(payload)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def _request(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if not raw.startswith(b"HEAD") else b""
    writer.close()
    await writer.wait_closed()
    return head + body


async def test_quick_benchmark_parts_run_and_report(tmp_path: Path) -> None:
    sizes = replace(
        QUICK, scan_sizes=(200, 400), latency_reps=2, delay=0.005, sqlite_n=3_000, runs=1
    )

    # The latency proxy: delays, counts by kind, round trips, control endpoint.
    server = await _stub_http_server()
    port = server.sockets[0].getsockname()[1]
    proxy = LatencyProxy("127.0.0.1", port, 0.02)
    await proxy.start()
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        answers = await asyncio.gather(
            _request(proxy.port, b"GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n"),
            _request(proxy.port, b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"),
            _request(proxy.port, b"GET /b?list-type=2 HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        assert loop.time() - start >= 0.02
        assert answers[1].endswith(b"ok:abc")
        await _request(proxy.port, b"DELETE /b/k HTTP/1.1\r\nHost: x\r\n\r\n")
        await _request(proxy.port, b"HEAD /b/k HTTP/1.1\r\nHost: x\r\n\r\n")
        stats = json.loads(
            (await _request(proxy.port, b"GET /__proxy__/stats?reset=1 HTTP/1.1\r\n\r\n")).split(
                b"\r\n\r\n", 1
            )[1]
        )
        assert stats == {
            "requests": 5,
            "round_trips": 3,
            "by_kind": {"get": 1, "put": 1, "list": 1, "delete": 1, "head": 1},
        }
        assert proxy.stats.requests == 0
    finally:
        await proxy.close()
        server.close()
        await server.wait_closed()

    # The phases that need no S3 server and no seed, for ssshelf.
    latency = await driver.phase_latency(
        {"lib": "ssshelf", "model": "memory", "reps": sizes.latency_reps, "delay": sizes.delay}
    )
    ops = latency["ops"]
    assert set(ops) == set(driver.OPS)
    assert ops["get"]["requests"] == 1 and ops["get"]["round_trips"] == 1
    # A page is a list, then its items in one get_many (one request in memory).
    assert ops["page100"]["requests"] == 2 and ops["page100"]["round_trips"] == 2
    assert ops["create"]["round_trips"] <= 2
    scan = await driver.phase_scan(
        {
            "lib": "ssshelf",
            "sizes": list(sizes.scan_sizes),
            "runs": 1,
            "page_size": 100,
            "frozen": True,
        }
    )
    assert set(scan["scan"]) == set(scan["scan_frozen"]) == {"200", "400"}
    db = tmp_path / "iterate.db"
    fill = await driver.phase_sqlite_fill({"path": str(db), "n": sizes.sqlite_n, "batch": 500})
    iterated = await driver.phase_sqlite_iter({"path": str(db), "page_size": 1000})
    assert fill["entries"] == iterated["entries"] == sizes.sqlite_n

    # The report, from results shaped as benchmarks.run saves them.
    results: dict[str, Any] = {
        "errors": {},
        "latency": {"memory": {"ssshelf": latency, "seed": latency}},
        "scan": {"ssshelf": scan},
        "overhead": [
            {
                "raw": {"per_second": 100.0, "requests": 10, "seconds": 0.1},
                "storage": {"per_second": 95.0, "requests": 10, "seconds": 0.105},
            }
        ],
        "sqlite": {
            "fill": fill,
            "iter": {"max_rss_kib": 60_000, "child": iterated},
            "idle": {"max_rss_kib": 50_000, "child": {}},
        },
        "meta": {
            "command": "pytest",
            "quick": True,
            "started": "now",
            "seconds": 1.0,
            "sizes": asdict(sizes),
            "machine": machine_info(),
            "load_average_end": [],
            "versions": versions(),
            "seed": {"versions": {}, "error": "not in this test"},
        },
    }
    verdicts = {t.name: t.verdict for t in report.targets(results)}
    assert "n/a" in verdicts.values()  # the S3 figures were not measured here
    assert verdicts["S3Storage throughput vs raw aiobotocore (same requests)"] == "PASS"
    text = report.markdown(results)
    assert "## Targets" in text and "page of 100 items" in text
    if importlib.util.find_spec("matplotlib") is not None:
        written = report.write_report(results, tmp_path / "BENCHMARKS.md", tmp_path)
        assert {p.name for p in written} == {"BENCHMARKS.md", "latency.png", "scan.png"}
