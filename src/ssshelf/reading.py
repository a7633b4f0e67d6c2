"""Reading items: by pk, behind index entries (verified), by unique value.

An index entry counts only when its item exists and names that exact entry
(key and write id), so a read never returns an item under a key it does not
hold, whatever writes are in flight.  An item that cannot be read back is
skipped and named (logged, and listed in the page's ``unreadable``), never
allowed to fail the page for the other items.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic

from ._concurrency import gather_all
from .envelope import Envelope, decode_envelope, decode_reservation
from .errors import CorruptItemError, SSShelfError
from .items import IManager
from .items.base import T
from .keys import KeyTuple
from .known import KnownVersions
from .layout import Layout
from .storages.base import Storage, StoredObject, read_fresh, read_many

log = logging.getLogger("ssshelf")

#: Seconds added to every age judged from HTTP dates (their resolution is 1 s).
CLOCK_RESOLUTION = 1.0


@dataclass(frozen=True, slots=True)
class Entry:
    """One index entry as listed: its key tuple, the item's pk, the write that made it."""

    key: KeyTuple
    pk: str
    write_id: str
    encoded: str


@dataclass(frozen=True, slots=True)
class Stored:
    """An item object as read: its key, version and header.

    A tombstone (``envelope.removed``) is an item object that stands for "no
    item"; writers build on it, readers see nothing.
    """

    key: str
    version: str
    envelope: Envelope

    @property
    def live(self) -> bool:
        return not self.envelope.removed


@dataclass(slots=True)
class VerifiedPage(Generic[T]):
    """The items behind a page of entries, in entry order, and what was skipped."""

    items: list[T] = field(default_factory=list)
    #: Storage keys of items that exist but cannot be read back.
    unreadable: list[str] = field(default_factory=list)


def older_than(obj: StoredObject, seconds: float) -> bool:
    """True when the store's own clock says ``obj`` is older than ``seconds``.

    An object whose age the store did not report is never old: nothing is
    deleted or taken over on a guess.
    """
    age = obj.age
    return age is not None and age > seconds + CLOCK_RESOLUTION


