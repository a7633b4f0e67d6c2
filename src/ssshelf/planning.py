"""Turning an item into a write plan: validation and serialisation, no requests.

Everything that can be known wrong about a write is found here, before the
first request: the pk, every collection's keys (types, the store's key length
limit), the serialised bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic

from . import keys as keycodec
from .collections import Collection
from .envelope import Envelope
from .errors import InvalidKeyError, SerializationError
from .items import IManager
from .items.base import T
from .keys import SEPARATOR
from .layout import WRITE_ID_LENGTH, WRITE_MARK, Layout, normalize_pk

#: What an entry key holds after the escaped pk: the write mark and a write id.
_ENTRY_TAIL = len(SEPARATOR) + len(WRITE_MARK) + WRITE_ID_LENGTH


@dataclass(frozen=True, slots=True)
class WritePlan:
    """What an item should look like in storage."""

    pk: str
    item_key: str
    payload: bytes
    #: collection -> encoded key tuples the item belongs under
    entries: Mapping[str, tuple[str, ...]]
    #: unique collection -> encoded values to hold
    uniques: Mapping[str, tuple[str, ...]]

    def wanted(self) -> list[tuple[str, str]]:
        """Every (collection, encoded key) the item is to be listed under."""
        return [(c, enc) for c, encs in self.entries.items() for enc in encs]

    def values(self) -> list[tuple[str, str]]:
        """Every (unique collection, encoded value) the item is to hold."""
        return [(c, enc) for c, encs in self.uniques.items() for enc in encs]


class Planner(Generic[T]):
    """Validates and serialises items (of type ``T``) of one manager."""

    def __init__(
        self,
        item_manager: IManager[T],
        collections: Mapping[str, Collection[T]],
        layout: Layout,
        max_key_length: int,
    ) -> None:
        self.item_manager = item_manager
        self.collections = collections
        self.layout = layout
        self.max_key_length = max_key_length
        #: UTF-8 sizes of each collection's entry and reservation prefixes
        self._entry_prefix = {n: _size(layout.entry_prefix(n)) for n in collections}
        self._reservation_prefix = {n: _size(layout.reservation_prefix(n)) for n in collections}

    def pk_of(self, item: T) -> str:
        """The normalised pk of ``item``; :class:`InvalidKeyError` when it has none."""
        try:
            raw_pk = self.item_manager.get_pk(item)
        except InvalidKeyError:
            raise  # the item manager said what is wrong already
        except Exception as exc:
            shown = repr(item)
            shown = shown if len(shown) <= 200 else shown[:200] + "…"
            raise InvalidKeyError(f"get_pk failed for {shown}: {exc!r}") from exc
        return normalize_pk(raw_pk)

    def plan(self, item: T, *, keep: Envelope | None = None, only: str | None = None) -> WritePlan:
        """The plan for ``item``.  With ``only``, keys are computed for that one
        collection and the others are kept as ``keep`` (the stored item) has them."""
        pk = self.pk_of(item)
        item_key = self.layout.item_key(pk)
        self._check_length(item_key, None, pk)
        # An entry key is its collection's prefix, the encoded key and this tail.
        tail = len(item_key) - len(self.layout.item_prefix) + _ENTRY_TAIL
        try:
            payload = self.item_manager.serialize_item(item)
        except Exception as exc:
            raise SerializationError(f"cannot serialise item {pk!r}: {exc!r}") from exc
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise SerializationError(
                f"serialize_item must return bytes, got {type(payload).__name__} for item {pk!r}"
            )
        # Tuples, not lists: the garbage collector stops tracking a tuple of
        # strings, and a bulk load holds thousands of plans at once.
        entries: dict[str, tuple[str, ...]] = {}
        uniques: dict[str, tuple[str, ...]] = {}
        for name, collection in self.collections.items():
            if only is not None and name != only:
                held = keep.entries.get(name, {}) if keep is not None else {}
                entries[name] = tuple(held)
                if collection.unique and keep is not None:
                    uniques[name] = tuple(keep.uniques.get(name, {}))
                continue
            encoded = self._encode_keys(name, collection, item, pk, tail)
            entries[name] = encoded
            if collection.unique and encoded:
                for value in encoded:  # an encoded value is ASCII: its length is its size
                    if self._reservation_prefix[name] + len(value) > self.max_key_length:
                        self._check_length(self.layout.reservation_key(name, value), name, value)
                uniques[name] = encoded
        return WritePlan(pk, item_key, bytes(payload), entries, uniques)

    def _encode_keys(
        self, name: str, collection: Collection[T], item: T, pk: str, tail: int
    ) -> tuple[str, ...]:
        fixed = self._entry_prefix[name] + tail
        try:
            raw = collection.key(item)
        except Exception as exc:
            raise InvalidKeyError(
                f"collection {name!r}: key(item) failed for item {pk!r}: {exc!r}",
                collection=name,
            ) from exc
        out: list[str] = []
        for parts in keycodec.normalize_key(raw, collection=name):
            try:
                encoded = keycodec.encode_tuple(parts)
            except InvalidKeyError as exc:
                raise InvalidKeyError(
                    f"collection {name!r}, item {pk!r}: {exc}", collection=name, part=exc.part
                ) from None
            # Every part of an entry key is ASCII: its length is its size.
            size = fixed + len(encoded)
            if size > self.max_key_length:
                longest = max(parts, key=lambda p: len(keycodec.encode_part(p)))
                raise InvalidKeyError(
                    f"collection {name!r}, item {pk!r}: index key is {size} bytes, over the "
                    f"store's limit of {self.max_key_length}; shorten the part "
                    f"{str(longest)[:60]!r}",
                    collection=name,
                    part=longest,
                )
            if encoded not in out:
                out.append(encoded)
        return tuple(out)

    def _check_length(self, key: str, collection: str | None, part: object) -> None:
        size = _size(key)
        if size > self.max_key_length:
            where = f"collection {collection!r}" if collection else "item key"
            raise InvalidKeyError(
                f"{where}: key is {size} bytes, over the store's limit of "
                f"{self.max_key_length}; shorten {str(part)[:60]!r}",
                collection=collection,
                part=part,
            )


def _size(key: str) -> int:
    """UTF-8 size of ``key``."""
    return len(key) if key.isascii() else len(key.encode())
