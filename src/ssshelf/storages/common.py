"""BaseStorage: what every storage of this package shares.

A backend (memory, SQLite, S3) or a wrapper (cache, retries, counters)
subclasses :class:`BaseStorage` and writes only what it does differently:
the request hooks ``_get``, ``_put``, ``_delete``, ``_delete_many``,
``_list`` and ``_close``, plus those of the optional requests its
:attr:`~BaseStorage.capabilities` name.  The public methods around the hooks
give every storage the same promises:

* **Arguments are checked once, before any request**: keys
  (:func:`~.base.check_key`, against the storage's ``max_key_length``),
  bytes, write conditions, list limits and prefixes, batch sizes.  A hook
  only ever sees arguments that passed.
* **One closed state**: after :meth:`~BaseStorage.close` has begun, every
  request raises :class:`~ssshelf.errors.StorageClosed` before anything is
  sent, on every backend and through every wrapper.  ``close()`` may be
  called again; it then waits, as the first call does, for the backend to
  let go of its files and connections.
* **Optional requests say so**: ``get_many``, ``put_many`` and
  ``get_if_changed`` exist on every storage, and raise
  :class:`~ssshelf.errors.UnsupportedOperation` (before any request) where
  the capabilities do not name them.
* Every storage is an async context manager that closes it on exit.
"""

from __future__ import annotations

import asyncio
import builtins
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Self

from ..errors import PreconditionFailed, StorageClosed, UnsupportedOperation
from .base import (
    MAX_KEY_BYTES,
    MAX_LIST_LIMIT,
    Capabilities,
    ListPage,
    PutRequest,
    Revalidated,
    StoredObject,
    check_batch,
    check_conditions,
    check_data,
    check_get_batch,
    check_key,
    check_limit,
    check_puts,
    check_text,
)

#: The capabilities of a storage that names none.
NO_CAPABILITIES = Capabilities()


