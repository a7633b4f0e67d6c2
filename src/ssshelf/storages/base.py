"""The storage contract every backend implements.

A storage is a flat, ordered map from string keys to bytes with conditional
writes.  Each public ``async def`` method is exactly one request to the store,
which is what lets wrappers (counting, latency, faults, caching) stand in
front of any backend unchanged.

Keys are compared as UTF-8 bytes (S3's ListObjectsV2 order).  Version tags are
opaque strings: a new one is returned by every successful ``put``; two puts of
identical bytes may share a tag on stores that hash content (S3 ETags), so
callers that need to tell writes apart write distinct bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NamedTuple, Protocol, cast, runtime_checkable

from .._concurrency import gather_all
from ..errors import InvalidArgument, InvalidKeyError, PreconditionFailed

#: S3's limit on a key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: The most keys one ``list`` call returns (ListObjectsV2's page size).
MAX_LIST_LIMIT = 1000
#: The most keys one DeleteObjects request takes.
MAX_DELETE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object as read back: its bytes and its current version tag.

    ``last_modified`` (when the object was written) and ``read_at`` (when the
    store answered, e.g. S3's ``Date`` header) are both read off the store's
    own clock, so :attr:`age` never mixes the store's clock with a client's.
    """

    key: str
    data: bytes
    version: str
    last_modified: datetime | None = None
    read_at: datetime | None = None

    @property
    def age(self) -> float | None:
        """Seconds from the write to the answer, by the store's clock; ``None``
        when the store did not say both times."""
        if self.last_modified is None or self.read_at is None:
            return None
        return max(0.0, (self.read_at - self.last_modified).total_seconds())


@dataclass(frozen=True, slots=True)
class ListPage:
    """Keys in ascending UTF-8 byte order.

    ``next_after`` is set only when more keys may follow; pass it back as
    ``after`` to get the next page.
    """

    keys: list[str]
    next_after: str | None = None


#: Most writes one ``put_many`` request takes.
MAX_PUT_BATCH = 1000
#: Most keys one ``get_many`` call takes.
MAX_GET_BATCH = 1000


class PutRequest(NamedTuple):
    """One write of a :meth:`SupportsPutMany.put_many` batch, with
    :meth:`~ssshelf.storages.base.Storage.put`'s arguments (immutable; a
    tuple, made cheaply by the thousand)."""

    key: str
    data: bytes
    if_absent: bool = False
    if_version: str | None = None


class NotModified(enum.Enum):
    """The type of :data:`NOT_MODIFIED`."""

    NOT_MODIFIED = "not-modified"


#: What ``get_if_changed`` returns when the object is still at the given version.
NOT_MODIFIED: Final = NotModified.NOT_MODIFIED

