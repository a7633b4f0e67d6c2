"""The requests an :class:`SQLiteStorage` sends to its worker thread.

A request is built and checked on its caller's thread (bad input never gets
this far), then :meth:`Request.run` executes it on the worker thread inside
the transaction of a group commit.  ``run`` either returns the answer or
raises: :class:`~ssshelf.errors.SSShelfError` for an answer such as
"precondition failed" (nothing was changed), anything else for a failure
the worker reports as a :class:`~ssshelf.errors.StorageError` naming the
request.  A request whose failure could leave part of its work applied says
so (``partial``), and the worker runs it inside a savepoint.
"""

from __future__ import annotations

import asyncio
import functools
import operator
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any, ClassVar, cast

from ...errors import PreconditionFailed, StorageError, StorageUnavailable
from ..base import StoredObject
from ._codes import is_busy


@dataclass(frozen=True, slots=True)
class Batch:
    """What every request of one group commit shares."""

    db: sqlite3.Connection
    #: The time of the group commit (seconds since the epoch, and as a datetime).
    now: float
    now_utc: datetime
    path: str
    #: Rows an INSERT carries (:func:`rows_a_statement`).
    rows_a_statement: int


class TransactionLost(Exception):
    """SQLite rolled back the whole transaction (disk full, I/O error, a
    trigger's ``RAISE(ROLLBACK)``): no request of the batch was applied."""


class Request:
    """One call of a storage method, answered on its caller's event loop."""

    __slots__ = ("deadline", "future", "key", "loop")
    #: The storage method, for error messages and ``StorageError.operation``.
    operation: ClassVar[str]
    #: Needs the write lock (``BEGIN IMMEDIATE``).
    writes: ClassVar[bool] = False
    #: A failed run may have applied part of its work (several statements).
    partial: ClassVar[bool] = False

    key: str | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    #: ``time.monotonic()`` after which the request is not started any more.
    deadline: float

    def run(self, batch: Batch) -> object:
        """Execute the request in the open transaction; return its answer."""
        raise NotImplementedError

    def describe(self) -> str:
        """``put of 'key'``: the request, for messages."""
        return f"{self.operation} of {self.key!r}"

    def failed(self, message: str, *, kind: type[StorageError] = StorageError) -> StorageError:
        """A new error for this request (each request gets its own instance)."""
        return kind(f"SQLite {self.describe()}: {message}", operation=self.operation, key=self.key)


# -- reads ---------------------------------------------------------------------

_GET = "SELECT data, version, modified FROM objects WHERE key = ?"
_LIST = {
    (after, bounded): (
        f"SELECT key FROM objects WHERE key {'>' if after else '>='} ?"
        f"{' AND key < ?' if bounded else ''} ORDER BY key LIMIT ?"
    )
    for after in (False, True)
    for bounded in (False, True)
}


class Get(Request):
    __slots__ = ("raw",)
    operation = "get"

    def __init__(self, key: str, raw: bytes) -> None:
        self.key = key
        self.raw = raw

    def run(self, batch: Batch) -> StoredObject | None:
        row = batch.db.execute(_GET, (self.raw,)).fetchone()
        if row is None:
            return None
        data, version, modified = row
        if type(data) is not bytes or type(version) is not str:
            raise TypeError(
                f"the row holds {type(data).__name__} data, {type(version).__name__} version"
            )
        return StoredObject(
            cast(str, self.key), data, version, datetime.fromtimestamp(modified, UTC), batch.now_utc
        )


_GET_SOME = "SELECT key, data, version, modified FROM objects WHERE key IN ({})"
#: Most keys one ``SELECT … IN`` carries (fewer where SQLite allows fewer parameters).
KEYS_A_STATEMENT = 512


@functools.cache
def _select_keys(count: int) -> str:
    return _GET_SOME.format(", ".join("?" * count))


def _statement_size(count: int, most: int) -> int:
    """``count`` keys rounded up to a power of two (at most ``most``), so that
    a few statements serve every batch size (SQLite caches them by text)."""
    size = 8
    while size < count:
        size *= 2
    return min(size, most)


