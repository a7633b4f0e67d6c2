"""A small HTTP/1.1 client for S3 requests: one exchange at a time per connection.

Why not a general HTTP client: S3Storage needs few things (a request with a
body, an answer read whole, keep-alive) and needs them exactly — it must know
whether a request may have reached the server (for the lost-answer logic),
never have an attempt silently resent, bound every exchange by one deadline,
and detect an answer cut short.  Doing only that costs a fraction of the CPU
of a general client (see ``docs/s3.md``).

A :class:`ConnectionPool` belongs to one event loop.  Failures are raised as
:class:`TransportError` subclasses saying whether anything was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from typing import NamedTuple, cast

#: Connections idle longer than this are not reused (servers close idle
#: connections after a while, and a request written into one that is being
#: closed fails in a way that looks like a lost answer).
MAX_IDLE_SECONDS = 10.0


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class Origin(NamedTuple):
    """Where requests go: scheme (``http``/``https``), host name and port."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer, read whole.  Header names are lower-case."""

    status: int
    headers: dict[str, str]
    body: bytes
    #: The answer announced where its body ends (Content-Length or chunked).
    #: ``False`` when the body ran until the server closed the connection, so a
    #: body cut short cannot be told from a whole one by the framing alone.
    framed: bool


class TransportError(Exception):
    """An attempt failed without a complete HTTP answer."""

    #: Whether the request was (perhaps partly) written to the connection, so
    #: that the server may have acted on it.
    sent: bool = True
    #: Whether no connection to the server could be opened at all.
    connect_failed: bool = False


class ConnectFailed(TransportError):
    """No connection could be opened (refused, unresolvable, connect timeout)."""

    sent = False
    connect_failed = True


class TlsFailed(ConnectFailed):
    """The TLS handshake failed (e.g. the certificate could not be verified)."""


class AnswerLost(TransportError):
    """The connection closed or broke after the request was sent, before the whole answer."""


