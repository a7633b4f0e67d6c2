"""One HTTP/1.1 connection for S3 requests: a request sent, its answer read whole.

Why not a general HTTP client: S3Storage needs few things (a request with a
body, an answer read whole, keep-alive) and needs them exactly — it must know
whether a request may have reached the server (for the lost-answer logic),
never have an attempt silently resent, and detect an answer cut short.  Doing
only that costs a fraction of the CPU of a general client (see ``docs/s3.md``).

Big values are never copied: a request body goes out in slices of the
caller's bytes as the connection drains, and an answer body whose length is
announced is received straight into the bytes object handed back.

Time limits are on progress: an exchange fails when nothing moved (sent or
received) for ``idle`` seconds, and at ``give_up_at`` (the call's deadline)
unless a body is moving — so a big value on a slow link is not cut off while
it flows, and a silent server is.  Failures are :class:`TransportError`
subclasses saying whether anything was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import select
import socket
import struct
import termios
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
#: Linux's ioctl for the bytes a socket has not yet had acknowledged (SIOCOUTQ).
_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)
#: A body up to this size goes out in one write with its request head.
INLINE_BODY = 64 * 1024
#: A bigger body is written in slices of this size as the connection drains.
SEND_SLICE = 64 * 1024
#: The receive buffer of a connection: answer heads and bodies up to this size
#: (a bigger announced body gets a buffer of its own size).
SCRATCH = 32 * 1024
#: How long to wait for ``100 Continue`` before sending the body anyway (as botocore does).
CONTINUE_WAIT = 1.0

# What the answer being read is up to.
_HEAD, _LENGTH, _CHUNKED, _UNTIL_EOF, _DONE = range(5)
# Where a chunked body is.
_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS = range(4)


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
    #: The server speaks HTTP/1.0 (it would not answer ``Expect: 100-continue``).
    http10: bool = False


class TransportError(Exception):
    """An attempt failed without a complete HTTP answer."""

    #: Whether the request was (perhaps partly) written to the connection, so
    #: that the server may have acted on it.
    sent: bool = True
    #: Whether no connection to the server could be opened at all.
    connect_failed: bool = False
    #: Whether trying again may help.
    transient: bool = True


class ConnectFailed(TransportError):
    """No connection could be opened (refused, unresolvable, connect timeout)."""

    sent = False
    connect_failed = True


class TlsFailed(ConnectFailed):
    """The TLS handshake failed (e.g. the certificate could not be verified)."""

    transient = False


class ProxyRefused(ConnectFailed):
    """The HTTP proxy would not open a tunnel to the server."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.transient = status >= 500


class AnswerLost(TransportError):
    """The connection closed or broke after the request was sent, before the whole answer."""