class GetMany(Request):
    """Many keys read in one transaction: one ``SELECT … IN`` a chunk of keys."""

    __slots__ = ("keys",)
    operation = "get_many"

    def __init__(self, keys: Sequence[str]) -> None:
        self.key = None
        self.keys = keys

    def describe(self) -> str:
        return f"get_many of {len(self.keys)} keys"

    def run(self, batch: Batch) -> list[StoredObject | None]:
        db = batch.db
        most = max(1, min(KEYS_A_STATEMENT, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)))
        raws = [key.encode() for key in self.keys]
        wanted = list(dict.fromkeys(raws))
        rows: dict[bytes, tuple[bytes, str, float]] = {}
        for start in range(0, len(wanted), most):
            chunk = wanted[start : start + most]
            size = _statement_size(len(chunk), most)
            chunk += [chunk[-1]] * (size - len(chunk))  # repeats change nothing in IN (…)
            for raw, data, version, modified in db.execute(_select_keys(size), chunk):
                rows[raw] = (data, version, modified)
        now = batch.now_utc
        answers: list[StoredObject | None] = []
        for key, raw in zip(self.keys, raws, strict=True):
            row = rows.get(raw)
            if row is None:
                answers.append(None)
                continue
            data, version, modified = row
            if type(data) is not bytes or type(version) is not str:
                raise TypeError(
                    f"the row of {key!r} holds {type(data).__name__} data,"
                    f" {type(version).__name__} version"
                )
            answers.append(
                StoredObject(key, data, version, datetime.fromtimestamp(modified, UTC), now)
            )
        return answers


class List(Request):
    __slots__ = ("high", "limit", "low", "start_after")
    operation = "list"

    def __init__(
        self, prefix: str, low: bytes, high: bytes | None, start_after: bytes | None, limit: int
    ) -> None:
        self.key = prefix
        self.low = low
        self.high = high
        self.start_after = start_after
        self.limit = limit

    def describe(self) -> str:
        return f"list of prefix {self.key!r}"

    def run(self, batch: Batch) -> list[bytes]:
        after = self.start_after is not None
        params: list[object] = [self.start_after if after else self.low]
        if self.high is not None:
            params.append(self.high)
        params.append(self.limit + 1)
        rows = batch.db.execute(_LIST[after, self.high is not None], params).fetchall()
        return [row[0] for row in rows]


# -- deletes -------------------------------------------------------------------

_DELETE = "DELETE FROM objects WHERE key = ?"
_DELETE_IF = "DELETE FROM objects WHERE key = ? AND version = ?"


class Delete(Request):
    __slots__ = ("if_version", "raw")
    operation = "delete"
    writes = True

    def __init__(self, key: str, raw: bytes, if_version: str | None) -> None:
        self.key = key
        self.raw = raw
        self.if_version = if_version

    def run(self, batch: Batch) -> None:
        if self.if_version is None:
            batch.db.execute(_DELETE, (self.raw,))
        elif batch.db.execute(_DELETE_IF, (self.raw, self.if_version)).rowcount == 0:
            raise PreconditionFailed(
                f"{self.key!r} is not at version {self.if_version!r}",
                operation="delete",
                key=self.key,
            )


class DeleteMany(Request):
    __slots__ = ("raws",)
    operation = "delete_many"
    writes = True
    partial = True

    def __init__(self, raws: list[tuple[bytes]]) -> None:
        self.key = None
        self.raws = raws

    def describe(self) -> str:
        return f"delete_many of {len(self.raws)} keys"

    def run(self, batch: Batch) -> None:
        batch.db.executemany(_DELETE, self.raws)


# -- puts ----------------------------------------------------------------------

PLAIN, IF_ABSENT, IF_VERSION = 0, 1, 2
_PUT = {
    PLAIN: "INSERT INTO objects VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE"
    " SET data = excluded.data, version = excluded.version, modified = excluded.modified",
    IF_ABSENT: "INSERT INTO objects VALUES (?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
    IF_VERSION: "UPDATE objects SET data = ?, version = ?, modified = ?"
    " WHERE key = ? AND version = ?",
}


