"""The simulated object store: the ground truth of a simulated run.

:class:`SimStore` holds the objects and applies requests to them one at a
time, synchronously, at the virtual time its clock says; the scheduler
decides *when* each request is applied.  It follows the storage contract of
:mod:`ssshelf.storages.base` (keys in UTF-8 byte order, which for valid
``str`` keys is code-point order; ``StoredObject.last_modified`` and
``read_at`` from the store's own clock) with quirks real stores have,
switchable per run (:class:`Quirks`).

Every applied write is appended to :attr:`SimStore.log` and passed to the
observers, which is how the checks see the store change request by request.

:class:`DirectStorage` is a :class:`~ssshelf.storages.base.Storage` over the
store (or over a frozen :meth:`SimStore.snapshot`) with no scheduler in
between: requests apply at once, without faults, at zero simulated time.
Set-up and checks use it.
"""

from __future__ import annotations

import bisect
import builtins
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ...errors import PreconditionFailed, UnsupportedOperation
from ...storages.base import (
    MAX_GET_BATCH,
    MAX_KEY_BYTES,
    MAX_LIST_LIMIT,
    Capabilities,
    ListPage,
    PutRequest,
    StoredObject,
    check_batch,
    check_conditions,
    check_get_batch,
    check_key,
    check_limit,
)

#: Virtual time 0.0 is this wall-clock instant (2025-06-15 14:40 UTC), so
#: timestamps look like real ones.  No real clock is ever read.
EPOCH = 1_750_000_000.0


@dataclass(frozen=True, slots=True)
class Quirks:
    """How the simulated store differs from an ideal S3.

    ``conditional_put`` False: an old server without conditional writes.  It
    ignores ``If-None-Match`` / ``If-Match`` (the write happens regardless)
    and reports ``supports_conditional_put`` and
    ``supports_conditional_delete`` False, as such a server's client would.

    ``conditional_delete`` False: Ceph RGW.  ``If-Match`` on DELETE is
    ignored, the delete happens; ``supports_conditional_delete`` is False.

    ``content_hash_versions``: a version is the MD5 of the bytes (S3 ETags),
    so equal bytes share a version.  Otherwise every write gets a new one.

    ``put_many``: the store applies many writes in one request, each on its
    own condition, all at one instant, and answers many reads in one request
    at one instant (SQLite's ``put_many`` and ``get_many``): bulk loads then
    take ``Writer.create_batch``'s path (``ssshelf.writes``), pages read
    their items in one request.  ``max_put_batch`` is how many writes one
    such request takes: a bulk load larger than that is split over several
    requests.

    ``conflict_rate``: S3's ``409 ConditionalRequestConflict``.  A
    conditional write applied while another conditional write of the same key
    is in flight fails with this probability, without being applied.  (The
    scheduler applies it: only it knows what is in flight.)
    """

    conditional_put: bool = True
    conditional_delete: bool = True
    content_hash_versions: bool = False
    conflict_rate: float = 0.0
    put_many: bool = False
    max_put_batch: int = 5

    @property
    def enforces_conditional_delete(self) -> bool:
        return self.conditional_put and self.conditional_delete

    def describe(self) -> str:
        parts = []
        if not self.conditional_put:
            parts.append("no-conditional-writes")
        elif not self.conditional_delete:
            parts.append("no-conditional-delete")
        if self.content_hash_versions:
            parts.append("md5-versions")
        if self.conflict_rate:
            parts.append(f"409-rate={self.conflict_rate:.2f}")
        if self.put_many:
            limit = f"<={self.max_put_batch}" if self.max_put_batch != 5 else ""
            parts.append(f"put-many{limit}")
        return ",".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class Record:
    """One stored object."""

    data: bytes
    version: str
    written_at: float


@dataclass(frozen=True, slots=True)
class Change:
    """One applied write: ``data`` None means the key was deleted.  ``by``
    names the request (``#N``), ``version`` is what the write made (None for
    a delete)."""

    at: float
    key: str
    data: bytes | None
    by: str
    version: str | None = None


def _timestamp(at: float) -> datetime:
    return datetime.fromtimestamp(EPOCH + at, UTC)


