"""An HTTP/1.1 proxy on 127.0.0.1 that records requests and injects S3 faults.

Put it between a client and an S3 server (moto) to see exactly what goes on
the wire and to make chosen requests fail the way S3 fails::

    async with FaultProxy(upstream_url) as proxy:
        proxy.inject(SLOWDOWN, share=0.3)
        proxy.inject(DROP_AFTER, times=1, when=lambda r: r.method == "PUT")
        ... S3Storage(endpoint_url=proxy.url) ...
        proxy.requests   # every request received, faulted or not

Faults:

* an error reply (``SLOWDOWN`` = 503 SlowDown, ``CONFLICT`` = 409
  ConditionalRequestConflict, ``error_reply(status, code)``): answered by the
  proxy with an S3 XML error body; the server never sees the request;
* ``DROP_BEFORE``: the connection is cut after the request is read, before
  it is forwarded (the request did not happen);
* ``DROP_AFTER``: the request is forwarded and answered, then the
  connection is cut instead of passing the answer on (the request happened,
  the client cannot know);
* ``delay(seconds)``: the request is held, then passed through;
* ``xml_reply(status, body)``: a made-up answer (e.g. per-key DeleteObjects errors);
* ``raw_reply(status, headers, body)``: a made-up answer with exactly these
  headers (no Content-Length unless given: the body then ends when the
  connection closes);
* ``drop_after_then(hook)``: like ``DROP_AFTER``, but ``await hook()`` runs
  after the server answered and before the connection is cut (e.g. another
  writer's request);
* ``cut_short(keep)``: the server's answer is passed on without its
  Content-Length and with only the first ``keep`` bytes of its body, then the
  connection is closed;
* ``trickle(seconds)``: the server's answer is passed on one byte every ``seconds``;
* ``corrupt(keep)``: the server's answer with only the first ``keep`` body
  bytes and a Content-Length rewritten to match (framing cannot show it);
* ``stall(after)``: read ``after`` bytes of the request body, then nothing more
  (an upload that stalls); the connection is held until the client gives up;
* ``refuse_early(status, code)``: an error answer to a request announcing
  ``Expect: 100-continue``, before its body is read (no ``100 Continue``); the
  body bytes the client sends anyway are counted in ``Request.late_bytes``.

With ``ssl_context`` the proxy speaks https to its clients (plain http upstream).

``max_in_flight`` is the most requests the proxy held at once;
``max_connections`` the most client connections open at once, ``connections``
how many were accepted in all.

By default each answer closes the client connection.  With ``keep_alive`` the
connection stays open for the next request (answers are sent as HTTP/1.1 with
a Content-Length); ``idle_close`` then closes a connection idle that long,
after writing ``idle_reply`` (e.g. a 408) if given.  ``read_rate`` reads
request bodies at about that many bytes a second, with small socket buffers
(a slow link).  ``send_continue=False`` ignores ``Expect: 100-continue`` (an
HTTP/1.1 server that reads the body without answering it).

Each request is sent upstream on its own connection (``Connection: close``).
``Expect: 100-continue`` is answered by the proxy and not forwarded.

:class:`ThreadedProxy` runs a proxy on an event loop of its own thread, so that
it keeps serving (and closing idle connections) while the test's loop is blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_XML_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message>"
    "<RequestId>fault-proxy</RequestId></Error>"
)


@dataclass(frozen=True)
class Fault:
    """What to do to a request instead of passing it through."""

    kind: str
    status: int = 0
    code: str = ""
    message: str = ""
    body: bytes | None = None
    seconds: float = 0.0
    headers: tuple[tuple[str, str], ...] | None = None
    hook: Callable[[], Awaitable[None]] | None = None
    keep: int = 0


def error_reply(
    status: int,
    code: str,
    message: str = "injected by the fault proxy",
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> Fault:
    """A fault answering ``status`` with an S3 error body naming ``code`` (or ``body``),
    and ``headers`` besides."""
    return Fault(
        "reply",
        status,
        code,
        message,
        body=body.encode() if body is not None else None,
        headers=tuple((headers or {}).items()) or None,
    )


def xml_reply(status: int, body: str) -> Fault:
    """A fault answering ``status`` with ``body`` (an S3 XML document) instead of the server."""
    return Fault("reply", status, "Reply", body=body.encode())


def raw_reply(status: int, headers: dict[str, str], body: bytes = b"") -> Fault:
    """A fault answering ``status`` with exactly ``headers`` and ``body``, then closing."""
    return Fault("raw", status, body=body, headers=tuple(headers.items()))


def drop_after_then(hook: Callable[[], Awaitable[None]]) -> Fault:
    """DROP_AFTER, with ``await hook()`` between the server's answer and the cut."""
    return Fault("drop_after", hook=hook)


def cut_short(keep: int) -> Fault:
    """Pass the answer on without Content-Length and with ``keep`` body bytes, then close."""
    return Fault("cut_short", keep=keep)


def trickle(seconds: float) -> Fault:
    """Pass the answer on one byte every ``seconds``."""
    return Fault("trickle", seconds=seconds)


