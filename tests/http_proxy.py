"""A small forward HTTP proxy on 127.0.0.1, as corporate networks put in front of S3.

* A plain-http request in absolute form (``GET http://host:port/path``) is
  forwarded to ``host:port`` and the answer passed back (one request a
  connection).
* ``CONNECT host:port`` opens a tunnel: ``200``, then bytes both ways.
* ``hosts`` maps names only the proxy can resolve to real addresses, so an
  endpoint such as ``http://s3.behind-proxy.test:9000`` is reachable through
  the proxy and nowhere else.
* ``credentials`` (``"user:password"``) makes the proxy answer ``407`` to any
  request without that ``Proxy-Authorization: Basic``.

``requests`` records ``(method, target, headers)`` of every request received::

    async with ForwardProxy({"s3.behind-proxy.test": ("127.0.0.1", port)}) as proxy:
        ... HTTPS_PROXY=proxy.url ...
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ForwardProxy:
    """See the module docstring."""

    hosts: dict[str, tuple[str, int]] = field(default_factory=dict)
    credentials: str | None = None
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the proxy first"
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    @property
    def port(self) -> int:
        assert self._server is not None, "start the proxy first"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _resolve(self, host: str, port: int) -> tuple[str, int]:
        return self.hosts.get(host, (host, port))

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        return headers.get("proxy-authorization") == expected

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._one(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.requests.append((method, target, headers))
        if not self._authorized(headers):
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n'
                b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            return
        if method == "CONNECT":
            name, _, port = target.rpartition(":")
            host, real_port = self._resolve(name.strip("[]"), int(port))
            upstream_reader, upstream_writer = await asyncio.open_connection(host, real_port)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            return
        parts = urlsplit(target)
        assert parts.scheme == "http" and parts.hostname, f"not an absolute-form target: {target}"
        host, real_port = self._resolve(parts.hostname, parts.port or 80)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        forwarded = [f"{method} {path} HTTP/1.1"]
        skipped = {"proxy-authorization", "proxy-connection", "connection", "expect"}
        forwarded += [f"{n}: {v}" for n, v in headers.items() if n not in skipped]
        forwarded += ["connection: close", "", ""]
        upstream_reader, upstream_writer = await asyncio.open_connection(host, real_port)
        upstream_writer.write("\r\n".join(forwarded).encode("latin-1") + body)
        await upstream_writer.drain()
        await _pipe(upstream_reader, writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until ``reader`` ends, then end ``writer``'s side too."""
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