class Put(Request):
    """One ``put``; also one write of a ``put_many``."""

    __slots__ = ("data", "if_version", "mode", "raw", "row", "version")
    operation = "put"
    writes = True

    def __init__(
        self, key: str, raw: bytes, data: bytes, version: str, mode: int, if_version: str | None
    ) -> None:
        self.key = key
        self.raw = raw
        self.data = data
        self.version = version
        self.mode = mode
        self.if_version = if_version
        #: What an INSERT of many rows takes for this one (the time aside).
        self.row = (raw, data, version)

    def params(self, now: float) -> tuple[object, ...]:
        if self.mode == IF_VERSION:
            return (self.data, self.version, now, self.raw, self.if_version)
        return (self.raw, self.data, self.version, now)

    def refusal(self) -> PreconditionFailed:
        if self.mode == IF_ABSENT:
            message = f"{self.key!r} already exists"
        else:
            message = f"{self.key!r} is not at version {self.if_version!r}"
        return PreconditionFailed(message, operation="put", key=self.key)

    def writes_of(self) -> Sequence[Put]:
        """The writes of this request (itself)."""
        return (self,)

    def applied(self) -> str:
        """The answer once the write has been applied."""
        return self.version

    def run(self, batch: Batch) -> str:
        cursor = batch.db.execute(_PUT[self.mode], self.params(batch.now))
        if self.mode != PLAIN and cursor.rowcount == 0:
            raise self.refusal()
        return self.version


class PutMany(Request):
    __slots__ = ("puts", "raws")
    operation = "put_many"
    writes = True
    partial = True

    def __init__(self, puts: list[Put], raws: set[bytes]) -> None:
        self.key = None
        self.puts = puts
        #: The keys written (distinct: one a put).
        self.raws = raws

    def describe(self) -> str:
        return f"put_many of {len(self.puts)} objects"

    def writes_of(self) -> Sequence[Put]:
        """The writes of this request."""
        return self.puts

    def applied(self) -> list[str | PreconditionFailed]:
        """The answer once every write has been applied."""
        return [put.version for put in self.puts]

    def run(self, batch: Batch) -> list[str | PreconditionFailed]:
        answers: list[str | PreconditionFailed] = []
        for put, result in zip(self.puts, apply_puts(batch, self.puts), strict=True):
            if isinstance(result, StorageError) and not isinstance(result, PreconditionFailed):
                # the worker's savepoint undoes the writes already applied
                error = StorageError(
                    f"SQLite {self.describe()}: the write of {put.key!r} failed"
                    f" ({result.__cause__!r}); none of the batch was applied",
                    operation=self.operation,
                    key=put.key,
                )
                raise error from result.__cause__
            answers.append(result)
        return answers


def apply_puts(batch: Batch, puts: Sequence[Put]) -> list[str | StorageError]:
    """Apply puts of distinct keys, each on its own condition; return each
    one's new version or the error it met (nothing of a failed one applied).

    Puts of one kind go in with one ``executemany``; when that does not apply
    every one of them (a condition failed, a row was refused), it is undone
    and they are applied one at a time to learn which failed.
    """
    results: list[str | StorageError] = [""] * len(puts)
    by_mode: dict[int, list[int]] = {}
    for index, put in enumerate(puts):
        by_mode.setdefault(put.mode, []).append(index)
    for mode, indices in by_mode.items():
        if len(indices) > 1 and _apply_together(batch, [puts[i] for i in indices], mode):
            for i in indices:
                results[i] = puts[i].version
            continue
        for i in indices:
            results[i] = apply_one(batch, puts[i])
    return results


