"""The embedded default: every object in one SQLite file.

Durable (WAL journal, ``synchronous=FULL``), safe for many asyncio tasks and
for several processes sharing the file.  All SQLite calls run on one worker
thread per storage, never on the event loop.  Requests that arrive while the
worker is busy are committed together in one transaction ("group commit"),
so a burst of writes costs one fsync, not one each; every request keeps its
own conditional semantics and its own result.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..errors import ConfigurationError, PreconditionFailed, StorageError
from .base import (
    MAX_KEY_BYTES,
    MAX_LIST_LIMIT,
    ListPage,
    StoredObject,
    check_batch,
    check_conditions,
    check_key,
    check_limit,
)

T = TypeVar("T")
_Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key BLOB PRIMARY KEY,
    data BLOB NOT NULL,
    version TEXT NOT NULL,
    modified REAL NOT NULL
) WITHOUT ROWID
"""
#: Most requests committed in one transaction.
_GROUP_LIMIT = 512


class SQLiteStorage:
    """Objects in one SQLite file at ``path`` (created when missing)."""

    max_key_length = MAX_KEY_BYTES
    supports_conditional_put = True
    supports_conditional_delete = True

    def __init__(
        self,
        path: str | os.PathLike[str] = "ssshelf.db",
        *,
        timeout: float = 30.0,
        create: bool = True,
    ) -> None:
        """Open the store at ``path``.

        With ``create`` (the default, for writers) a missing file is created
        with ssshelf's table.  With ``create=False`` (readers: ``ls``,
        ``check``, …) nothing is created or altered: a missing file or one
        without ssshelf's table raises :class:`.ConfigurationError`.  A file
        that holds other tables and not ssshelf's is refused either way.
        """
        self.path = os.fspath(path)
        self._connection = self._open(self.path, timeout, create)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._worker = threading.Thread(
            target=self._run, name=f"ssshelf-sqlite:{self.path}", daemon=True
        )
        self._worker.start()

    @staticmethod
    def _open(path: str, timeout: float, create: bool) -> sqlite3.Connection:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ConfigurationError(
                f"cannot open SQLite store {path!r}: directory {directory!r} does not exist"
            )
        if not create and not os.path.exists(path):
            raise ConfigurationError(f"no SQLite store at {path!r} (nothing was created)")
        try:
            connection = sqlite3.connect(
                path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "objects" not in tables and (tables or not create):
                connection.close()
                what = (
                    f"it holds other tables: {', '.join(sorted(tables))}"
                    if tables
                    else ("it is empty")
                )
                raise ConfigurationError(
                    f"{path!r} is not an ssshelf store ({what}); nothing was changed"
                )
            if create:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(_SCHEMA)
            connection.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            raise ConfigurationError(
                f"cannot open SQLite store {path!r}: {exc} "
                "(is it an SQLite database written by ssshelf, and readable?)"
            ) from None
        return connection

    # -- the worker ---------------------------------------------------------

    def _run(self) -> None:
        connection = self._connection
        while True:
            job = self._jobs.get()
            if job is None:
                break
            batch = [job]
            while len(batch) < _GROUP_LIMIT:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._jobs.put(None)
                    break
                batch.append(more)
            self._run_batch(connection, batch)
        connection.close()

    @staticmethod
    def _run_batch(connection: sqlite3.Connection, batch: list[_Job]) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for fn, _, _ in batch:
                try:
                    results.append((True, fn(connection)))
                except (PreconditionFailed, ValueError) as exc:
                    results.append((False, exc))
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            error = StorageError(f"SQLite request failed: {exc}", operation="sqlite")
            results = [(False, error)] * len(batch)
        for (_, loop, future), (ok, value) in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_settle, future, ok, value)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StorageError(f"SQLite store {self.path!r} is closed", operation="sqlite")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, loop, future))
        return await future

    # -- the contract ---------------------------------------------------------

    async def get(self, key: str) -> StoredObject | None:
        check_key(key)
        raw = key.encode()

        def run(db: sqlite3.Connection) -> StoredObject | None:
            row = db.execute(
                "SELECT data, version, modified FROM objects WHERE key = ?", (raw,)
            ).fetchone()
            if row is None:
                return None
            return StoredObject(
                key, row[0], row[1], datetime.fromtimestamp(row[2], UTC), datetime.now(UTC)
            )

        return await self._call(run)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        check_key(key)
        check_conditions(if_absent, if_version)
        raw = key.encode()
        payload = bytes(data)
        version = uuid.uuid4().hex[:20]

        def run(db: sqlite3.Connection) -> str:
            now = datetime.now(UTC).timestamp()
            if if_absent:
                cursor = db.execute(
                    "INSERT INTO objects VALUES (?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                    (raw, payload, version, now),
                )
                if cursor.rowcount == 0:
                    raise PreconditionFailed(f"{key!r} already exists", operation="put", key=key)
            elif if_version is not None:
                cursor = db.execute(
                    "UPDATE objects SET data = ?, version = ?, modified = ?"
                    " WHERE key = ? AND version = ?",
                    (payload, version, now, raw, if_version),
                )
                if cursor.rowcount == 0:
                    raise PreconditionFailed(
                        f"{key!r} is not at version {if_version!r}", operation="put", key=key
                    )
            else:
                db.execute(
                    "INSERT INTO objects VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE"
                    " SET data = excluded.data, version = excluded.version,"
                    " modified = excluded.modified",
                    (raw, payload, version, now),
                )
            return version

        return await self._call(run)

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        check_key(key)
        raw = key.encode()

        def run(db: sqlite3.Connection) -> None:
            if if_version is None:
                db.execute("DELETE FROM objects WHERE key = ?", (raw,))
                return
            cursor = db.execute(
                "DELETE FROM objects WHERE key = ? AND version = ?", (raw, if_version)
            )
            if cursor.rowcount == 0:
                raise PreconditionFailed(
                    f"{key!r} is not at version {if_version!r}", operation="delete", key=key
                )

        await self._call(run)

    async def delete_many(self, keys: Sequence[str]) -> None:
        check_batch(keys)
        for key in keys:
            check_key(key)
        raws = [(k.encode(),) for k in keys]

        def run(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM objects WHERE key = ?", raws)

        await self._call(run)

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        check_limit(limit)
        low = prefix.encode()
        start_after = after.encode() if after is not None and after.encode() >= low else None
        high = _prefix_end(low)

        def run(db: sqlite3.Connection) -> list[bytes]:
            clauses = ["key > ?" if start_after is not None else "key >= ?"]
            params: list[Any] = [start_after if start_after is not None else low]
            if high is not None:
                clauses.append("key < ?")
                params.append(high)
            params.append(limit + 1)
            rows = db.execute(
                f"SELECT key FROM objects WHERE {' AND '.join(clauses)} ORDER BY key LIMIT ?",
                params,
            ).fetchall()
            return [row[0] for row in rows]

        raw_keys = await self._call(run)
        keys = [k.decode() for k in raw_keys[:limit]]
        return ListPage(keys, keys[-1] if len(raw_keys) > limit else None)

    async def close(self) -> None:
        """Finish queued requests, then close the file.  Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        await asyncio.to_thread(self._worker.join)

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            self._jobs.put(None)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _prefix_end(prefix: bytes) -> bytes | None:
    """Smallest byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