class ObjectTable:
    """Objects by key plus the keys in order: what a snapshot copies."""

    def __init__(self, objects: dict[str, Record] | None = None, keys: list[str] | None = None):
        self.objects: dict[str, Record] = objects if objects is not None else {}
        self.keys: list[str] = keys if keys is not None else []

    def copy(self) -> ObjectTable:
        return ObjectTable(dict(self.objects), list(self.keys))

    def read(self, key: str, now: float) -> StoredObject | None:
        found = self.objects.get(key)
        if found is None:
            return None
        return StoredObject(
            key, found.data, found.version, _timestamp(found.written_at), _timestamp(now)
        )

    def list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        keys = self.keys
        if after is not None and after >= prefix:
            index = bisect.bisect_right(keys, after)
        else:
            index = bisect.bisect_left(keys, prefix)
        out: list[str] = []
        for position in range(index, len(keys)):
            key = keys[position]
            if not key.startswith(prefix):
                break
            if len(out) == limit:
                return ListPage(out, out[-1])
            out.append(key)
        return ListPage(out, None)


class SimStore:
    """The simulated store.  ``clock()`` gives the virtual time of each request."""

    max_key_length = MAX_KEY_BYTES

    def __init__(self, quirks: Quirks, clock: Callable[[], float]) -> None:
        self.quirks = quirks
        self.clock = clock
        self.table = ObjectTable()
        #: Applied writes, in order.
        self.log: list[Change] = []
        #: Called with every applied write, right after it is applied.
        self.observers: list[Callable[[Change], None]] = []
        #: Bumped by every applied write: equal numbers mean equal contents.
        self.mutations = 0
        self._next_version = 0

    @property
    def supports_conditional_put(self) -> bool:
        return self.quirks.conditional_put

    @property
    def supports_conditional_delete(self) -> bool:
        return self.quirks.enforces_conditional_delete

    def snapshot(self) -> ObjectTable:
        """A frozen copy of the contents."""
        return self.table.copy()

    # -- requests, applied at once -------------------------------------------

    def get(self, key: str) -> StoredObject | None:
        return self.table.read(key, self.clock())

    def get_many(self, keys: Sequence[str]) -> builtins.list[StoredObject | None]:
        """Every key read at one instant."""
        now = self.clock()
        return [self.table.read(key, now) for key in keys]

    def list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        return self.table.list(prefix, after, limit)

    def put(
        self, key: str, data: bytes, *, if_absent: bool, if_version: str | None, by: str
    ) -> str:
        current = self.table.objects.get(key)
        if self.quirks.conditional_put:
            if if_absent and current is not None:
                raise PreconditionFailed(f"{key!r} already exists", operation="put", key=key)
            if if_version is not None and (current is None or current.version != if_version):
                raise PreconditionFailed(
                    f"{key!r} is not at version {if_version!r}", operation="put", key=key
                )
        if self.quirks.content_hash_versions:
            version = hashlib.md5(data, usedforsecurity=False).hexdigest()
        else:
            self._next_version += 1
            version = f"v{self._next_version}"
        now = self.clock()
        self.table.objects[key] = Record(bytes(data), version, now)
        if current is None:
            bisect.insort(self.table.keys, key)
        self._changed(Change(now, key, bytes(data), by, version))
        return version

    def put_many(
        self, puts: Sequence[PutRequest], *, by: str
    ) -> builtins.list[str | PreconditionFailed]:
        """Each write on its own condition, all now: a version or the refusal each."""
        answers: builtins.list[str | PreconditionFailed] = []
        for key, data, if_absent, if_version in puts:
            try:
                answers.append(
                    self.put(key, data, if_absent=if_absent, if_version=if_version, by=by)
                )
            except PreconditionFailed as refused:
                answers.append(refused)
        return answers

    def delete(self, key: str, *, if_version: str | None, by: str) -> None:
        current = self.table.objects.get(key)
        if (
            if_version is not None
            and self.quirks.enforces_conditional_delete
            and (current is None or current.version != if_version)
        ):
            raise PreconditionFailed(
                f"{key!r} is not at version {if_version!r}", operation="delete", key=key
            )
        self._remove(key, by)

    def delete_many(self, keys: Sequence[str], *, by: str) -> None:
        for key in keys:
            self._remove(key, by)

    def _remove(self, key: str, by: str) -> None:
        if self.table.objects.pop(key, None) is None:
            return
        keys = self.table.keys
        del keys[bisect.bisect_left(keys, key)]
        self._changed(Change(self.clock(), key, None, by))

    def _changed(self, change: Change) -> None:
        self.mutations += 1
        self.log.append(change)
        for observer in self.observers:
            observer(change)


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the store receives it (``kind`` is the Storage method)."""

    kind: str
    key: str = ""
    data: bytes = b""
    if_absent: bool = False
    if_version: str | None = None
    keys: tuple[str, ...] = ()
    after: str | None = None
    limit: int = MAX_LIST_LIMIT
    puts: tuple[PutRequest, ...] = ()

    @property
    def is_write(self) -> bool:
        return self.kind in ("put", "delete", "delete_many", "put_many")

    @property
    def is_conditional(self) -> bool:
        return self.if_absent or self.if_version is not None

    def apply(self, store: SimStore, by: str) -> object:
        """Apply to ``store`` now; returns the answer or raises PreconditionFailed."""
        kind = self.kind
        if kind == "get":
            return store.get(self.key)
        if kind == "get_many":
            return store.get_many(self.keys)
        if kind == "put":
            return store.put(
                self.key, self.data, if_absent=self.if_absent, if_version=self.if_version, by=by
            )
        if kind == "delete":
            store.delete(self.key, if_version=self.if_version, by=by)
            return None
        if kind == "delete_many":
            store.delete_many(self.keys, by=by)
            return None
        if kind == "put_many":
            return store.put_many(self.puts, by=by)
        return store.list(self.key, self.after, self.limit)

    def describe(self) -> str:
        """The request in a trace: kind, key(s) and conditions."""
        if self.kind in ("delete_many", "get_many"):
            return f"{self.kind} {list(self.keys)}"
        if self.kind == "put_many":
            writes = ", ".join(
                repr(p.key) + _conditions(p.if_absent, p.if_version) for p in self.puts
            )
            return f"put_many [{writes}]"
        if self.kind == "list":
            after = f" after={self.after!r}" if self.after is not None else ""
            return f"list {self.key!r}{after} limit={self.limit}"
        text = f"{self.kind} {self.key!r}"
        if self.kind == "put":
            text += f" ({len(self.data)} B)"
        return text + _conditions(self.if_absent, self.if_version)


def _conditions(if_absent: bool, if_version: str | None) -> str:
    """A write's conditions, as a trace shows them."""
    text = " if-absent" if if_absent else ""
    if if_version is not None:
        text += f" if-version={if_version}"
    return text


