"""Keep-alive connections of one event loop, bounded, directly or through an HTTP proxy.

A :class:`ConnectionPool` never has more than ``max_connections`` sockets open
(busy, idle or connecting): a request that finds none free waits for one.  An
idle connection is checked before it is reused — one the server closed while
it sat idle, or sent something on (a ``408``), is dropped and another taken,
so a request is never written into a dead socket that was known to be dead.

A :class:`Route` says how to reach an origin: directly, through an HTTP
proxy that forwards plain-http requests (absolute-form targets), or through
a ``CONNECT`` tunnel for https.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from typing import NamedTuple, cast

from .. import sending
from ._http import (
    AttemptTimedOut,
    ConnectFailed,
    Connection,
    Origin,
    ProxyRefused,
    Response,
    TlsFailed,
    TransportError,
)

#: Connections idle longer than this are not reused (servers close idle
#: connections after a while; closing them first saves the check failing).
MAX_IDLE_SECONDS = 10.0


class Route(NamedTuple):
    """How requests reach ``origin``: directly, or through the HTTP proxy ``proxy``."""

    origin: Origin
    proxy: Origin | None = None
    #: The ``Proxy-Authorization`` header value the proxy asks for, if any.
    proxy_authorization: str | None = None

    @property
    def tunnelled(self) -> bool:
        """https through the proxy: a ``CONNECT`` tunnel, TLS inside it."""
        return self.proxy is not None and self.origin.scheme == "https"

    @property
    def forwarded(self) -> bool:
        """Plain http through the proxy: requests name the whole URL."""
        return self.proxy is not None and self.origin.scheme == "http"

    def describe(self) -> str:
        origin = f"{self.origin.host}:{self.origin.port}"
        if self.proxy is None:
            return origin
        return f"{origin} through the proxy {self.proxy.host}:{self.proxy.port}"


def authority(origin: Origin) -> str:
    """``host:port`` (IPv6 addresses in brackets), as ``CONNECT`` names its target."""
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    return f"{host}:{origin.port}"


_Waiter = tuple["asyncio.Future[Connection | None]", Route]


class ConnectionPool:
    """Connections of one event loop, by route (see the module docstring).

    ``request`` makes one exchange on an idle connection or a new one.  A
    connection is reused only after a complete answer that allows it; any
    failure, timeout or cancellation aborts it.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        max_connections: int,
        tls: ssl.SSLContext | None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._max = max_connections
        self._tls = tls
        self._idle: dict[Route, list[Connection]] = {}
        #: Every open connection, busy or idle.
        self._open: set[Connection] = set()
        #: Connections open or being opened; never above ``max_connections``.
        self._count = 0
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self.closed = False

    async def request(
        self,
        route: Route,
        head: bytes,
        body: bytes,
        *,
        head_only: bool,
        expect_continue: bool,
        idle: float,
        give_up_at: float,
        send_by: float | None = None,
    ) -> Response:
        """One exchange (see :meth:`Connection.exchange`); ``give_up_at`` is in
        loop time, and so is ``send_by``, by when a connection must be had
        (:class:`AttemptTimedOut` with ``sent=False`` otherwise)."""
        if self.closed:
            raise ConnectFailed("the connection pool is closed")
        connection = self._take_idle(route)
        if connection is None:
            wait_until = give_up_at if send_by is None else min(give_up_at, send_by)
            connection = await self._acquire(route, wait_until)
        sending.sent()
        try:
            response = await connection.exchange(
                head,
                body,
                head_only=head_only,
                expect_continue=expect_continue,
                idle=idle,
                give_up_at=give_up_at,
            )
        except BaseException:
            self._discard(connection)
            raise
        self._release(connection)
        return response

    def close(self) -> None:
        """Abort every connection, idle or busy; exchanges in progress fail at once."""
        self.closed = True
        self._idle.clear()
        for connection in list(self._open):
            connection.abort()
        self._open.clear()
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectFailed("the connection pool is closed"))

    # -- slots --------------------------------------------------------------------

    async def _acquire(self, route: Route, give_up_at: float) -> Connection:
        """A connection for ``route``: a new one if the bound allows, else the next one freed."""
        if self._count >= self._max:
            self._close_an_idle_connection()
        if self._count < self._max:
            self._count += 1
            return await self._open_connection(route, give_up_at)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        entry = (waiter, route)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout_at(give_up_at):
                handed = await waiter
        except BaseException as exc:
            if entry in self._waiters:
                self._waiters.remove(entry)
            self._give_back(waiter)
            if isinstance(exc, TimeoutError):
                raise AttemptTimedOut(
                    f"all {self._max} connections stayed busy until the call's deadline",
                    sent=False,
                ) from None
            raise
        if handed is None:  # a slot, not a connection: open one
            return await self._open_connection(route, give_up_at)
        return handed

    def _give_back(self, waiter: asyncio.Future[Connection | None]) -> None:
        """What a waiter that stopped waiting was handed: passed on to the next."""
        if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
            return
        handed = waiter.result()
        if handed is None:
            self._free_slot()
        else:
            self._release(handed)

    def _free_slot(self) -> None:
        """A connection is gone: its slot goes to the first waiter, if any."""
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._count -= 1

    def _close_an_idle_connection(self) -> None:
        for idle in self._idle.values():
            if idle:
                connection = idle.pop(0)
                connection.close()
                self._open.discard(connection)
                self._count -= 1
                return

    def _take_idle(self, route: Route) -> Connection | None:
        idle = self._idle.get(route)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if now - connection.idle_since > MAX_IDLE_SECONDS or connection.dropped():
                self._discard(connection)
                continue
            return connection
        return None

    def _release(self, connection: Connection) -> None:
        if not connection.reusable or connection.closed or self.closed:
            self._discard(connection)
            return
        while self._waiters:
            waiter, route = self._waiters.popleft()
            if waiter.done():
                continue
            if route == connection.key:
                waiter.set_result(connection)
            else:  # the slot goes to a request for another route
                connection.close()
                self._open.discard(connection)
                waiter.set_result(None)
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(cast(Route, connection.key), []).append(connection)

    def _discard(self, connection: Connection) -> None:
        connection.abort()
        if connection in self._open:
            self._open.discard(connection)
            self._free_slot()

    # -- opening --------------------------------------------------------------------

    async def _open_connection(self, route: Route, give_up_at: float) -> Connection:
        """Open a connection in a slot this call already holds."""
        try:
            connection = await self._connect(route, give_up_at)
        except BaseException:
            self._free_slot()
            raise
        if self.closed:
            connection.abort()
            self._free_slot()
            raise ConnectFailed("the connection pool is closed")
        self._open.add(connection)
        return connection

    async def _connect(self, route: Route, give_up_at: float) -> Connection:
        loop = asyncio.get_running_loop()
        origin = route.origin
        tls = self._tls if origin.scheme == "https" else None
        assert tls is not None or origin.scheme == "http", "https without TLS settings"
        direct_tls = tls if route.proxy is None else None
        target = route.proxy or origin
        seconds = max(0.0, min(self._connect_timeout, give_up_at - loop.time()))
        connection: Connection | None = None
        try:
            async with asyncio.timeout(seconds):
                _, connection = await loop.create_connection(
                    lambda: Connection(route, loop),
                    target.host,
                    target.port,
                    ssl=direct_tls,
                    server_hostname=origin.host if direct_tls is not None else None,
                )
                if route.tunnelled:
                    assert tls is not None
                    await self._tunnel(connection, route, tls, loop.time() + seconds)
        except TimeoutError:
            if connection is not None:
                connection.abort()
            raise ConnectFailed(
                f"connecting to {route.describe()} took over {seconds:.3g} s"
            ) from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            if connection is not None:
                connection.abort()
            raise TlsFailed(f"TLS with {route.describe()} failed: {exc}") from None
        except OSError as exc:
            if connection is not None:
                connection.abort()
            raise ConnectFailed(f"cannot connect to {route.describe()}: {exc}") from None
        except BaseException:
            if connection is not None:
                connection.abort()
            raise
        return connection

    async def _tunnel(
        self, connection: Connection, route: Route, tls: ssl.SSLContext, give_up_at: float
    ) -> None:
        """``CONNECT`` through the proxy, then TLS with the origin inside the tunnel."""
        origin = route.origin
        target = authority(origin)
        lines = [f"CONNECT {target} HTTP/1.1", f"host: {target}"]
        if route.proxy_authorization:
            lines.append(f"proxy-authorization: {route.proxy_authorization}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        loop = asyncio.get_running_loop()
        try:
            answer = await connection.exchange(
                head,
                b"",
                head_only=True,
                expect_continue=False,
                idle=max(0.0, give_up_at - loop.time()),
                give_up_at=give_up_at,
            )
        except TransportError as exc:
            raise ConnectFailed(
                f"the proxy at {route.describe()} did not open a tunnel: {exc}"
            ) from None
        if answer.status // 100 != 2:
            hint = ""
            if answer.status == 407:
                hint = " (it asks for credentials: put them in the proxy URL)"
            raise ProxyRefused(
                f"the proxy at {route.describe()} refused to open a tunnel:"
                f" HTTP {answer.status}{hint}",
                status=answer.status,
            )
        assert connection.transport is not None
        transport = await loop.start_tls(
            connection.transport, connection, tls, server_hostname=origin.host
        )
        assert transport is not None
        connection.attach(transport)
