"""An HTTP/1.1 proxy on 127.0.0.1 that holds every request for a fixed delay.

It stands between an S3 client and the S3 server of the benchmark so that
both libraries see the same distant store: each request is held ``delay``
seconds before it is forwarded (responses pass straight through), so one
request costs one delay, and requests sent together wait together.

It also counts what it forwards, with the same definitions as
:class:`ssshelf.testing.CountingStorage`: ``requests`` (by S3 operation)
and ``round_trips``, the maximal stretches of time during which at least one
request was in flight.  ``GET /__proxy__/stats`` (``?reset=1`` to start
again) answers those counts as JSON instead of being forwarded.

Only what S3 clients send is understood: requests with a ``Content-Length``
or chunked body, one request at a time per connection (no pipelining), and
interim ``100 Continue`` answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

_CONTROL = "/__proxy__/stats"
_CHUNK = 64 * 1024


@dataclass(slots=True)
class ProxyStats:
    """What the proxy forwarded since the last reset."""

    requests: int = 0
    round_trips: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy."""
        return {
            "requests": self.requests,
            "round_trips": self.round_trips,
            "by_kind": dict(self.by_kind),
        }


def s3_kind(method: str, target: str) -> str:
    """The S3 operation a request line names (``get``, ``put``, ``list``, …)."""
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    if method == "GET":
        return "list" if "list-type" in query else "get"
    if method == "POST" and "delete" in query:
        return "delete_many"
    return method.lower()


class _Head:
    """A parsed request or response head."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.start = lines[0].split(" ", 2)
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None else None


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return _Head(raw)


async def _copy_body(
    head: _Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_eof: bool
) -> None:
    """Forward the body that follows ``head``."""
    if head.chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            writer.write(size_line)
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await reader.readuntil(b"\r\n")
                    writer.write(line)
                    if line == b"\r\n":
                        return
            writer.write(await reader.readexactly(size + 2))
    length = head.length
    if length is not None:
        while length > 0:
            data = await reader.read(min(length, _CHUNK))
            if not data:
                raise ConnectionError("connection closed inside a body")
            writer.write(data)
            length -= len(data)
        return
    if to_eof:
        while data := await reader.read(_CHUNK):
            writer.write(data)


class LatencyProxy:
    """Forward HTTP from ``127.0.0.1:<port>`` to ``upstream``, each request ``delay`` s late."""

    def __init__(self, upstream_host: str, upstream_port: int, delay: float) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.stats = ProxyStats()
        self._in_flight = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    def reset(self) -> None:
        """Start counting from zero."""
        self.stats = ProxyStats()
        if self._in_flight:
            self.stats.round_trips = 1

    def _begin(self, kind: str) -> None:
        self.stats.requests += 1
        self.stats.by_kind[kind] += 1
        if self._in_flight == 0:
            self.stats.round_trips += 1
        self._in_flight += 1

    def _end(self) -> None:
        self._in_flight -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # close() ends every connection; nothing waits for this task's result
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        methods: asyncio.Queue[str] = asyncio.Queue()
        downstream: asyncio.Task[None] | None = None
        outstanding = [0]
        try:
            while (head := await _read_head(reader)) is not None:
                method, target = head.start[0], head.start[1]
                if target.startswith(_CONTROL):
                    self._answer_control(target, writer)
                    await writer.drain()
                    continue
                self._begin(s3_kind(method, target))
                outstanding[0] += 1
                await asyncio.sleep(self.delay)
                if upstream is None:
                    upstream = await asyncio.open_connection(*self.upstream)
                    downstream = asyncio.create_task(
                        self._responses(upstream[0], writer, methods, outstanding)
                    )
                methods.put_nowait(method)
                upstream[1].write(head.raw)
                await _copy_body(head, reader, upstream[1], to_eof=False)
                await upstream[1].drain()
        finally:
            if downstream is not None:
                downstream.cancel()
                with contextlib.suppress(BaseException):
                    await downstream
            if upstream is not None:
                upstream[1].close()
            for _ in range(outstanding[0]):
                self._end()

    async def _responses(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        methods: asyncio.Queue[str],
        outstanding: list[int],
    ) -> None:
        while (head := await _read_head(reader)) is not None:
            writer.write(head.raw)
            status = int(head.start[1])
            if 100 <= status < 200:
                await writer.drain()
                continue
            method = methods.get_nowait()
            if method != "HEAD" and status not in (204, 304):
                await _copy_body(head, reader, writer, to_eof=True)
            outstanding[0] -= 1
            self._end()
            await writer.drain()
        writer.close()

    def _answer_control(self, target: str, writer: asyncio.StreamWriter) -> None:
        body = json.dumps(self.stats.as_dict()).encode()
        if "reset=1" in urlsplit(target).query:
            self.reset()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