class DirectStorage:
    """A :class:`~ssshelf.storages.base.Storage` straight onto a :class:`SimStore`
    (no scheduler, no faults, no time passing), or read-only onto a snapshot."""

    max_key_length = MAX_KEY_BYTES

    def __init__(
        self,
        store: SimStore,
        snapshot: ObjectTable | None = None,
        *,
        by: str = "checker",
    ) -> None:
        self._store = store
        self._snapshot = snapshot
        self._by = by

    @property
    def supports_conditional_put(self) -> bool:
        return self._store.supports_conditional_put

    @property
    def supports_conditional_delete(self) -> bool:
        return self._store.supports_conditional_delete

    @property
    def capabilities(self) -> Capabilities:
        """The store's conditional writes, and ``get_many`` in one request."""
        return Capabilities(
            conditional_put=self.supports_conditional_put,
            conditional_delete=self.supports_conditional_delete,
            get_many=MAX_GET_BATCH,
            get_many_in_one_request=True,
        )

    def record(self, key: str) -> Record | None:
        """The stored record behind ``key`` (for checks that compare snapshots)."""
        table = self._snapshot if self._snapshot is not None else self._store.table
        return table.objects.get(key)

    def _writable(self, kind: str) -> SimStore:
        if self._snapshot is not None:
            raise UnsupportedOperation(f"{kind} on a read-only snapshot", operation=kind)
        return self._store

    async def get(self, key: str) -> StoredObject | None:
        check_key(key)
        if self._snapshot is not None:
            return self._snapshot.read(key, self._store.clock())
        return self._store.get(key)

    async def get_many(self, keys: Sequence[str]) -> builtins.list[StoredObject | None]:
        check_get_batch(keys, MAX_GET_BATCH)
        for key in keys:
            check_key(key)
        if self._snapshot is not None:
            now = self._store.clock()
            return [self._snapshot.read(key, now) for key in keys]
        return self._store.get_many(keys)

    async def put(
        self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        check_key(key)
        check_conditions(if_absent, if_version)
        return self._writable("put").put(
            key, data, if_absent=if_absent, if_version=if_version, by=self._by
        )

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        check_key(key)
        self._writable("delete").delete(key, if_version=if_version, by=self._by)

    async def delete_many(self, keys: Sequence[str]) -> None:
        check_batch(keys)
        for key in keys:
            check_key(key)
        self._writable("delete_many").delete_many(keys, by=self._by)

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        check_limit(limit)
        table = self._snapshot if self._snapshot is not None else self._store.table
        return table.list(prefix, after, limit)

    async def close(self) -> None:
        """Nothing to release: the store outlives its clients."""
