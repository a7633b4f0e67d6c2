"""The least an asyncio S3 client can do per request: the floor of client CPU.

Keep-alive connections through asyncio streams, each request signed with
SigV4 (ssshelf's signer, whose key is derived once a day — the cheapest
correct signing), answers read by their Content-Length, chunked, or until the
server closes.  Nothing else: no retries, no checks of the answer beyond its
status, no typed errors, no deadlines, no MD5, no flavor detection.  A
transport that does more costs more; how much more is what the bake-off
(``benchmarks/s3_transport.py``) shows.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from urllib.parse import urlsplit

from ssshelf.storages.s3._signing import EMPTY_SHA256, Keys, Signer, canonical_query, quote_path

_KEY = re.compile(rb"<Key>([^<]*)</Key>")
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class MinimalS3:
    """GET, PUT and ListObjectsV2 on one bucket, path-style, ``connections`` at most."""

    def __init__(
        self, url: str, access: str, secret: str, bucket: str, region: str, connections: int
    ) -> None:
        parts = urlsplit(url)
        self._host = parts.netloc
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._bucket = bucket
        self._signer = Signer(region)
        self._keys = Keys(access, secret, None)
        self._idle: list[Connection] = []
        self._gate = asyncio.Semaphore(connections)

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def request(
        self, method: str, path: str, query: str = "", body: bytes = b""
    ) -> tuple[int, bytes]:
        """One request; (status, body).  A kept connection the server closed meanwhile
        is replaced and the request sent again (the benchmark's requests are idempotent)."""
        async with self._gate:
            while self._idle:
                connection = self._idle.pop()
                try:
                    return await self._exchange(connection, method, path, query, body)
                except (ConnectionError, asyncio.IncompleteReadError):
                    connection[1].close()
            connection = await asyncio.open_connection(*self._address)
            return await self._exchange(connection, method, path, query, body)

    async def _exchange(
        self, connection: Connection, method: str, path: str, query: str, body: bytes
    ) -> tuple[int, bytes]:
        reader, writer = connection
        payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = self._signer.headers(self._keys, method, self._host, path, query, {}, payload_hash)
        lines = [f"{method} {path}?{query} HTTP/1.1" if query else f"{method} {path} HTTP/1.1"]
        lines.append(f"host: {self._host}")
        lines += [f"{name}: {value}" for name, value in signed.items()]
        lines.append(f"content-length: {len(body)}\r\n\r\n")
        writer.write("\r\n".join(lines).encode() + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        found = lowered.find(b"\r\ncontent-length:")
        if found >= 0:
            end = lowered.index(b"\r\n", found + 2)
            data = await reader.readexactly(int(lowered[found + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lowered:
            data = await _read_chunked(reader)
        else:
            data = await reader.read()
        closing = head.startswith(b"HTTP/1.0") or b"\r\nconnection: close" in lowered
        if closing or reader.at_eof():
            writer.close()
        else:
            self._idle.append(connection)
        return status, data

    async def put(self, key: str, body: bytes) -> None:
        status, _ = await self.request("PUT", f"/{self._bucket}/{quote_path(key)}", body=body)
        assert status == 200, status

    async def get(self, key: str) -> bytes:
        status, data = await self.request("GET", f"/{self._bucket}/{quote_path(key)}")
        assert status == 200, status
        return data

    async def list(self, prefix: str, limit: int) -> list[str]:
        query = canonical_query({"list-type": "2", "prefix": prefix, "max-keys": str(limit)})
        status, data = await self.request("GET", f"/{self._bucket}", query)
        assert status == 200, status
        return [key.decode() for key in _KEY.findall(data)]


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
        pass
    return b"".join(parts)
