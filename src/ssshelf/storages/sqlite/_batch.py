"""An optional storage capability: many conditional writes in one request.

A backend that can apply a batch of writes for the price of one request
offers ``put_many``; callers look for it with
``isinstance(storage, SupportsPutMany)`` and fall back to one ``put`` per
object otherwise.  :class:`~ssshelf.storages.sqlite.SQLiteStorage` offers it
(one transaction, one fsync, one answer to the event loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ...errors import PreconditionFailed

#: Most writes one ``put_many`` request takes.
MAX_PUT_BATCH = 1000


@dataclass(frozen=True, slots=True)
class PutRequest:
    """One write of a :meth:`SupportsPutMany.put_many` batch, with
    :meth:`~ssshelf.storages.base.Storage.put`'s arguments."""

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