class AttemptTimedOut(TransportError):
    """Nothing moved for too long, or the call's deadline passed."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class Connection(asyncio.BufferedProtocol):
    """One HTTP/1.1 connection; sends a request and parses its answer.

    ``key`` is whatever the pool files the connection under.
    """

    def __init__(self, key: object, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.closed = False
        #: The last answer allows another request on this connection.
        self.reusable = False
        self._loop = loop
        self._fd = -1
        self._sock: Any = None
        self._scratch = bytearray(SCRATCH)
        self._view = memoryview(self._scratch)
        self._start = 0  # unread answer bytes are _scratch[_start:_end]
        self._end = 0
        self._overflow = False
        self._waiter: asyncio.Future[Response] | None = None
        self._eof = False
        self._error: BaseException | None = None
        # the answer
        self._head_only = False
        self._state = _DONE
        self._status = 0
        self._headers: dict[str, str] = {}
        self._length = 0
        self._keep_alive = False
        self._http10 = False
        self._out: io.BytesIO | None = None  # a chunked or until-EOF body
        self._chunk_step = _CHUNK_SIZE
        self._chunk_left = 0
        self._sink_io: io.BytesIO | None = None  # a big announced body, received in place
        self._sink: memoryview | None = None
        self._sink_pos = 0
        # the request body
        self._body: memoryview | None = None
        self._offset = 0
        self._streamed = False
        self._paused = False
        self._awaiting_continue = False
        self._continue_by = 0.0
        # time limits
        self._timer: asyncio.TimerHandle | None = None
        self._idle = 0.0
        self._give_up_at = 0.0
        self._last_progress = 0.0
        self._extended = False
        self._last_queued = 0

    # -- asyncio.BufferedProtocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.attach(cast(asyncio.Transport, transport))

    def attach(self, transport: asyncio.Transport) -> None:
        """Use ``transport`` from now on (a TLS transport over the tunnel, after CONNECT)."""
        # A stream transport (uvloop's are not asyncio.Transport subclasses).
        self.transport = transport
        sock = transport.get_extra_info("socket")
        self._sock = sock
        self._fd = sock.fileno() if sock is not None else -1

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._sink is not None:
            return self._sink[self._sink_pos :]
        if self._end == SCRATCH:
            if self._start == 0:  # an answer head (or trailers) filling the whole buffer
                self._overflow = True
                return memoryview(bytearray(1024))
            self._compact()
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # nothing asked for: the connection is out of step
            self.abort()
            return
        self._last_progress = self._loop.time()
        if self._overflow:
            self._fail(AnswerLost(f"the answer's head is longer than {SCRATCH} bytes"))
            return
        if self._sink is not None:
            self._sink_pos += nbytes
            if self._sink_pos == self._length:
                self._sink = None
                self._state = _DONE
                # The transport still holds a slice of the sink until this returns;
                # taking the bytes then is what lets them come without a copy.
                self._loop.call_soon(self._finish_sink)
            return
        self._end += nbytes
        self._advance()
        if not waiter.done():  # more to come: acknowledge what came now
            self._ack_at_once()

    def eof_received(self) -> bool:
        self._eof = True
        self._advance()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._eof = True
        self._error = exc
        self._advance()
        self._stop_timer()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()

    # -- use ----------------------------------------------------------------------

    def exchange(
        self,
        head: bytes,
        body: bytes,
        *,
        head_only: bool,
        expect_continue: bool,
        idle: float,
        give_up_at: float,
    ) -> asyncio.Future[Response]:
        """Send ``head`` and ``body``; the future is the complete answer.

        ``head`` announces ``body``'s length; with ``expect_continue`` it asks
        for ``100 Continue`` and the body waits for it (or a final answer, which
        means the body is never sent, or :data:`CONTINUE_WAIT` seconds).
        """
        transport = self.transport
        assert transport is not None and self._waiter is None
        loop = self._loop
        now = loop.time()
        self._waiter = waiter = loop.create_future()
        self._head_only = head_only
        self._state = _HEAD
        self.reusable = False
        self._idle = idle
        self._give_up_at = give_up_at
        self._last_progress = now
        self._extended = False
        self._streamed = False
        self._last_queued = 1 << 62
        self._ack_at_once()
        if not body:
            transport.write(head)
        elif len(body) <= INLINE_BODY and not expect_continue:
            transport.write(head + body)
        else:
            self._body = memoryview(body)
            self._offset = 0
            transport.write(head)
            if expect_continue:
                self._awaiting_continue = True
                self._continue_by = now + CONTINUE_WAIT
            else:
                self._pump()
        self._timer = loop.call_at(self._next_check(), self._on_timer)
        return waiter

    def dropped(self) -> bool:
        """Whether the server closed this idle connection or sent something on it
        (a ``408``), as far as the socket tells right now."""
        if self.closed:
            return True
        if self._fd < 0:
            return False
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        return bool(poller.poll(0))

    def abort(self) -> None:
        """Close at once; an exchange in progress fails with :class:`AnswerLost`."""
        self.closed = True
        self.reusable = False
        self._stop_timer()
        self._drop_body()
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()

    # -- sending --------------------------------------------------------------------

    def _pump(self) -> None:
        """Hand the body to the transport, a slice at a time, while it is not full."""
        body = self._body
        transport = self.transport
        if body is None or self._awaiting_continue or transport is None:
            return
        if transport.is_closing():
            self._body = None
            return
        self._streamed = True
        offset, size = self._offset, len(body)
        while offset < size and not self._paused:
            transport.write(body[offset : offset + SEND_SLICE])
            offset += SEND_SLICE
        self._offset = offset
        self._last_progress = self._loop.time()
        if offset >= size:
            self._body = None

    def _ack_at_once(self) -> None:
        """Acknowledge the answer's segments at once (Linux ``TCP_QUICKACK``).

        A server that writes an answer's head and body separately with Nagle's
        algorithm on (Ceph RGW's beast frontend does) holds the body until the
        head is acknowledged, and a delayed acknowledgement costs ~40 ms.  The
        kernel leaves quick-ack mode by itself, so it is asked before each request.
        """
        sock = self._sock
        if sock is not None and _QUICKACK is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

    # -- time limits ----------------------------------------------------------------

    def _next_check(self) -> float:
        when = self._last_progress + self._idle
        if not self._extended:
            when = min(when, self._give_up_at)
        if self._awaiting_continue:
            when = min(when, self._continue_by)
        return when

    def _moving_body(self) -> bool:
        """A body is on its way: the call's deadline no longer cuts this exchange."""
        return self._streamed or (self._status != 0 and self._state != _HEAD)

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        now = self._loop.time()
        if self._awaiting_continue and now >= self._continue_by:
            self._awaiting_continue = False  # no 100 Continue came: send the body anyway
            self._pump()
        if self._streamed and self._drained_since_last_check():
            self._last_progress = now
        if not self._extended and now >= self._give_up_at:
            if not self._moving_body():
                self._fail(
                    AttemptTimedOut("the call's deadline passed waiting for an answer", sent=True)
                )
                return
            self._extended = True
        if now - self._last_progress >= self._idle:
            what = "sending the request" if self._body is not None else "waiting for the answer"
            self._fail(AttemptTimedOut(f"nothing moved for {self._idle:.3g} s ({what})", sent=True))
            return
        self._timer = self._loop.call_at(self._next_check(), self._on_timer)

    def _drained_since_last_check(self) -> bool:
        """The kernel sent more of a streamed body since the last check (on Linux).

        A body handed to a socket with big buffers may still be on its way
        long after the last write: that is progress too.
        """
        if _OUTQ is None or self._fd < 0:
            return False
        try:
            queued: int = struct.unpack("i", fcntl.ioctl(self._fd, _OUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return False
        drained = queued < self._last_queued
        self._last_queued = queued
        return drained

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the answer -------------------------------------------------------------------

    def _fail(self, exc: TransportError) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    def _advance(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            response = self._parse()
        except AnswerLost as exc:
            self._fail(exc)
            return
        if response is not None:
            self._finish(response)

    def _finish(self, response: Response) -> None:
        waiter = self._waiter
        self._waiter = None
        self._stop_timer()
        body_unsent = self._body is not None or self._awaiting_continue
        self._drop_body()
        transport = self.transport
        self.reusable = (
            self._keep_alive
            and not self._eof
            and self._start == self._end
            and not body_unsent
            and transport is not None
            and transport.get_write_buffer_size() == 0
        )
        if self._start == self._end:
            self._start = self._end = 0
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _finish_sink(self) -> None:
        sink_io = self._sink_io
        self._sink_io = None
        if sink_io is None or self._waiter is None or self._waiter.done():
            return
        # No view of it is left, so the bytes are handed over without a copy.
        self._finish(self._response(sink_io.getvalue(), framed=True))

    def _drop_body(self) -> None:
        self._body = None
        self._awaiting_continue = False
        if self._sink is not None:
            with contextlib.suppress(BufferError):
                self._sink.release()
            self._sink = None
        self._sink_io = None

    def _response(self, body: bytes, *, framed: bool) -> Response:
        return Response(self._status, self._headers, body, framed, self._http10)

    def _compact(self) -> None:
        start, end = self._start, self._end
        self._scratch[: end - start] = self._scratch[start:end]
        self._start, self._end = 0, end - start

    def _parse(self) -> Response | None:
        scratch = self._scratch
        while self._state == _HEAD:
            found = scratch.find(b"\r\n\r\n", self._start, self._end)
            if found < 0:
                if self._eof:
                    when = "before the answer's headers" if self._end > self._start else ""
                    raise self._lost(when or "without an answer")
                if self._end - self._start >= SCRATCH:
                    raise self._lost(f"after {SCRATCH} bytes of headers without their end")
                return None
            head = str(self._view[self._start : found], "latin-1")
            self._start = found + 4
            self._read_head(head)
        state = self._state
        if state == _LENGTH:
            length = self._length
            if self._sink is not None:  # the body goes straight to its buffer
                if self._eof:
                    raise self._lost(f"after {self._sink_pos} of {length} body bytes")
                return None
            have = self._end - self._start
            if have >= length:
                body = bytes(self._view[self._start : self._start + length])
                self._start += length
                self._state = _DONE
                return self._response(body, framed=True)
            if self._eof:
                raise self._lost(f"after {have} of {length} body bytes")
            if length > SCRATCH:
                self._open_sink(length, have)
            elif self._start + length > SCRATCH:
                self._compact()
            return None
        if state == _CHUNKED:
            return self._parse_chunks()
        if state == _UNTIL_EOF:
            self._move_out(self._end - self._start)
            if not self._eof:
                return None
            self._keep_alive = False
            self._state = _DONE
            return self._response(self._take_out(), framed=False)
        return None  # _DONE: bytes after the answer; the connection will not be reused

    def _read_head(self, head: str) -> None:
        status_line, _, rest = head.partition("\r\n")
        try:
            version, status_text, *_ = status_line.split(" ", 2)
            status = int(status_text)
        except ValueError:
            raise self._lost(f"with a malformed status line {status_line[:60]!r}") from None
        if 100 <= status < 200:  # an interim answer: the real one follows
            if status == 100 and self._awaiting_continue:
                self._awaiting_continue = False
                self._pump()
            return
        headers: dict[str, str] = {}
        for line in rest.split("\r\n"):
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        connection = headers.get("connection", "").lower()
        self._http10 = version == "HTTP/1.0"
        if self._http10:
            self._keep_alive = "keep-alive" in connection
        else:
            self._keep_alive = "close" not in connection
        self._status = status
        self._headers = headers
        if self._head_only or status in (204, 304):
            self._state, self._length = _LENGTH, 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = _CHUNKED
            self._chunk_step, self._chunk_left = _CHUNK_SIZE, 0
            self._out = io.BytesIO()
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                raise self._lost("with a malformed Content-Length") from None
            if self._length < 0:
                raise self._lost("with a negative Content-Length")
            self._state = _LENGTH
        else:
            self._state = _UNTIL_EOF
            self._out = io.BytesIO()

    def _open_sink(self, length: int, have: int) -> None:
        """Receive the rest of a big body straight into a buffer of its size."""
        sink_io = io.BytesIO()
        sink_io.seek(length - 1)
        sink_io.write(b"\0")
        sink = sink_io.getbuffer()
        sink[:have] = self._view[self._start : self._end]
        self._start = self._end = 0
        self._sink_io, self._sink, self._sink_pos = sink_io, sink, have

    def _move_out(self, count: int) -> None:
        assert self._out is not None
        self._out.write(self._view[self._start : self._start + count])
        self._start += count
        if self._start == self._end:
            self._start = self._end = 0

    def _take_out(self) -> bytes:
        out, self._out = self._out, None
        return out.getvalue() if out is not None else b""

    def _parse_chunks(self) -> Response | None:
        scratch = self._scratch
        while True:
            start, end = self._start, self._end
            step = self._chunk_step
            if step == _CHUNK_DATA:
                take = min(self._chunk_left, end - start)
                if take:
                    self._move_out(take)
                    self._chunk_left -= take
                if self._chunk_left:
                    break
                self._chunk_step = _CHUNK_END
            elif step == _CHUNK_END:
                if end - start < 2:
                    break
                if scratch[start : start + 2] != b"\r\n":
                    raise self._lost("with a malformed chunk")
                self._start += 2
                self._chunk_step = _CHUNK_SIZE
            elif step == _CHUNK_SIZE:
                line_end = scratch.find(b"\r\n", start, end)
                if line_end < 0:
                    if end - start > 1024:
                        raise self._lost("with a malformed chunk")
                    break
                try:
                    size = int(bytes(scratch[start:line_end]).split(b";", 1)[0], 16)
                except ValueError:
                    raise self._lost("with a malformed chunk") from None
                self._start = line_end + 2
                self._chunk_left = size
                self._chunk_step = _CHUNK_DATA if size else _TRAILERS
            else:
                if end - start >= 2 and scratch[start : start + 2] == b"\r\n":
                    self._start += 2
                else:
                    found = scratch.find(b"\r\n\r\n", start, end)
                    if found < 0:
                        break
                    self._start = found + 4
                self._state = _DONE
                return self._response(self._take_out(), framed=True)
        if self._eof:
            raise self._lost("in the middle of a chunked body")
        if self._end == SCRATCH and self._start:
            self._compact()
        return None

    def _lost(self, when: str) -> AnswerLost:
        reason = f": {self._error}" if self._error else ""
        return AnswerLost(f"the connection closed {when}{reason}")
