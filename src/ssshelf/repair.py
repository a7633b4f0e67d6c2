"""check, repair and reindex: find and fix what crashes leave behind.

A crash between two requests of a write leaves garbage that reads already
skip: index entries no item names (dangling), reservations no item holds
(stale).  A store damaged behind ssshelf's back can also miss entries or
reservations that items name.  :meth:`CManager.check
<ssshelf.managers.CManager.check>` finds all of it and :meth:`CManager.repair
<ssshelf.managers.CManager.repair>` fixes it, both streaming page by page
(memory bounded by the page size) with requests in parallel, every read asked of the store itself
(past any cache).

Garbage younger than ``grace`` seconds — by the store's clock, from each
object's Last-Modified to the store's answer — may belong to a write still in
flight, which would commit and then miss it.  ``check`` reports it as *in
flight*, which is not a problem, and ``repair`` leaves it alone; so after a
crash, ``check`` → ``repair`` → ``check`` is clean.  ``grace`` defaults to the
manager's ``unique_lease``; pass ``grace=0`` on a store nobody writes to.

Objects that are not ssshelf's, and items that cannot be read back, are named
in the report and skipped: they never make a scan fail for the other objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ._concurrency import gather_all, gather_bounded
from .collections import Collection
from .envelope import Envelope, Reservation, decode_envelope, decode_reservation
from .errors import CorruptItemError, InvalidArgument, PreconditionFailed, SSShelfError
from .keys import decode_tuple
from .layout import Layout
from .reading import ItemReader, older_than
from .storages.base import Storage, StoredObject, read_fresh
from .writes import Writer

#: How many keys of each kind a report keeps (counts are always exact).
REPORT_SAMPLE = 1000
_PAGE = 1000

#: Report fields that make ``ok`` false.
PROBLEMS = (
    "dangling_entries",
    "missing_entries",
    "stale_reservations",
    "missing_reservations",
    "unreadable_items",
)


@dataclass(frozen=True, slots=True)
class Maintained:
    """What maintenance needs of a manager, handed over by it."""

    storage: Storage
    layout: Layout
    collections: Mapping[str, Collection]
    reader: ItemReader
    writer: Writer
    lease: float
    concurrency: int
    clock: Callable[[], float]


@dataclass
class CheckReport:
    """What :meth:`~ssshelf.managers.CManager.check` found.  ``ok`` is true only when
    nothing is wrong.

    ``in_flight_*`` count garbage younger than the grace period (it may
    belong to a write still in flight; not a problem), ``released_reservations``
    the markers of freed values on stores that cannot delete conditionally,
    ``tombstones`` removed items on such stores, and ``stray_objects`` keys
    under the namespace that ssshelf did not write (skipped; not a problem).
    """

    items_scanned: int = 0
    entries_scanned: int = 0
    reservations_scanned: int = 0
    dangling_entries: int = 0
    missing_entries: int = 0
    stale_reservations: int = 0
    missing_reservations: int = 0
    unreadable_items: int = 0
    in_flight_entries: int = 0
    in_flight_reservations: int = 0
    released_reservations: int = 0
    tombstones: int = 0
    stray_objects: int = 0
    #: Up to REPORT_SAMPLE storage keys of each kind counted above.
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(getattr(self, name) for name in PROBLEMS)

    @property
    def in_flight(self) -> int:
        return self.in_flight_entries + self.in_flight_reservations

    def note(self, kind: str, key: str, count: int = 1) -> None:
        setattr(self, kind, getattr(self, kind) + count)
        examples = self.examples.setdefault(kind, [])
        if len(examples) < REPORT_SAMPLE:
            examples.append(key)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class RepairReport:
    """What :meth:`~ssshelf.managers.CManager.repair` did, plus the check it acted on."""

    check: CheckReport
    deleted_entries: int = 0
    restored_entries: int = 0
    deleted_reservations: int = 0
    restored_reservations: int = 0
    #: Tombstones of removed items deleted (old enough, by the store's clock).
    purged_tombstones: int = 0
    #: Problems left alone: in flight, changed meanwhile, or needing a person.
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted_entries": self.deleted_entries,
            "restored_entries": self.restored_entries,
            "deleted_reservations": self.deleted_reservations,
            "restored_reservations": self.restored_reservations,
            "purged_tombstones": self.purged_tombstones,
            "skipped": self.skipped,
            "check": self.check.to_dict(),
        }


@dataclass
class ReindexReport:
    """What :meth:`~ssshelf.managers.CManager.reindex` did for one collection."""

    collection: str
    items_scanned: int = 0
    reindexed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[int], None] | None


async def _pages(storage: Storage, prefix: str) -> AsyncIterator[list[str]]:
    after: str | None = None
    while True:
        page = await storage.list(prefix, after=after, limit=_PAGE)
        if page.keys:
            yield page.keys
        if page.next_after is None:
            return
        after = page.next_after


class _Holder:
    """What the scan knows of one item: its header, or that it is unreadable."""

    __slots__ = ("envelope", "unreadable")

    def __init__(self, envelope: Envelope | None, unreadable: bool = False) -> None:
        self.envelope = envelope
        self.unreadable = unreadable

    @property
    def live(self) -> Envelope | None:
        e = self.envelope
        return e if e is not None and not e.removed else None


class _Scan:
    """One pass of check (and, with ``fix``, repair) over a manager's objects."""

    def __init__(self, target: Maintained, *, fix: bool, grace: float, progress: Progress) -> None:
        self.target = target
        self.fix = fix
        self.grace = grace
        self.progress = progress
        self.seen = 0
        self.report = CheckReport()
        self.repair = RepairReport(self.report)
        # Per collection: entries named by items, and how many of those exist.
        self.named: dict[str, int] = {}
        self.valid: dict[str, int] = {}

    def tick(self, n: int) -> None:
        self.seen += n
        if self.progress is not None:
            self.progress(self.seen)

    async def run(self) -> None:
        await self.scan_items()
        for name, collection in self.target.collections.items():
            await self.scan_entries(name)
            if collection.unique:
                await self.scan_reservations(name)
        for name in self.target.collections:
            if self.valid.get(name, 0) < self.named.get(name, 0):
                await self.find_missing_entries(name)

    async def holder(self, pk: str) -> _Holder:
        key = self.target.layout.item_key(pk)
        obj = await read_fresh(self.target.storage, key)
        if obj is None:
            return _Holder(None)
        try:
            return _Holder(decode_envelope(obj.data, key=key))
        except CorruptItemError:
            return _Holder(None, unreadable=True)

    def pk_of(self, key: str) -> str | None:
        try:
            return self.target.layout.pk_from_item_key(key)
        except ValueError:
            self.report.note("stray_objects", key)
            return None

    # -- items -------------------------------------------------------------

    async def scan_items(self) -> None:
        target = self.target
        async for keys in _pages(target.storage, target.layout.item_prefix):
            keys = [k for k in keys if self.pk_of(k) is not None]
            objects = await gather_all(
                (read_fresh(target.storage, k) for k in keys), target.concurrency
            )
            self.report.items_scanned += len(keys)
            readable: list[Envelope] = []
            for key, obj in zip(keys, objects, strict=True):
                if obj is None:
                    continue  # removed while we scanned
                try:
                    envelope = decode_envelope(obj.data, key=key)
                    if not envelope.removed:
                        target.reader.item_manager.deserialize_item(envelope.payload)
                except Exception:
                    self.report.note("unreadable_items", key)
                    self.repair.skipped += self.fix
                    continue
                if envelope.removed:
                    self.report.items_scanned -= 1  # no item: what a removal leaves
                    self.report.note("tombstones", key)
                    await self.purge_tombstone(key, obj)
                    continue
                for name in target.collections:
                    self.named[name] = self.named.get(name, 0) + len(envelope.entries.get(name, {}))
                readable.append(envelope)
            await gather_all(
                (self.check_held_reservations(e) for e in readable), target.concurrency
            )
            self.tick(len(keys))

    async def purge_tombstone(self, key: str, obj: StoredObject) -> None:
        """Delete a tombstone once no create can still land on its pk (older than
        the grace), and only at the version judged, where the store deletes
        conditionally; elsewhere tombstones stay (a delete could hit a new item)."""
        storage = self.target.storage
        if not self.fix or not storage.supports_conditional_delete:
            return
        if self.grace > 0 and not older_than(obj, self.grace):
            return
        try:
            await storage.delete(key, if_version=obj.version)
            self.repair.purged_tombstones += 1
        except PreconditionFailed:
            pass  # written on since: an item again

    async def check_held_reservations(self, envelope: Envelope) -> None:
        target = self.target
        for name, held in envelope.uniques.items():
            if name not in target.collections:
                continue
            for encoded in held:
                key = target.layout.reservation_key(name, encoded)
                obj = await read_fresh(target.storage, key)
                holder = _reservation_or_none(obj, key)
                if holder is not None and holder.pk == envelope.pk and not holder.released:
                    continue
                # Read the item again: it may have let the value go meanwhile
                # (a write released it), and then nothing is missing.
                now = (await self.holder(envelope.pk)).live
                if now is None or now.reservation_version(name, encoded) is None:
                    continue
                self.report.note("missing_reservations", key)
                if not self.fix:
                    continue
                if obj is None or (holder is not None and holder.released):
                    await self.restore_reservation(key, envelope, obj)
                else:
                    self.repair.skipped += 1  # held by another item: needs a person

    async def restore_reservation(
        self, key: str, envelope: Envelope, freed: StoredObject | None
    ) -> None:
        """Claim the value again for the item that holds it: over nothing, or
        over a released marker at the version read (never over another claim)."""
        body = Reservation(envelope.pk, envelope.write_id, self.target.clock()).encode()
        try:
            if freed is None:
                await self.target.storage.put(key, body, if_absent=True)
            else:
                await self.target.storage.put(key, body, if_version=freed.version)
            self.repair.restored_reservations += 1
        except PreconditionFailed:
            self.repair.skipped += 1

    # -- entries -----------------------------------------------------------

    async def scan_entries(self, name: str) -> None:
        target = self.target
        layout = target.layout
        async for keys in _pages(target.storage, layout.entry_prefix(name)):
            parsed: list[tuple[str, tuple[str, str, str]]] = []
            for key in keys:
                try:
                    entry = layout.parse_entry(name, key)
                    decode_tuple(entry[0])
                except ValueError:
                    self.report.note("stray_objects", key)
                    continue
                parsed.append((key, entry))
            pks = list(dict.fromkeys(entry[1] for _, entry in parsed))
            holders = dict(
                zip(
                    pks,
                    await gather_all((self.holder(pk) for pk in pks), target.concurrency),
                    strict=True,
                )
            )
            dangling: list[tuple[str, tuple[str, str, str]]] = []
            over: list[str] = []
            for key, (encoded, pk, write_id) in parsed:
                self.report.entries_scanned += 1
                holder = holders[pk]
                if holder.unreadable:
                    continue  # what it holds is unknown: left alone (reported as unreadable)
                live = holder.live
                if live is not None and live.entry_write(name, encoded) == write_id:
                    self.valid[name] = self.valid.get(name, 0) + 1
                    continue
                # An entry of a write that committed and is no longer named can
                # never be named again: garbage whatever its age.
                envelope = holder.envelope
                if envelope is not None and envelope.remembers(write_id):
                    over.append(key)
                else:
                    dangling.append((key, (encoded, pk, write_id)))
            await self.judge_dangling(name, dangling, over)
            self.tick(len(keys))

    async def judge_dangling(
        self, name: str, dangling: list[tuple[str, tuple[str, str, str]]], over: list[str]
    ) -> None:
        """Dangling entries of finished writes, and old ones, are problems (deleted
        by repair); young ones of writes that may be in flight are not.

        An entry is judged old first and its item read again after that: a
        write in flight commits within its window, so once the entry is older
        than the grace, an item read that still does not name it is final.
        """
        for key in over:
            self.report.note("dangling_entries", key)
        old: list[str] = list(over)
        target = self.target
        objects = await gather_all(
            (read_fresh(target.storage, key) for key, _ in dangling), target.concurrency
        )
        aged: list[tuple[str, tuple[str, str, str]]] = []
        for (key, entry), obj in zip(dangling, objects, strict=True):
            if obj is None:
                continue  # deleted meanwhile
            if self.grace > 0 and not older_than(obj, self.grace):
                self.report.note("in_flight_entries", key)
                self.repair.skipped += self.fix
                continue
            aged.append((key, entry))
        pks = list(dict.fromkeys(entry[1] for _, entry in aged))
        holders = dict(
            zip(
                pks,
                await gather_all((self.holder(pk) for pk in pks), target.concurrency),
                strict=True,
            )
        )
        for key, (encoded, pk, write_id) in aged:
            holder = holders[pk]
            live = holder.live
            if holder.unreadable or (
                live is not None and live.entry_write(name, encoded) == write_id
            ):
                continue  # named after all (its write committed meanwhile)
            self.report.note("dangling_entries", key)
            old.append(key)
        if self.fix and old:
            await target.storage.delete_many(old)
            self.repair.deleted_entries += len(old)

    async def find_missing_entries(self, name: str) -> None:
        target = self.target
        layout = target.layout
        async for keys in _pages(target.storage, layout.item_prefix):
            pks = [pk for pk in (self.pk_of_quiet(k) for k in keys) if pk is not None]
            holders = await gather_all((self.holder(pk) for pk in pks), target.concurrency)
            wanted = [
                layout.entry_key(name, encoded, envelope.pk, write_id)
                for holder in holders
                if (envelope := holder.live) is not None
                for encoded, write_id in envelope.entries.get(name, {}).items()
            ]
            found = await gather_all(
                (read_fresh(target.storage, k) for k in wanted), target.concurrency
            )
            missing = [k for k, obj in zip(wanted, found, strict=True) if obj is None]
            for key in missing:
                self.report.note("missing_entries", key)
            if self.fix and missing:
                await gather_all((target.storage.put(k, b"") for k in missing), target.concurrency)
                self.repair.restored_entries += len(missing)

    def pk_of_quiet(self, key: str) -> str | None:
        try:
            return self.target.layout.pk_from_item_key(key)
        except ValueError:
            return None

    # -- reservations ------------------------------------------------------

    async def scan_reservations(self, name: str) -> None:
        target = self.target
        async for keys in _pages(target.storage, target.layout.reservation_prefix(name)):
            await gather_all((self.check_reservation(name, k) for k in keys), target.concurrency)
            self.report.reservations_scanned += len(keys)
            self.tick(len(keys))

    async def check_reservation(self, name: str, key: str) -> None:
        target = self.target
        obj = await read_fresh(target.storage, key)
        if obj is None:
            return
        encoded = key[len(target.layout.reservation_prefix(name)) :]
        holder = _reservation_or_none(obj, key)
        if holder is not None and holder.released:
            self.report.note("released_reservations", key)
            return
        item = await self.holder(holder.pk) if holder is not None else _Holder(None)
        if item.unreadable:
            return
        live = item.live
        if live is not None and live.reservation_version(name, encoded) is not None:
            return
        over = (
            holder is not None
            and item.envelope is not None
            and item.envelope.remembers(holder.write_id)
        )
        if not over and self.grace > 0 and not older_than(obj, self.grace):
            self.report.note("in_flight_reservations", key)
            self.repair.skipped += self.fix
            return
        self.report.note("stale_reservations", key)
        if self.fix:
            await self.free(key, obj, holder)

    async def free(self, key: str, obj: StoredObject, holder: Reservation | None) -> None:
        """Free a stale reservation at the version judged stale, never another."""
        storage = self.target.storage
        try:
            if storage.supports_conditional_delete:
                await storage.delete(key, if_version=obj.version)
            else:
                pk = holder.pk if holder is not None else ""
                marker = Reservation(pk, "", self.target.clock(), released=True).encode()
                await storage.put(key, marker, if_version=obj.version)
            self.repair.deleted_reservations += 1
        except PreconditionFailed:
            self.repair.skipped += 1


