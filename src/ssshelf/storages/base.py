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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

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


class PutRequest(NamedTuple):
    """One write of a :meth:`SupportsPutMany.put_many` batch, with
    :meth:`~ssshelf.storages.base.Storage.put`'s arguments (immutable; a
    tuple, made cheaply by the thousand)."""

    key: str
    data: bytes
    if_absent: bool = False
    if_version: str | None = None


@runtime_checkable
class SupportsPutMany(Protocol):
    """A storage that applies many conditional writes in one request."""

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


@runtime_checkable
class Storage(Protocol):
    """What ssshelf needs from a store.  See the module docstring."""

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


async def read_fresh(storage: Storage, key: str) -> StoredObject | None:
    """``storage.get(key)``, asked of the store itself, never answered by a cache.

    Decisions that delete or take over (repair, read-repair, the take-over of
    a unique reservation) read through this.  A storage that caches offers a
    ``get_fresh`` method (wrappers forward it); any other storage's ``get``
    is already fresh.
    """
    fresh = getattr(storage, "get_fresh", None)
    if fresh is not None:
        found: StoredObject | None = await fresh(key)
        return found
    return await storage.get(key)


def check_key(key: str, *, max_bytes: int = MAX_KEY_BYTES) -> None:
    """Raise :class:`.InvalidKeyError` unless ``key`` can be stored."""
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


def check_conditions(if_absent: bool, if_version: str | None) -> None:
    """Raise :class:`.InvalidArgument` when both write conditions are given at once."""
    if if_absent and if_version is not None:
        raise InvalidArgument("put takes if_absent or if_version, not both")
