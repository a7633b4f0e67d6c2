"""What a manager remembers about items it read or wrote, to save a read.

A remembered version is a guess, never a fact: a write that starts from it is
conditioned on it (``If-Match``), so a stale guess costs one failed request
and a fresh read, never a wrong result.  It is never used to decide a
deletion or a take-over, and it is not used at all on a store without
conditional writes, where nothing could catch a stale guess.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .envelope import Envelope


@dataclass(frozen=True, slots=True)
class Known:
    """The version of an item as last seen by this manager, with its header."""

    version: str
    envelope: Envelope


class KnownVersions:
    """A bounded LRU of ``pk -> Known``; disabled when guesses cannot be checked."""

    def __init__(self, limit: int, *, enabled: bool) -> None:
        self._limit = limit
        self._enabled = enabled and limit > 0
        self._items: OrderedDict[str, Known] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, pk: str) -> Known | None:
        """The remembered state of ``pk`` (a guess to condition a write on), or ``None``."""
        return self._items.get(pk)

    def remember(self, pk: str, version: str, envelope: Envelope) -> None:
        if not self._enabled:
            return
        self._items[pk] = Known(version, envelope)
        self._items.move_to_end(pk)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def forget(self, pk: str) -> None:
        self._items.pop(pk, None)
