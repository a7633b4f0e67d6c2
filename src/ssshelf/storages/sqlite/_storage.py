"""SQLiteStorage: the storage contract over one SQLite file."""

from __future__ import annotations

import builtins
import itertools
import os
import weakref
from collections.abc import Sequence
from typing import cast

from ...errors import InvalidArgument, PreconditionFailed
from ..base import MAX_GET_BATCH, Capabilities, ListPage, StoredObject
from ..common import BaseStorage
from ._batch import MAX_PUT_BATCH, PutRequest
from ._opening import open_connection
from ._requests import (
    IF_ABSENT,
    IF_VERSION,
    PLAIN,
    Delete,
    DeleteMany,
    Get,
    GetMany,
    List,
    Put,
    PutMany,
)
from ._worker import Worker

_RawKeys = list[bytes]

_CAPABILITIES = Capabilities(
    conditional_put=True,
    conditional_delete=True,
    put_many=MAX_PUT_BATCH,
    get_many=MAX_GET_BATCH,
    get_many_in_one_request=True,
)


class SQLiteStorage(BaseStorage):
    """Objects in one SQLite file at ``path``.

    Durable (WAL journal, ``synchronous=FULL``: an answered write survives a
    crash of the process or the machine), safe for many asyncio tasks, for
    several threads each running its own event loop, and for several
    processes sharing the file.  All SQLite calls run on one worker thread
    per storage; requests that queue while it is busy are committed together,
    each with its own conditions and its own answer (see ``docs/design.md``,
    "SQLite").

    ``timeout`` bounds every wait: opening a file that another connection
    keeps locked, and each request, which fails with
    :class:`~ssshelf.errors.StorageUnavailable` (and was not applied) when it
    could not be started within ``timeout`` seconds of being sent.

    Beside the contract it offers ``put_many`` (many writes, one transaction)
    and ``get_many`` (many keys read in one transaction, one ``SELECT … IN``
    a few hundred keys), each one request to the worker.
    """

    #: Most writes one ``put_many`` takes.
    max_put_batch = MAX_PUT_BATCH

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
        ``check``, …) nothing is created or altered while opening: a missing
        file, an empty one or one without ssshelf's table raises
        :class:`~ssshelf.errors.ConfigurationError`.  A file that is not an
        SQLite database, or holds other tables and not ssshelf's, is refused
        either way, unchanged.  A file locked by another connection for more
        than ``timeout`` seconds raises
        :class:`~ssshelf.errors.StorageUnavailable`.
        """
        if not timeout > 0:
            raise InvalidArgument(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.path = os.fspath(path)
        self.timeout = timeout
        self._worker = Worker(
            open_connection(self.path, timeout=timeout, create=create),
            path=self.path,
            timeout=timeout,
        )
        # A storage dropped without close() still stops its thread and closes the file.
        weakref.finalize(self, self._worker.stop).atexit = False
        self._versions = _VersionTags()

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r})"

    # -- the contract -------------------------------------------------------------

    async def _get(self, key: str) -> StoredObject | None:
        return cast(StoredObject | None, await self._worker.submit(Get(key, key.encode())))

    async def _put(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> str:
        return cast(str, await self._worker.submit(self._request(key, data, if_absent, if_version)))

    async def _delete(self, key: str, if_version: str | None) -> None:
        await self._worker.submit(Delete(key, key.encode(), if_version))

    async def _delete_many(self, keys: Sequence[str]) -> None:
        await self._worker.submit(DeleteMany([(k.encode(),) for k in keys]))

    async def _list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        low = prefix.encode()
        raw_after = after.encode() if after is not None else None
        start_after = raw_after if raw_after is not None and raw_after >= low else None
        request = List(prefix, low, _prefix_end(low), start_after, limit)
        raw_keys = cast(_RawKeys, await self._worker.submit(request))
        keys = [k.decode() for k in raw_keys[:limit]]
        return ListPage(keys, keys[-1] if len(raw_keys) > limit else None)

    async def _close(self) -> None:
        """Finish the requests already sent, then close the file.  Safe to call
        twice, and from any event loop."""
        await self._worker.close()

    # -- optional capabilities: many reads, many writes, one request each ------------

    async def _get_many(self, keys: Sequence[str]) -> builtins.list[StoredObject | None]:
        """Read every key in one request: one transaction, so the answers are
        one moment's state, fetched with ``SELECT … IN`` a few hundred keys
        a statement."""
        answers = await self._worker.submit(GetMany(keys))
        return cast(builtins.list[StoredObject | None], answers)

    async def _put_many(
        self, puts: Sequence[PutRequest]
    ) -> builtins.list[str | PreconditionFailed]:
        """Store up to :attr:`max_put_batch` objects (distinct keys) in one request.

        Each write keeps its own condition (``if_absent`` / ``if_version``) and
        gets its own answer, in order: its new version tag, or the
        :class:`~ssshelf.errors.PreconditionFailed` it met (returned, not
        raised; that write changed nothing).  The writes are applied in one
        transaction: when the call returns they are all durable, and when it
        raises none of them was applied (unless the error is
        :class:`~ssshelf.errors.OutcomeUnknown`).  Bad input raises before
        anything is sent.  See :class:`SupportsPutMany`.
        """
        requests = [
            self._request(key, data, absent, version) for key, data, absent, version in puts
        ]
        raws = {r.raw for r in requests}
        answers = await self._worker.submit(PutMany(requests, raws))
        return cast(builtins.list[str | PreconditionFailed], answers)

    def _request(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> Put:
        if type(data) is not bytes:
            data = bytes(data)
        mode = IF_ABSENT if if_absent else PLAIN if if_version is None else IF_VERSION
        return Put(key, key.encode(), data, self._versions.next(), mode, if_version)


class _VersionTags:
    """Version tags unique to this storage: a random prefix and a counter
    (no system call a write, unlike a UUID each)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


def _prefix_end(prefix: bytes) -> bytes | None:
    """Smallest byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