def corrupt(keep: int) -> Fault:
    """Pass the answer on with ``keep`` body bytes and a Content-Length that matches them."""
    return Fault("corrupt", keep=keep)


def stall(after: int) -> Fault:
    """Read ``after`` body bytes, then stop reading (see the module docstring)."""
    return Fault("stall", keep=after)


def refuse_early(status: int, code: str) -> Fault:
    """Answer an error before reading the body (see the module docstring)."""
    return Fault("refuse_early", status, code, "refused before the body")


def delay(seconds: float) -> Fault:
    """A fault holding the request ``seconds`` before passing it through."""
    return Fault("delay", seconds=seconds)


SLOWDOWN = error_reply(503, "SlowDown", "Please reduce your request rate.")
CONFLICT = error_reply(
    409, "ConditionalRequestConflict", "A conflicting conditional operation is in progress."
)
INTERNAL_ERROR = error_reply(500, "InternalError", "We encountered an internal error.")
DROP_BEFORE = Fault("drop_before")
DROP_AFTER = Fault("drop_after")


@dataclass
class Request:
    """One request as the proxy received it (header names lower-cased)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    fault: Fault | None = None
    #: Body bytes received after an early refusal (``refuse_early``).
    late_bytes: int = 0


@dataclass
class _Plan:
    fault: Fault
    share: float
    remaining: int | None
    when: Callable[[Request], bool]

    def applies(self, request: Request, rng: random.Random) -> bool:
        if self.remaining == 0 or not self.when(request):
            return False
        if rng.random() >= self.share:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True


@dataclass
class FaultProxy:
    """See the module docstring.  ``seed`` makes the random shares repeatable."""

    upstream_url: str
    seed: int = 0
    ssl_context: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    #: Set (or replace) these headers on every answer passed through.
    response_headers: dict[str, str] = field(default_factory=dict)
    #: The most requests received and not yet answered at one moment.
    max_in_flight: int = 0
    keep_alive: bool = False
    idle_close: float | None = None
    idle_reply: bytes | None = None
    read_rate: float | None = None
    send_continue: bool = True
    #: Client connections accepted in all, and the most open at once.
    connections: int = 0
    max_connections: int = 0
    _open_connections: int = 0
    _in_flight: int = 0
    _plans: list[_Plan] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._rng = random.Random(self.seed)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the proxy first"
        port = self._server.sockets[0].getsockname()[1]
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{port}"

    def inject(
        self,
        fault: Fault,
        *,
        share: float = 1.0,
        times: int | None = None,
        when: Callable[[Request], bool] = lambda request: True,
    ) -> None:
        """Apply ``fault`` to a ``share`` of the requests matching ``when``.

        ``times`` bounds how often; the first plan that applies wins.
        """
        self._plans.append(_Plan(fault, share, times, when))

    def heal(self) -> None:
        """Stop injecting faults."""
        self._plans.clear()

    async def received(self, count: int) -> None:
        """Return once ``count`` requests have been received in all."""
        while len(self.requests) < count:
            self._arrived.clear()
            await self._arrived.wait()

    def faulted(self) -> list[Request]:
        """The requests a fault was applied to."""
        return [r for r in self.requests if r.fault is not None]

    async def start(self) -> FaultProxy:
        sock = socket.socket()
        if self.read_rate is not None:  # a slow reader whose window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._serve, sock=sock, ssl=self.ssl_context)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- serving ----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self._open_connections += 1
        self.max_connections = max(self.max_connections, self._open_connections)
        try:
            while await self._one_exchange(reader, writer):
                pass
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.CancelledError,
            ssl.SSLError,
        ):
            # close() cancels open connections; ending quietly keeps asyncio's
            # stream callback from logging the cancellation as an error.
            pass
        finally:
            self._open_connections -= 1
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one_exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Handle one request; return whether the client connection stays open."""
        try:
            if self.keep_alive and self.idle_close is not None:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_close)
            else:
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            if self.idle_reply is not None:
                writer.write(self.idle_reply)
                await writer.drain()
            return False
        except asyncio.IncompleteReadError:
            return False
        request_line, headers = _parse_head(head)
        method, target, _ = request_line.split(" ", 2)
        request = Request(method, target, headers, b"")
        request.fault = next((p.fault for p in self._plans if p.applies(request, self._rng)), None)
        expects = headers.get("expect", "").lower() == "100-continue"
        if expects and request.fault is not None and request.fault.kind == "refuse_early":
            self.requests.append(request)
            self._arrived.set()
            writer.write(_error_response(request.fault, close=True))
            await writer.drain()
            with contextlib.suppress(ConnectionError, TimeoutError):
                while chunk := await asyncio.wait_for(reader.read(65536), 0.5):
                    request.late_bytes += len(chunk)
            return False
        if expects and self.send_continue:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if request.fault is not None and request.fault.kind == "stall":
            self.requests.append(request)
            self._arrived.set()
            request.body = await reader.readexactly(request.fault.keep)
            writer.transport.pause_reading()
            await asyncio.sleep(3600)  # until the proxy is closed
            return False
        request.body = await _read_body(reader, headers, self.read_rate)
        self.requests.append(request)
        self._arrived.set()
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return await self._answer(request, writer)
        finally:
            self._in_flight -= 1

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        fault = request.fault
        method, target, headers, body = (
            request.method,
            request.target,
            request.headers,
            request.body,
        )
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "drop_before":
            writer.transport.abort()
            return False
        if fault is not None and fault.kind == "reply":
            writer.write(_error_response(fault))
            await writer.drain()
            return headers.get("connection", "").lower() != "close"
        if fault is not None and fault.kind == "refuse_early":  # no Expect: answered after all
            writer.write(_error_response(fault, close=True))
            await writer.drain()
            return False
        if fault is not None and fault.kind == "raw":
            writer.write(_raw_response(fault))
            await writer.drain()
            return False
        response = await self._forward(method, target, headers, body)
        if fault is not None and fault.kind == "drop_after":
            if fault.hook is not None:
                await fault.hook()
            writer.transport.abort()
            return False
        if fault is not None and fault.kind == "cut_short":
            response = _cut_short(response, fault.keep)
        if fault is not None and fault.kind == "corrupt":
            response = _cut_short(response, fault.keep, framed=True)
        if fault is not None and fault.kind == "trickle":
            for index in range(len(response)):
                writer.write(response[index : index + 1])
                await writer.drain()
                await asyncio.sleep(fault.seconds)
            return False
        writer.write(response)
        await writer.drain()
        return self.keep_alive

    async def _forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> bytes:
        host, port = self._upstream
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        try:
            lines = [f"{method} {target} HTTP/1.1"]
            for name, value in headers.items():
                if name not in ("expect", "connection", "transfer-encoding", "content-length"):
                    lines.append(f"{name}: {value}")
            lines += [f"content-length: {len(body)}", "connection: close", "", ""]
            upstream_writer.write("\r\n".join(lines).encode("latin-1") + body)
            await upstream_writer.drain()
            response = await upstream_reader.read()
        finally:
            upstream_writer.close()
            with contextlib.suppress(ConnectionError):
                await upstream_writer.wait_closed()
        return self._rewrite(response)

    def _rewrite(self, response: bytes) -> bytes:
        """Apply ``response_headers``; answer as HTTP/1.1 (the proxy's version) and close
        the client connection, or (``keep_alive``) give the length and keep it open."""
        head, sep, body = response.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        replaced = {name.lower() for name in self.response_headers} | {"connection"}
        status_line = "HTTP/1.1" + status_line[status_line.index(" ") :]  # the proxy's own
        if self.keep_alive:
            replaced |= {"content-length", "transfer-encoding"}
        kept = [h for h in header_lines if h.split(":", 1)[0].strip().lower() not in replaced]
        kept += [f"{name}: {value}" for name, value in self.response_headers.items()]
        if self.keep_alive:
            kept.append(f"Content-Length: {len(body)}")
        else:
            kept.append("Connection: close")
        return "\r\n".join([status_line, *kept]).encode("latin-1") + sep + body


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return request_line, headers


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], rate: float | None = None
) -> bytes:
    if "content-length" in headers and rate is not None:
        return await _read_slowly(reader, int(headers["content-length"]), rate)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return b""
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await _skip_trailers(reader)
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _read_slowly(reader: asyncio.StreamReader, size: int, rate: float) -> bytes:
    """``size`` bytes, read at about ``rate`` bytes a second in tenths of a second."""
    parts: list[bytes] = []
    step = max(1, int(rate / 10))
    while size:
        part = await reader.readexactly(min(step, size))
        parts.append(part)
        size -= len(part)
        await asyncio.sleep(len(part) / rate)
    return b"".join(parts)