def _reservation_or_none(obj: StoredObject | None, key: str) -> Reservation | None:
    if obj is None:
        return None
    try:
        return decode_reservation(obj.data, key=key)
    except CorruptItemError:
        return None


async def check(
    target: Maintained, *, grace: float | None = None, progress: Progress = None
) -> CheckReport:
    """Scan every item, entry and reservation; change nothing."""
    scan = _Scan(
        target, fix=False, grace=target.lease if grace is None else grace, progress=progress
    )
    await scan.run()
    return scan.report


async def repair(
    target: Maintained, *, grace: float | None = None, progress: Progress = None
) -> RepairReport:
    """Fix what :func:`check` finds.  ``grace`` defaults to the unique lease."""
    scan = _Scan(
        target, fix=True, grace=target.lease if grace is None else grace, progress=progress
    )
    await scan.run()
    return scan.repair


async def reindex(target: Maintained, name: str, *, progress: Progress = None) -> ReindexReport:
    """Rebuild collection ``name`` from the items (e.g. one added after items existed).

    Each item whose stored entries for ``name`` differ from what ``key(item)``
    gives now is rewritten through the normal write protocol.  Items that
    cannot be read back, or whose key cannot be computed from the stored
    (deserialised) form, are counted in ``failed`` with the reason.
    """
    if name not in target.collections:
        raise InvalidArgument(f"no collection {name!r}; known: {sorted(target.collections)}")
    report = ReindexReport(name)
    layout = target.layout
    async for keys in _pages(target.storage, layout.item_prefix):
        pks: list[str] = []
        for key in keys:
            try:
                pks.append(layout.pk_from_item_key(key))
            except ValueError:
                continue  # not an item of ours
        results = await gather_bounded(
            (target.writer.reindex(pk, name) for pk in pks), target.concurrency
        )
        for pk, result in zip(pks, results, strict=True):
            if result is None:
                continue  # no item (removed meanwhile, or a tombstone)
            report.items_scanned += 1
            if isinstance(result, SSShelfError):
                report.failed += 1
                if len(report.errors) < REPORT_SAMPLE:
                    report.errors.append(f"{pk}: {result}")
            elif isinstance(result, BaseException):
                raise result
            else:
                report.reindexed += bool(result)
        if progress is not None:
            progress(report.items_scanned)
    return report