class BaseStorage(ABC):
    """The base of every storage: checks, the closed state, optional requests.

    See the module docstring.  A subclass implements the abstract hooks and
    overrides :attr:`capabilities` to name what else it offers (and the
    hooks that go with it: ``_get_many``, ``_put_many``, ``_get_if_changed``,
    ``_get_fresh``).
    """

    _closed: bool = False

    # -- what the storage is ----------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """What this storage offers beyond the contract (see :class:`~.base.Capabilities`)."""
        return NO_CAPABILITIES

    @property
    def max_key_length(self) -> int:
        """Longest key (UTF-8 bytes) a caller may use."""
        return MAX_KEY_BYTES

    @property
    def supports_conditional_put(self) -> bool:
        """``capabilities.conditional_put`` (the name callers have long used)."""
        return self.capabilities.conditional_put

    @property
    def supports_conditional_delete(self) -> bool:
        """``capabilities.conditional_delete`` (the name callers have long used)."""
        return self.capabilities.conditional_delete

    @property
    def caches_reads(self) -> bool:
        """``capabilities.caches_reads`` (the name callers have long used)."""
        return self.capabilities.caches_reads

    @property
    def closed(self) -> bool:
        """``close()`` has been called: every request now raises StorageClosed."""
        return self._closed

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- the contract ---------------------------------------------------------------

    async def get(self, key: str) -> StoredObject | None:
        """The object under ``key``, or ``None`` when there is none."""
        if self._closed:
            raise self._closed_error("get", key)
        check_key(key, max_bytes=self.max_key_length)
        return await self._get(key)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        """Store ``data`` under ``key``; return its new version (see :class:`~.base.Storage`)."""
        if self._closed:
            raise self._closed_error("put", key)
        check_key(key, max_bytes=self.max_key_length)
        check_data(data, key)
        check_conditions(if_absent, if_version)
        return await self._put(key, data, if_absent, if_version)

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        """Delete ``key`` (missing is fine); with ``if_version`` only at that version."""
        if self._closed:
            raise self._closed_error("delete", key)
        check_key(key, max_bytes=self.max_key_length)
        await self._delete(key, if_version)

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete up to 1,000 keys in one request; no request for none."""
        if self._closed:
            raise self._closed_error("delete_many", None)
        check_batch(keys)
        max_bytes = self.max_key_length
        for key in keys:
            check_key(key, max_bytes=max_bytes)
        if keys:
            await self._delete_many(keys)

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        """Keys starting with ``prefix``, greater than ``after``, ascending; at most ``limit``."""
        if self._closed:
            raise self._closed_error("list", prefix or None)
        check_limit(limit)
        check_text(prefix, "list prefix")
        if after is not None:
            check_text(after, "list after")
        return await self._list(prefix, after, limit)

    async def close(self) -> None:
        """Refuse every request from now on, then release files and connections.

        Safe to call again (it waits for the release as the first call does).
        """
        self._closed = True
        await self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- optional requests (see capabilities) ----------------------------------------

    async def get_many(self, keys: Sequence[str]) -> builtins.list[StoredObject | None]:
        """``get`` of each key, answered in order (see :class:`~.base.SupportsGetMany`).

        At most ``capabilities.get_many`` keys; none makes no request.
        """
        if self._closed:
            raise self._closed_error("get_many", None)
        limit = self.capabilities.get_many
        if limit is None:
            raise self._unsupported("get_many")
        check_get_batch(keys, limit)
        max_bytes = self.max_key_length
        for key in keys:
            check_key(key, max_bytes=max_bytes)
        if not keys:
            return []
        return await self._get_many(keys)

    async def put_many(self, puts: Sequence[PutRequest]) -> builtins.list[str | PreconditionFailed]:
        """Many conditional writes of distinct keys in one request (see
        :class:`~.base.SupportsPutMany`); at most ``capabilities.put_many``."""
        if self._closed:
            raise self._closed_error("put_many", None)
        limit = self.capabilities.put_many
        if limit is None:
            raise self._unsupported("put_many")
        check_puts(puts, limit, max_bytes=self.max_key_length)
        if not puts:
            return []
        return await self._put_many(puts)

    async def get_fresh(self, key: str) -> StoredObject | None:
        """``get`` answered by the store itself, past any cache (see :func:`~.base.read_fresh`)."""
        if self._closed:
            raise self._closed_error("get", key)
        check_key(key, max_bytes=self.max_key_length)
        return await self._get_fresh(key)

    async def get_if_changed(self, key: str, version: str) -> Revalidated:
        """:data:`~.base.NOT_MODIFIED` when ``key`` is still at ``version``, else
        its object or ``None`` (one conditional request; see
        :class:`~.base.SupportsRevalidation`)."""
        if self._closed:
            raise self._closed_error("get_if_changed", key)
        if not self.capabilities.get_if_changed:
            raise self._unsupported("get_if_changed")
        check_key(key, max_bytes=self.max_key_length)
        return await self._get_if_changed(key, version)

    # -- the hooks ----------------------------------------------------------------------

    @abstractmethod
    async def _get(self, key: str) -> StoredObject | None:
        """One ``get`` of a checked key."""

    @abstractmethod
    async def _put(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> str:
        """One ``put`` of checked arguments (at most one condition)."""

    @abstractmethod
    async def _delete(self, key: str, if_version: str | None) -> None:
        """One ``delete`` of a checked key."""

    @abstractmethod
    async def _delete_many(self, keys: Sequence[str]) -> None:
        """One ``delete_many`` of 1 … 1,000 checked keys."""

    @abstractmethod
    async def _list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        """One ``list`` of checked arguments."""

    async def _close(self) -> None:  # noqa: B027 - most storages hold nothing to release
        """Release what the storage holds (called by every ``close()``; idempotent)."""

    async def _get_many(self, keys: Sequence[str]) -> builtins.list[StoredObject | None]:
        """``get_many`` of 1 … ``capabilities.get_many`` checked keys.

        By default one ``_get`` a key, all at once: a backend whose store
        has no batched read names ``get_many`` in its capabilities (with
        ``get_many_in_one_request`` false) and bounds the wave itself.
        """
        answers = await asyncio.gather(*(self._get(key) for key in keys), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return answers  # type: ignore[return-value]  # no exceptions left

    async def _put_many(
        self, puts: Sequence[PutRequest]
    ) -> builtins.list[str | PreconditionFailed]:
        """``put_many`` of a checked batch (for storages naming ``put_many``)."""
        raise self._unsupported("put_many")

    async def _get_fresh(self, key: str) -> StoredObject | None:
        """``get_fresh`` of a checked key: ``_get`` unless the storage caches."""
        return await self._get(key)

    async def _get_if_changed(self, key: str, version: str) -> Revalidated:
        """``get_if_changed`` of a checked key (for storages naming it)."""
        raise self._unsupported("get_if_changed")

    # -- errors ----------------------------------------------------------------------------

    def _closed_error(self, operation: str, key: str | None) -> StorageClosed:
        what = f"{operation} of {key!r}" if key is not None else operation
        return StorageClosed(
            f"{self!r} is closed: {what} was not sent", operation=operation, key=key
        )

    def _unsupported(self, operation: str) -> UnsupportedOperation:
        return UnsupportedOperation(
            f"{self!r} does not offer {operation} (its capabilities do not name it);"
            f" check capabilities_of(storage).{operation} first",
            operation=operation,
        )