#: What ``get_if_changed`` answers.
Revalidated = StoredObject | None | Literal[NotModified.NOT_MODIFIED]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a storage offers beyond the five requests every storage has.

    One value, read from ``storage.capabilities`` (or, for a storage written
    to the :class:`Storage` protocol alone, worked out by
    :func:`capabilities_of`).  A wrapper forwards the capabilities of what it
    wraps, and every method that goes with them: wrapping never takes a
    capability away unless the wrapper says so in its own value.  The value
    may change over a storage's life (S3Storage learns
    ``conditional_delete`` from the server's first answer), so read it when
    deciding, not once.
    """

    #: ``put(if_absent=…, if_version=…)`` is enforced atomically by the store.
    conditional_put: bool = False
    #: ``delete(if_version=…)`` is enforced atomically by the store.
    conditional_delete: bool = False
    #: ``put_many`` is offered: the most writes one request takes; ``None``: not offered.
    put_many: int | None = None
    #: ``get_many`` is offered: the most keys one call takes; ``None``: not offered
    #: (read key by key, :func:`read_many` does).
    get_many: int | None = None
    #: ``get_many`` is one request to the store, whatever the number of keys
    #: (memory, SQLite); ``False``: one request a key, all sent at once (S3).
    get_many_in_one_request: bool = False
    #: ``get_if_changed(key, version)`` is offered (one conditional request).
    get_if_changed: bool = False
    #: Some layer may answer ``get`` and ``get_many`` from memory; ``get_fresh``
    #: then asks the store itself (see :func:`read_fresh`).
    caches_reads: bool = False


@runtime_checkable
class SupportsPutMany(Protocol):
    """A storage with a ``put_many`` method.

    Whether it works on a given storage is its capabilities' ``put_many``
    (a wrapper has the method whatever it wraps): look there, with
    :func:`~ssshelf.storages.base.capabilities_of`, rather than at ``isinstance``.
    """

    @property
    def max_put_batch(self) -> int:
        """Most writes one :meth:`put_many` takes."""
        ...

    async def put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
        """Apply each write on its own condition; answer each, in order.

        An answer is the write's new version tag, or the
        :class:`~ssshelf.errors.PreconditionFailed` it met (returned, not
        raised: that write changed nothing).  Keys must be distinct.  When
        the call raises, no write was applied, unless the error is
        :class:`~ssshelf.errors.OutcomeUnknown`.
        """
        ...


class SupportsGetMany(Protocol):
    """A storage with a ``get_many`` method (see :attr:`Capabilities.get_many`)."""

    async def get_many(self, keys: Sequence[str]) -> list[StoredObject | None]:
        """``get`` of each key, answered in order (``None`` where missing).

        At most ``capabilities.get_many`` keys; a key may appear more than
        once.  The answers are read as one request (memory, SQLite: one
        transaction, one moment) or as one request a key sent together (S3:
        each answer as fresh as a ``get`` made at that moment).  When the
        call raises, the error is one a ``get`` of some key raised.
        """
        ...


class SupportsFreshReads(Protocol):
    """A storage that caches reads and can be asked past its cache."""

    async def get_fresh(self, key: str) -> StoredObject | None:
        """``get`` answered by the store itself, never by a cache."""
        ...


class SupportsRevalidation(Protocol):
    """A storage that answers "has this key changed since ``version``?" in one request."""

    async def get_if_changed(self, key: str, version: str) -> Revalidated:
        """:data:`NOT_MODIFIED` if ``key`` is at ``version``, else its object or ``None``."""
        ...


@runtime_checkable
class Storage(Protocol):
    """What ssshelf needs from a store.  See the module docstring.

    Optional features (batched writes and reads, revalidation, a cache) are
    not part of the protocol: a storage names those it has in a
    ``capabilities`` attribute (:class:`Capabilities`), which
    :func:`capabilities_of` reads.  :class:`~ssshelf.storages.common.BaseStorage`
    is the base every storage of this package is built on.
    """

    @property
    def max_key_length(self) -> int:
        """Longest key (UTF-8 bytes) a caller may use; a backend with a key
        prefix subtracts the prefix from S3's 1,024."""
        ...

    @property
    def supports_conditional_put(self) -> bool:
        """``put(if_absent=…, if_version=…)`` is enforced atomically by the store."""
        ...

    @property
    def supports_conditional_delete(self) -> bool:
        """``delete(if_version=…)`` is enforced atomically by the store."""
        ...

    async def get(self, key: str) -> StoredObject | None:
        """Return the object, or ``None`` when there is no such key."""
        ...

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        """Store ``data`` under ``key`` and return its new version tag.

        ``if_absent`` succeeds only when the key does not exist;
        ``if_version`` only when its current version is that tag.  A failed
        condition raises :class:`ssshelf.errors.PreconditionFailed` and
        changes nothing.
        """
        ...

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        """Delete ``key``; a missing key is not an error.

        With ``if_version`` the delete happens only when the current version
        is that tag; otherwise (missing key included) it raises
        :class:`ssshelf.errors.PreconditionFailed`.
        """
        ...

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete up to :data:`MAX_DELETE_BATCH` keys in one request.

        Missing keys are not errors; keys the store refused raise
        :class:`ssshelf.errors.DeleteFailed` naming each.
        """
        ...

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        """Keys starting with ``prefix`` and greater than ``after``, ascending.

        At most ``limit`` (1 … :data:`MAX_LIST_LIMIT`) keys; the cost is
        O(limit) whatever ``after`` is.
        """
        ...

    async def close(self) -> None:
        """Release connections and files; the storage is unusable after."""
        ...


def capabilities_of(storage: Storage) -> Capabilities:
    """What ``storage`` offers beyond the contract.

    Its ``capabilities`` attribute when it has one; otherwise (a storage
    written to the :class:`Storage` protocol alone) what its attributes say:
    ``supports_conditional_*``, a ``put_many`` with ``max_put_batch``, a
    ``get_if_changed``, ``caches_reads`` with ``get_fresh``.  Such a storage
    never offers ``get_many``: it is read key by key.
    """
    found = getattr(storage, "capabilities", None)
    if isinstance(found, Capabilities):
        return found
    batch = getattr(storage, "max_put_batch", None)
    return Capabilities(
        conditional_put=storage.supports_conditional_put,
        conditional_delete=storage.supports_conditional_delete,
        put_many=batch
        if isinstance(batch, int) and callable(getattr(storage, "put_many", None))
        else None,
        get_if_changed=callable(getattr(storage, "get_if_changed", None)),
        caches_reads=bool(getattr(storage, "caches_reads", False))
        and callable(getattr(storage, "get_fresh", None)),
    )


async def read_fresh(storage: Storage, key: str) -> StoredObject | None:
    """``storage.get(key)``, asked of the store itself, never answered by a cache.

    Decisions that delete or take over (repair, read-repair, the take-over of
    a unique reservation) read through this.  A storage whose capabilities
    say it ``caches_reads`` is asked with its ``get_fresh`` (wrappers forward
    it); any other storage's ``get`` is already fresh.
    """
    if capabilities_of(storage).caches_reads:
        return await cast(SupportsFreshReads, storage).get_fresh(key)
    return await storage.get(key)


async def read_many(
    storage: Storage, keys: Sequence[str], *, concurrency: int
) -> list[StoredObject | None]:
    """``get`` of each key, answered in order, in as few requests as ``storage`` allows.

    With the ``get_many`` capability: one ``get_many`` call per
    ``capabilities.get_many`` keys (one request each on memory and SQLite),
    the calls sent together; otherwise one ``get`` a key, at most
    ``concurrency`` at once.  Every request runs to its end; then the first
    error, if any, is raised.
    """
    if not keys:
        return []
    batch = capabilities_of(storage).get_many
    if batch is None:
        return await gather_all((storage.get(key) for key in keys), concurrency)
    many = cast(SupportsGetMany, storage).get_many
    if len(keys) <= batch:
        return await many(keys)
    chunks = [keys[start : start + batch] for start in range(0, len(keys), batch)]
    answers = await gather_all((many(chunk) for chunk in chunks), concurrency)
    return [obj for answer in answers for obj in answer]


def check_key(key: str, *, max_bytes: int = MAX_KEY_BYTES) -> None:
    """Raise :class:`.InvalidKeyError` unless ``key`` can be stored."""
    if type(key) is str and key.isascii() and 0 < len(key) <= max_bytes:
        return  # an ASCII key is its own UTF-8: nothing more to check
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"storage key must be a non-empty str, got {key!r}")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"storage key {key!r} is not valid Unicode: {exc}") from None
    if size > max_bytes:
        raise InvalidKeyError(
            f"storage key is {size} UTF-8 bytes, over the limit of {max_bytes}: {key[:80]!r}…"
        )


def check_text(value: str, what: str) -> None:
    """Raise :class:`.InvalidKeyError` unless ``value`` (a list prefix, an
    ``after`` key) is a ``str`` that UTF-8 can carry."""
    if type(value) is str and value.isascii():
        return
    if not isinstance(value, str):
        raise InvalidKeyError(f"{what} must be a str, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"{what} {value!r} is not valid Unicode: {exc}") from None


def check_data(data: bytes, key: str) -> None:
    """Raise :class:`.InvalidArgument` unless ``data`` is bytes (or a bytes-like buffer)."""
    if type(data) is not bytes and not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidArgument(f"data must be bytes, got {type(data).__name__} for {key!r}")


def check_limit(limit: int) -> None:
    """Raise :class:`.InvalidArgument` unless ``1 <= limit <= MAX_LIST_LIMIT``."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidArgument(f"list limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")