def apply_all(batch: Batch, puts: Sequence[Put]) -> bool:
    """Apply puts of distinct keys all together, or none of them: ``True``
    when every one was applied (each kind of put in as few statements as
    possible), ``False`` when one was refused or failed (nothing applied)."""
    db = batch.db
    by_mode: dict[int, list[Put]] = {}
    for put in puts:
        by_mode.setdefault(put.mode, []).append(put)
    db.execute("SAVEPOINT ssshelf_all")
    try:
        applied = all(
            _apply_mode(batch, group, mode) == len(group) for mode, group in by_mode.items()
        )
    except Exception as exc:
        if not db.in_transaction:
            raise TransactionLost(exc) from exc
        applied = False
    if not applied:
        db.execute("ROLLBACK TO ssshelf_all")
    db.execute("RELEASE ssshelf_all")
    return applied


def apply_one(batch: Batch, put: Put) -> str | StorageError:
    """One put on its own (a single statement: SQLite undoes it if it fails)."""
    try:
        cursor = batch.db.execute(_PUT[put.mode], put.params(batch.now))
    except Exception as exc:
        if not batch.db.in_transaction:
            raise TransactionLost(exc) from exc
        return unexpected(put, exc, batch.path)
    if put.mode != PLAIN and cursor.rowcount == 0:
        return put.refusal()
    return put.version


#: Most rows one INSERT of a batch carries (fewer where SQLite allows fewer
#: parameters a statement: three a row, and the time).
ROWS_A_STATEMENT = 200


def rows_a_statement(db: sqlite3.Connection) -> int:
    """Rows an INSERT of a batch carries on ``db`` (its limit of parameters)."""
    return max(
        1, min(ROWS_A_STATEMENT, (db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 1) // 3)
    )


_by_key = operator.attrgetter("raw")
_row = operator.attrgetter("row")


@functools.cache
def _insert_rows(mode: int, rows: int) -> str:
    """``_PUT[mode]`` (an INSERT) for ``rows`` rows in one statement: ``?1``
    is the time, then key, data and version of each row."""
    values = ", ".join(f"(?{3 * i + 2}, ?{3 * i + 3}, ?{3 * i + 4}, ?1)" for i in range(rows))
    return _PUT[mode].replace("VALUES (?, ?, ?, ?)", "VALUES " + values)


def _insert_many(batch: Batch, puts: list[Put], mode: int) -> int:
    """INSERT ``puts`` many rows a statement, in key order; returns the rows applied.

    One statement of many rows is one step of SQLite's engine, which runs
    without Python's GIL, and one time the thread needs the GIL back (where
    ``executemany`` steps the engine once a row).  In key order SQLite's
    B-tree is filled far faster.
    """
    applied = 0
    puts = sorted(puts, key=_by_key)
    size = batch.rows_a_statement
    for start in range(0, len(puts), size):
        chunk = puts[start : start + size]
        values: list[object] = [batch.now]
        values.extend(chain.from_iterable(map(_row, chunk)))
        applied += batch.db.execute(_insert_rows(mode, len(chunk)), values).rowcount
    return applied


def _apply_mode(batch: Batch, puts: list[Put], mode: int) -> int:
    """Apply puts of one kind (distinct keys) together; the number applied."""
    if mode == IF_VERSION:
        return batch.db.executemany(_PUT[mode], [p.params(batch.now) for p in puts]).rowcount
    return _insert_many(batch, puts, mode)


def _apply_together(batch: Batch, puts: list[Put], mode: int) -> bool:
    db = batch.db
    db.execute("SAVEPOINT ssshelf_puts")
    try:
        applied = _apply_mode(batch, puts, mode)
    except Exception as exc:
        if not db.in_transaction:
            raise TransactionLost(exc) from exc
        applied = -1
    if applied != len(puts):
        db.execute("ROLLBACK TO ssshelf_puts")
    db.execute("RELEASE ssshelf_puts")
    return applied == len(puts)


def unexpected(request: Request, exc: BaseException, path: str) -> StorageError:
    """The error a caller gets for a request that failed in an unexpected way
    (:class:`StorageUnavailable` when another connection held a lock)."""
    busy = isinstance(exc, sqlite3.Error) and is_busy(exc)
    error = request.failed(
        f"failed in {path!r}: {type(exc).__name__}: {exc}",
        kind=StorageUnavailable if busy else StorageError,
    )
    error.__cause__ = exc
    return error