class AttemptTimedOut(TransportError):
    """The exchange did not complete within its deadline."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; parses the answer to the request in progress."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._head_only = False
        self._eof = False
        self._error: BaseException | None = None
        self._status = 0
        self._headers: dict[str, str] = {}
        self._length = -1  # -1: until EOF, -2: chunked, else the body's size
        self._keep_alive = False
        self._chunks: list[bytes] = []
        self.reusable = False

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None:
            self._advance()
            if not self._waiter.done():  # more to come: acknowledge what came now
                self._ack_at_once()
        else:  # nothing asked for: the connection cannot be trusted any more
            self.abort()

    def eof_received(self) -> bool:
        self._eof = True
        self._advance()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._eof = True
        self._error = exc
        self._advance()

    # -- use ----------------------------------------------------------------------

    async def exchange(self, request: bytes, *, head_only: bool) -> Response:
        """Send ``request`` and return the complete answer."""
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._head_only = head_only
        self._status = 0
        self.reusable = False
        self._ack_at_once()
        self.transport.write(request)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    @property
    def has_unread(self) -> bool:
        """Bytes arrived beyond the last answer (a server that is out of step)."""
        return bool(self._buffer)

    def _ack_at_once(self) -> None:
        """Acknowledge the answer's segments at once (Linux ``TCP_QUICKACK``).

        A server that writes an answer's head and body separately with Nagle's
        algorithm on (Ceph RGW's beast frontend does) holds the body until the
        head is acknowledged, and a delayed acknowledgement costs ~40 ms.  The
        kernel leaves quick-ack mode by itself, so it is asked before each request.
        """
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is not None and _QUICKACK is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

    def abort(self) -> None:
        """Close at once; an exchange in progress fails with :class:`AnswerLost`."""
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- parsing ------------------------------------------------------------------

    def _advance(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            response = self._parse()
        except AnswerLost as exc:
            waiter.set_exception(exc)
            return
        if response is not None:
            waiter.set_result(response)

    def _parse(self) -> Response | None:
        buffer = self._buffer
        while self._status == 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if self._eof:
                    raise self._lost(
                        "before the answer's headers" if buffer else "without an answer"
                    )
                return None
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            self._read_head(head)
        if self._length >= 0:
            if len(buffer) < self._length:
                if self._eof:
                    raise self._lost(f"after {len(buffer)} of {self._length} body bytes")
                return None
            body = bytes(buffer[: self._length])
            del buffer[: self._length]
            return self._done(body, framed=True)
        if self._length == -2:
            return self._parse_chunks()
        if not self._eof:
            return None
        body = bytes(buffer)
        buffer.clear()
        self._keep_alive = False
        return self._done(body, framed=False)

    def _read_head(self, head: bytes) -> None:
        try:
            status_line, *lines = head.decode("latin-1").split("\r\n")
            version, status_text, *_ = status_line.split(" ", 2)
            status = int(status_text)
        except ValueError:
            raise self._lost(f"with a malformed status line {head[:60]!r}") from None
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self._keep_alive = "close" not in connection
        else:
            self._keep_alive = "keep-alive" in connection
        if self._head_only or status in (204, 304):
            self._length = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._length = -2
            self._chunks = []
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                raise self._lost("with a malformed Content-Length") from None
        else:
            self._length = -1
        self._status = status
        self._headers = headers

    def _parse_chunks(self) -> Response | None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                break
            try:
                size = int(bytes(buffer[:line_end]).split(b";", 1)[0], 16)
            except ValueError:
                raise self._lost("with a malformed chunk") from None
            if size == 0:
                trailers_end = buffer.find(b"\r\n\r\n", line_end)
                if trailers_end < 0:
                    break
                del buffer[: trailers_end + 4]
                return self._done(b"".join(self._chunks), framed=True)
            start = line_end + 2
            if len(buffer) < start + size + 2:
                break
            self._chunks.append(bytes(buffer[start : start + size]))
            del buffer[: start + size + 2]
        if self._eof:
            raise self._lost("in the middle of a chunked body")
        return None

    def _done(self, body: bytes, *, framed: bool) -> Response:
        self.reusable = self._keep_alive and not self._eof and not self._buffer
        return Response(self._status, self._headers, body, framed)

    def _lost(self, when: str) -> AnswerLost:
        reason = f": {self._error}" if self._error else ""
        return AnswerLost(f"the connection closed {when}{reason}")


class ConnectionPool:
    """Keep-alive connections of one event loop, by origin.

    ``request`` makes one exchange on an idle connection or a new one.  A
    connection is reused only after a complete answer that allows it; any
    failure, timeout or cancellation aborts it.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        max_idle: int,
        tls: ssl.SSLContext | None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._max_idle = max_idle
        self._tls = tls
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self.closed = False

    async def request(
        self, origin: Origin, request: bytes, *, head_only: bool, seconds: float
    ) -> Response:
        """One exchange: connect if needed, send, read the whole answer, all within ``seconds``."""
        if self.closed:
            raise ConnectFailed("the connection pool is closed")
        connection = self._take_idle(origin)
        sent = False
        try:
            async with asyncio.timeout(seconds):
                if connection is None:
                    connection = await self._connect(origin)
                sent = True
                response = await connection.exchange(request, head_only=head_only)
        except TimeoutError:
            if connection is not None:
                connection.abort()
                self._open.discard(connection)
            what = "an answer" if sent else "a connection"
            raise AttemptTimedOut(
                f"no complete answer within {seconds:.3g} s (waiting for {what})", sent=sent
            ) from None
        except BaseException:
            if connection is not None:
                connection.abort()
                self._open.discard(connection)
            raise
        self._release(connection)
        return response

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls if origin.scheme == "https" else None
        assert tls is not None or origin.scheme == "http", "https without TLS settings"
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
        except TimeoutError:
            raise ConnectFailed(
                f"connecting to {origin.host}:{origin.port} took over {self._connect_timeout:.3g} s"
            ) from None
        except ssl.SSLError as exc:
            raise TlsFailed(f"TLS with {origin.host}:{origin.port} failed: {exc}") from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {origin.host}:{origin.port}: {exc}") from None
        if self.closed:
            connection.abort()
            raise ConnectFailed("the connection pool is closed")
        self._open.add(connection)
        return connection

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.closed or now - connection.idle_since > MAX_IDLE_SECONDS:
                connection.close()
                self._open.discard(connection)
                continue
            return connection
        return None

    def _release(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.origin, [])
        clean = connection.reusable and not connection.closed and not connection.has_unread
        if clean and not self.closed and len(idle) < self._max_idle:
            connection.idle_since = time.monotonic()
            idle.append(connection)
        else:
            connection.close()
            self._open.discard(connection)

    def close(self) -> None:
        """Abort every connection, idle or busy; exchanges in progress fail at once."""
        self.closed = True
        self._idle.clear()
        for connection in list(self._open):
            connection.abort()
        self._open.clear()
