"""A storage held in this process's memory: for tests, prototypes and demos."""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ..errors import PreconditionFailed
from .base import MAX_GET_BATCH, Capabilities, ListPage, StoredObject
from .common import BaseStorage

_CAPABILITIES = Capabilities(
    conditional_put=True,
    conditional_delete=True,
    get_many=MAX_GET_BATCH,
    get_many_in_one_request=True,
)


class InMemoryStorage(BaseStorage):
    """Objects in a dict plus a sorted key list.

    Listing costs O(log n + page): new keys are merged into the sorted list
    lazily (one sort of the new keys, one merge) and deleted keys are skipped,
    then compacted once they are half the list.  Every method still counts as
    one request, so wrappers see the same traffic as against S3; ``get_many``
    is one request, all answers read at one moment.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        """``clock``: the store's own clock (seconds since the epoch), which
        stamps ``last_modified`` and ``read_at``; tests may move it."""
        self._clock = clock
        self._objects: dict[str, StoredObject] = {}
        self._sorted: list[str] = []
        self._pending: set[str] = set()
        self._dead: set[str] = set()
        self._versions = itertools.count(1)

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    def __len__(self) -> int:
        return len(self._objects)

    async def _get(self, key: str) -> StoredObject | None:
        found = self._objects.get(key)
        if found is None:
            return None
        return StoredObject(key, found.data, found.version, found.last_modified, self._now())

    async def _get_many(self, keys: Sequence[str]) -> list[StoredObject | None]:
        now = self._now()
        objects = self._objects
        answers: list[StoredObject | None] = []
        for key in keys:
            found = objects.get(key)
            answers.append(
                None
                if found is None
                else StoredObject(key, found.data, found.version, found.last_modified, now)
            )
        return answers

    async def _put(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> str:
        current = self._objects.get(key)
        if if_absent and current is not None:
            raise PreconditionFailed(f"{key!r} already exists", operation="put", key=key)
        if if_version is not None and (current is None or current.version != if_version):
            raise PreconditionFailed(
                f"{key!r} is not at version {if_version!r}", operation="put", key=key
            )
        version = f"m{next(self._versions)}"
        self._objects[key] = StoredObject(key, bytes(data), version, self._now())
        if current is None:
            if key in self._dead:
                self._dead.discard(key)
            else:
                self._pending.add(key)
        return version

    async def _delete(self, key: str, if_version: str | None) -> None:
        current = self._objects.get(key)
        if if_version is not None and (current is None or current.version != if_version):
            raise PreconditionFailed(
                f"{key!r} is not at version {if_version!r}", operation="delete", key=key
            )
        self._forget(key)

    async def _delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._forget(key)

    async def _list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        self._merge_pending()
        if after is not None and after >= prefix:
            index = bisect.bisect_right(self._sorted, after)
        else:
            index = bisect.bisect_left(self._sorted, prefix)
        keys: list[str] = []
        for position in range(index, len(self._sorted)):
            key = self._sorted[position]
            if not key.startswith(prefix):
                break
            if key not in self._objects:
                continue
            if len(keys) == limit:
                return ListPage(keys, keys[-1])
            keys.append(key)
        return ListPage(keys, None)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _forget(self, key: str) -> None:
        if self._objects.pop(key, None) is None:
            return
        if key in self._pending:
            self._pending.discard(key)
        else:
            self._dead.add(key)

    def _merge_pending(self) -> None:
        if len(self._dead) * 2 > len(self._sorted):
            self._sorted = [k for k in self._sorted if k not in self._dead]
            self._dead.clear()
        if not self._pending:
            return
        fresh = sorted(self._pending)
        self._pending.clear()
        if self._sorted and fresh[0] > self._sorted[-1]:
            self._sorted.extend(fresh)
            return
        merged = self._sorted + fresh
        merged.sort()  # timsort merges two sorted runs in linear time
        self._sorted = merged