def check_batch(keys: Sequence[str]) -> None:
    """Raise :class:`.InvalidArgument` when a delete batch is larger than one request takes."""
    if len(keys) > MAX_DELETE_BATCH:
        raise InvalidArgument(
            f"delete_many takes at most {MAX_DELETE_BATCH} keys a request, got {len(keys)};"
            " split the batch (CManager does this for you)"
        )


def check_get_batch(keys: Sequence[str], limit: int) -> None:
    """Raise :class:`.InvalidArgument` when ``get_many`` is asked for more than ``limit`` keys."""
    if isinstance(keys, str):
        raise InvalidArgument(f"get_many takes a sequence of keys, not one str: {keys[:80]!r}")
    if len(keys) > limit:
        raise InvalidArgument(
            f"get_many takes at most {limit} keys a call, got {len(keys)};"
            " split the batch (read_many does this for you)"
        )


def check_puts(puts: Sequence[PutRequest], limit: int, *, max_bytes: int) -> None:
    """Raise before anything is sent unless ``puts`` is a ``put_many`` batch
    of at most ``limit`` writes of distinct, valid keys, each with bytes and
    at most one condition."""
    if len(puts) > limit:
        raise InvalidArgument(
            f"put_many takes at most {limit} writes a request, got {len(puts)}; split the batch"
        )
    for key, data, if_absent, if_version in puts:
        check_key(key, max_bytes=max_bytes)
        check_data(data, key)
        check_conditions(if_absent, if_version)
    if len({put[0] for put in puts}) != len(puts):
        raise InvalidArgument("put_many needs distinct keys: one write per key a request")


def check_conditions(if_absent: bool, if_version: str | None) -> None:
    """Raise :class:`.InvalidArgument` when both write conditions are given at once."""
    if if_absent and if_version is not None:
        raise InvalidArgument("put takes if_absent or if_version, not both")
