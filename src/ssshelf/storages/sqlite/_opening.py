"""Opening an SQLite file as an ssshelf store.

Readers (``create=False``) never create or alter anything: the file is opened
read-write *without* create (SQLite's ``mode=rw``), and only read.  Writers
(``create=True``) create a missing file, switch a new one to WAL and add the
table inside one ``BEGIN IMMEDIATE`` transaction that looks at the schema
again, so processes opening a new file at the same moment never race.

Whatever the mode, a file that is not an SQLite database, or one that holds
other tables and not ssshelf's, is refused before anything is written to it.
A file that is locked by another connection is tried again with back-off
until ``timeout`` has passed, then refused with :class:`StorageUnavailable`.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from urllib.parse import quote

from ...errors import ConfigurationError, StorageUnavailable
from ._codes import is_busy, primary_code

TABLE = "objects"
COLUMNS = ("key", "data", "version", "modified")
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    key BLOB PRIMARY KEY,
    data BLOB NOT NULL,
    version TEXT NOT NULL,
    modified REAL NOT NULL
) WITHOUT ROWID
"""
#: Written into the header of files ssshelf creates (``PRAGMA application_id``).
APPLICATION_ID = int.from_bytes(b"sshf", "big")
#: Longest pause between two tries at opening a locked file.
_MAX_PAUSE = 0.1


def open_connection(path: str, *, timeout: float, create: bool) -> sqlite3.Connection:
    """A connection to the ssshelf store at ``path``, checked (and with
    ``create``, initialised).  Raises :class:`ConfigurationError` for a path
    that is not, and cannot become, an ssshelf store, and
    :class:`StorageUnavailable` when the file stayed locked for ``timeout`` s."""
    if path == ":memory:" or path.startswith("file:"):
        raise ConfigurationError(
            f"SQLite store {path!r}: give a file path (for a store in memory use memory://, "
            "InMemoryStorage)"
        )
    absolute = os.path.abspath(path)
    directory = os.path.dirname(absolute)
    if not os.path.isdir(directory):
        raise ConfigurationError(
            f"cannot open SQLite store {path!r}: directory {directory!r} does not exist"
        )
    if not create and not os.path.exists(absolute):
        raise ConfigurationError(f"no SQLite store at {path!r} (nothing was created)")
    uri = f"file:{quote(absolute)}?mode={'rwc' if create else 'rw'}"
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        try:
            return _open_once(uri, path, max(0.0, deadline - time.monotonic()), create)
        except (sqlite3.Error, _Locked) as exc:
            left = deadline - time.monotonic()
            if isinstance(exc, sqlite3.Error) and not is_busy(exc):
                raise _refusal(path, exc, create) from None
            if left <= 0:
                raise StorageUnavailable(
                    f"cannot open SQLite store {path!r}: the file stayed locked by another "
                    f"connection for {timeout:g} s (timeout={timeout:g}); nothing was changed",
                    operation="open",
                ) from None
            time.sleep(min(left, pause * random.uniform(0.5, 1.0)))
            pause = min(_MAX_PAUSE, pause * 2)


def _open_once(uri: str, path: str, timeout: float, create: bool) -> sqlite3.Connection:
    connection = sqlite3.connect(
        uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        if _schema_names(connection):
            _check_table(connection, path)
        elif not create:
            raise ConfigurationError(f"{path!r} is not an ssshelf store (it is empty)")
        else:
            _initialise(connection, path)
        if create and _journal_mode(connection) != "wal":
            _use_wal(connection)
        connection.execute("PRAGMA synchronous=FULL")
    except BaseException:
        connection.close()
        raise
    return connection


def _schema_names(connection: sqlite3.Connection) -> set[str]:
    return {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}


def _check_table(connection: sqlite3.Connection, path: str) -> None:
    """Refuse a database that is not ssshelf's (read-only checks)."""
    columns = tuple(row[1] for row in connection.execute(f"PRAGMA table_info({TABLE})"))
    if not columns:
        names = sorted(_schema_names(connection))
        raise ConfigurationError(
            f"{path!r} is not an ssshelf store (it holds other tables: {', '.join(names)}); "
            "nothing was changed"
        )
    if columns != COLUMNS:
        raise ConfigurationError(
            f"{path!r} is not an ssshelf store (its table {TABLE!r} has columns "
            f"{', '.join(columns)}, not {', '.join(COLUMNS)}); nothing was changed"
        )
    (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    if application_id not in (0, APPLICATION_ID):
        raise ConfigurationError(
            f"{path!r} belongs to another application (application_id {application_id}); "
            "nothing was changed"
        )


def _initialise(connection: sqlite3.Connection, path: str) -> None:
    """Make an empty database an ssshelf store: WAL, then the table, checked
    again under the write lock (another process may have got there first)."""
    _use_wal(connection)
    connection.execute("BEGIN IMMEDIATE")
    try:
        if _schema_names(connection):
            _check_table(connection, path)
        else:
            connection.execute(SCHEMA)
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


class _Locked(Exception):
    """The journal mode could not be changed yet: another connection has the file open."""


def _use_wal(connection: sqlite3.Connection) -> None:
    (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
    if str(mode).lower() != "wal":
        raise _Locked


def _journal_mode(connection: sqlite3.Connection) -> str:
    (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    return str(mode).lower()


def _refusal(path: str, exc: sqlite3.Error, create: bool) -> ConfigurationError:
    """A one-line reason why ``path`` cannot be opened, for errors other than busy."""
    code = primary_code(exc)
    if code == sqlite3.SQLITE_NOTADB:
        reason = "it is not an SQLite database; nothing was changed"
    elif code == sqlite3.SQLITE_CORRUPT:
        reason = f"the database is damaged ({exc})"
    elif code == sqlite3.SQLITE_READONLY:
        reason = (
            "the file or its directory is read-only; open it with create=False to read it"
            if create
            else "the file or its directory is read-only"
        )
    elif code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        reason = f"{exc} (check that it exists and that you may read and write it)"
    else:
        reason = str(exc)
    return ConfigurationError(f"cannot open SQLite store {path!r}: {reason}")