async def _skip_trailers(reader: asyncio.StreamReader) -> None:
    while (await reader.readuntil(b"\r\n")) != b"\r\n":
        pass


def _raw_response(fault: Fault) -> bytes:
    lines = [f"HTTP/1.1 {fault.status} Made Up"]
    lines += [f"{name}: {value}" for name, value in fault.headers or ()]
    lines += ["Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + (fault.body or b"")


def _cut_short(response: bytes, keep: int, *, framed: bool = False) -> bytes:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = [
        line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length:")
    ]
    if framed:
        lines.append(b"Content-Length: %d" % len(body[:keep]))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body[:keep]


def _error_response(fault: Fault, *, close: bool = False) -> bytes:
    body = fault.body
    if body is None:
        body = _XML_ERROR.format(code=fault.code, message=fault.message).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in fault.headers or ())
    if close:
        extra += "Connection: close\r\n"
    head = (
        f"HTTP/1.1 {fault.status} {fault.code}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{extra}"
        "\r\n"
    )
    return head.encode("latin-1") + body


class ThreadedProxy:
    """A :class:`FaultProxy` served by an event loop of its own thread::

    with ThreadedProxy(FaultProxy(upstream, keep_alive=True, idle_close=0.2)) as proxy:
        ... proxy.url ... proxy.proxy.requests ...
    """

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.proxy.url

    def __enter__(self) -> ThreadedProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