class ItemReader(Generic[T]):
    """Reads one manager's items (of type ``T``) from its storage.

    ``read_repair``: pages delete the dangling entries they meet once the
    store's clock says they are older than ``grace`` (so no write still in
    flight can need them), after reading the item again past any cache.
    """

    def __init__(
        self,
        storage: Storage,
        layout: Layout,
        item_manager: IManager[T],
        known: KnownVersions,
        *,
        concurrency: int,
        read_repair: bool,
        grace: float,
    ) -> None:
        self.storage = storage
        self.layout = layout
        self.item_manager = item_manager
        self.known = known
        self.concurrency = concurrency
        self.read_repair = read_repair
        self.grace = grace

    async def read(self, pk: str, *, fresh: bool = False, for_write: bool = False) -> Stored | None:
        """The item object of ``pk`` (tombstones included), or ``None`` when there is none.

        ``fresh`` asks the store itself, past any cache.  A corrupt item
        raises :class:`CorruptItemError`, except for writers (``for_write``),
        which see it as holding nothing so that it can be replaced or removed.
        """
        key = self.layout.item_key(pk)
        obj = await (read_fresh(self.storage, key) if fresh else self.storage.get(key))
        return self._stored(pk, key, obj, for_write)

    async def read_many(self, pks: Sequence[str]) -> list[Stored | CorruptItemError | None]:
        """The item objects of ``pks`` (tombstones included), in order, read in
        as few requests as the storage allows (one ``get_many`` a thousand on
        memory and SQLite); a corrupt item is its :class:`CorruptItemError`
        in its place.  Errors of the store are raised."""
        keys = [self.layout.item_key(pk) for pk in pks]
        objects = await read_many(self.storage, keys, concurrency=self.concurrency)
        found: list[Stored | CorruptItemError | None] = []
        for pk, key, obj in zip(pks, keys, objects, strict=True):
            try:
                found.append(self._stored(pk, key, obj, False))
            except CorruptItemError as exc:
                found.append(exc)
        return found

    def _stored(
        self, pk: str, key: str, obj: StoredObject | None, for_write: bool
    ) -> Stored | None:
        """What :meth:`read` makes of the object read under ``key``."""
        if obj is None:
            self.known.forget(pk)
            return None
        try:
            envelope = decode_envelope(obj.data, key=key)
        except CorruptItemError:
            self.known.forget(pk)
            if not for_write:
                raise
            return Stored(key, obj.version, Envelope(pk, "", 0.0, b""))
        if envelope.removed:
            self.known.forget(pk)
        else:
            self.known.remember(pk, obj.version, envelope)
        return Stored(key, obj.version, envelope)

    async def read_live(self, pk: str) -> Stored | None:
        """The item object of ``pk`` when it holds an item (no tombstones)."""
        stored = await self.read(pk)
        return stored if stored is not None and stored.live else None

    def deserialize(self, stored: Stored) -> T:
        try:
            return self.item_manager.deserialize_item(stored.envelope.payload)
        except Exception as exc:
            raise CorruptItemError(
                f"cannot deserialise item {stored.key!r}: {exc!r}", key=stored.key
            ) from exc

    async def verified(self, collection: str, entries: Sequence[Entry]) -> VerifiedPage[T]:
        """Items behind listed entries, keeping only entries their item names.

        Each distinct pk is fetched once, all in as few requests as the
        storage allows (:meth:`read_many`).
        """
        pks = list(dict.fromkeys(e.pk for e in entries))
        reads = await self.read_many(pks)
        page: VerifiedPage[T] = VerifiedPage()
        by_pk: dict[str, Stored] = {}
        for pk, result in zip(pks, reads, strict=True):
            if isinstance(result, CorruptItemError):
                page.unreadable.append(result.key)
                log.warning("ssshelf: skipping unreadable item %s: %s", result.key, result)
            elif result is not None and result.live:
                by_pk[pk] = result
        decoded: dict[str, T] = {}
        dangling: list[Entry] = []
        for entry in entries:
            found = by_pk.get(entry.pk)
            if found is None or found.envelope.entry_write(collection, entry.encoded) != (
                entry.write_id
            ):
                dangling.append(entry)
                continue
            if entry.pk not in decoded:
                try:
                    decoded[entry.pk] = self.deserialize(found)
                except CorruptItemError as exc:
                    page.unreadable.append(found.key)
                    log.warning("ssshelf: skipping unreadable item %s: %s", found.key, exc)
                    by_pk.pop(entry.pk)
                    continue
            page.items.append(decoded[entry.pk])
        if dangling and self.read_repair:
            await self._repair(collection, dangling)
        return page

    async def count_verified(self, collection: str, entries: Sequence[Entry]) -> int:
        """How many of ``entries`` their item names (the entries :meth:`verified`
        would keep), without deserialising any item.  Each distinct pk is read
        once, in as few requests as the storage allows (:meth:`read_many`); an
        item that cannot be read back is not counted."""
        pks = list(dict.fromkeys(e.pk for e in entries))
        by_pk: dict[str, Stored] = {}
        for pk, result in zip(pks, await self.read_many(pks), strict=True):
            if isinstance(result, Stored) and result.live:
                by_pk[pk] = result
        return sum(
            1
            for entry in entries
            if (found := by_pk.get(entry.pk)) is not None
            and found.envelope.entry_write(collection, entry.encoded) == entry.write_id
        )

    async def _repair(self, collection: str, dangling: Sequence[Entry]) -> None:
        """Delete dangling entries that are dangling by a fresh read and old by the store."""
        keys = [self.layout.entry_key(collection, e.encoded, e.pk, e.write_id) for e in dangling]
        pks = list(dict.fromkeys(e.pk for e in dangling))
        try:
            objects = await gather_all(
                (read_fresh(self.storage, k) for k in keys), self.concurrency
            )
            items = await gather_all(
                (read_fresh(self.storage, self.layout.item_key(pk)) for pk in pks),
                self.concurrency,
            )
        except SSShelfError as exc:
            log.warning("ssshelf: read-repair skipped: %s", exc)
            return
        holders = {
            pk: _holder(obj, self.layout.item_key(pk)) for pk, obj in zip(pks, items, strict=True)
        }
        old: list[str] = []
        for entry, key, obj in zip(dangling, keys, objects, strict=True):
            holder = holders[entry.pk]
            if holder is _UNREADABLE:
                continue  # what it holds is unknown: its entries are left alone
            still_named = (
                isinstance(holder, Envelope)
                and not holder.removed
                and holder.entry_write(collection, entry.encoded) == entry.write_id
            )
            if obj is not None and not still_named and older_than(obj, self.grace):
                old.append(key)
        if old:
            try:
                await self.storage.delete_many(old)
            except SSShelfError as exc:
                log.warning("ssshelf: read-repair of %d entries failed: %s", len(old), exc)

    async def by_unique(self, collection: str, encoded: str) -> Stored | None:
        """The live item holding ``encoded`` in unique ``collection``, or ``None``."""
        key = self.layout.reservation_key(collection, encoded)
        obj = await self.storage.get(key)
        if obj is None:
            return None
        holder = decode_reservation(obj.data, key=key)
        if holder.released:
            return None
        stored = await self.read_live(holder.pk)
        if stored is None or stored.envelope.reservation_version(collection, encoded) is None:
            return None
        return stored


class _Unreadable:
    """An item object exists but cannot be decoded."""


_UNREADABLE = _Unreadable()


def _holder(obj: StoredObject | None, key: str) -> Envelope | _Unreadable | None:
    if obj is None:
        return None
    try:
        return decode_envelope(obj.data, key=key)
    except CorruptItemError:
        return _UNREADABLE
