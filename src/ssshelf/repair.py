"""check, repair and reindex: find and fix what crashes leave behind.

A crash between two requests of a write leaves garbage that reads already
skip: index entries no item names (dangling), reservations no item holds
(stale).  A store damaged behind ssshelf's back can also miss entries or
reservations that items name.  :func:`check` finds all of it, :func:`repair`
fixes it, both streaming page by page (memory bounded by the page size) with
requests in parallel.

Objects younger than ``grace`` seconds are left alone by ``repair``: they may
belong to a write still in flight (which would commit and then miss them).
On a quiet store (or after a crash, in tests) pass ``grace=0``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ._concurrency import gather_all, gather_bounded
from .envelope import Envelope, Reservation, decode_envelope, decode_reservation
from .errors import CorruptItemError, InvalidArgument, PreconditionFailed, SSShelfError
from .keys import decode_tuple

if TYPE_CHECKING:
    from .managers import CManager

#: How many keys of each kind a report keeps (counts are always exact).
REPORT_SAMPLE = 1000
_PAGE = 1000


def _sample() -> list[str]:
    return []


@dataclass
class CheckReport:
    """What :func:`check` found.  ``ok`` is true only when nothing is wrong."""

    items_scanned: int = 0
    entries_scanned: int = 0
    reservations_scanned: int = 0
    dangling_entries: int = 0
    missing_entries: int = 0
    stale_reservations: int = 0
    missing_reservations: int = 0
    unreadable_items: int = 0
    #: Up to REPORT_SAMPLE storage keys of each problem kind.
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.dangling_entries
            or self.missing_entries
            or self.stale_reservations
            or self.missing_reservations
            or self.unreadable_items
        )

    def note(self, kind: str, key: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        examples = self.examples.setdefault(kind, _sample())
        if len(examples) < REPORT_SAMPLE:
            examples.append(key)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class RepairReport:
    """What :func:`repair` did, plus the check it acted on."""

    check: CheckReport
    deleted_entries: int = 0
    restored_entries: int = 0
    deleted_reservations: int = 0
    restored_reservations: int = 0
    #: Problems left alone: too young (``grace``) or not fixable (unreadable items).
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted_entries": self.deleted_entries,
            "restored_entries": self.restored_entries,
            "deleted_reservations": self.deleted_reservations,
            "restored_reservations": self.restored_reservations,
            "skipped": self.skipped,
            "check": self.check.to_dict(),
        }


@dataclass
class ReindexReport:
    """What :func:`reindex` did for one collection."""

    collection: str
    items_scanned: int = 0
    reindexed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[int], None] | None


async def _pages(manager: CManager, prefix: str) -> AsyncIterator[list[str]]:
    after: str | None = None
    while True:
        page = await manager.storage.list(prefix, after=after, limit=_PAGE)
        if page.keys:
            yield page.keys
        if page.next_after is None:
            return
        after = page.next_after


class _Scan:
    """One pass of check (and, with ``fix``, repair) over a manager's objects."""

    def __init__(self, manager: CManager, *, fix: bool, grace: float, progress: Progress) -> None:
        self.manager = manager
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
        for name, collection in self.manager.collections.items():
            await self.scan_entries(name)
            if collection.unique:
                await self.scan_reservations(name)
        for name in self.manager.collections:
            if self.valid.get(name, 0) < self.named.get(name, 0):
                await self.find_missing_entries(name)

    async def read_item(self, pk: str) -> Envelope | None:
        key = self.manager.layout.item_key(pk)
        obj = await self.manager.storage.get(key)
        if obj is None:
            return None
        try:
            return decode_envelope(obj.data, key=key)
        except CorruptItemError:
            return None

    async def scan_items(self) -> None:
        manager = self.manager
        async for keys in _pages(manager, manager.layout.item_prefix):
            objects = await gather_all(
                (manager.storage.get(k) for k in keys), manager.max_concurrency
            )
            self.report.items_scanned += len(keys)
            readable: list[Envelope] = []
            for key, obj in zip(keys, objects, strict=True):
                if obj is None:
                    continue  # removed while we scanned
                try:
                    envelope = decode_envelope(obj.data, key=key)
                    manager._deserialize(envelope, key)
                except CorruptItemError:
                    self.report.note("unreadable_items", key)
                    self.repair.skipped += self.fix
                    continue
                for name in manager.collections:
                    self.named[name] = self.named.get(name, 0) + len(envelope.entries.get(name, {}))
                readable.append(envelope)
            await gather_all(
                (self.check_held_reservations(e) for e in readable), manager.max_concurrency
            )
            self.tick(len(keys))

    async def check_held_reservations(self, envelope: Envelope) -> None:
        manager = self.manager
        for name, held in envelope.uniques.items():
            if name not in manager.collections:
                continue
            for encoded in held:
                key = manager.layout.reservation_key(name, encoded)
                obj = await manager.storage.get(key)
                holder = decode_reservation(obj.data, key=key) if obj is not None else None
                if holder is not None and holder.pk == envelope.pk:
                    continue
                self.report.note("missing_reservations", key)
                if self.fix and obj is None:
                    body = Reservation(envelope.pk, envelope.write_id, manager.clock()).encode()
                    try:
                        await manager.storage.put(key, body, if_absent=True)
                        self.repair.restored_reservations += 1
                    except PreconditionFailed:
                        self.repair.skipped += 1
                elif self.fix:
                    self.repair.skipped += 1  # held by another item: needs a person

    async def scan_entries(self, name: str) -> None:
        manager = self.manager
        layout = manager.layout
        prefix = layout.entry_prefix(name)
        async for keys in _pages(manager, prefix):
            parsed: list[tuple[str, tuple[str, str, str] | None]] = []
            for key in keys:
                try:
                    entry = layout.parse_entry(name, key)
                    decode_tuple(entry[0])
                    parsed.append((key, entry))
                except ValueError:
                    parsed.append((key, None))
            pks = list(dict.fromkeys(p[1] for _, p in parsed if p is not None))
            envelopes = await gather_all(
                (self.read_item(pk) for pk in pks), manager.max_concurrency
            )
            by_pk = dict(zip(pks, envelopes, strict=True))
            dangling: list[str] = []
            for key, parts in parsed:
                self.report.entries_scanned += 1
                envelope = by_pk.get(parts[1]) if parts is not None else None
                if (
                    parts is not None
                    and envelope is not None
                    and envelope.entries.get(name, {}).get(parts[0]) == parts[2]
                ):
                    self.valid[name] = self.valid.get(name, 0) + 1
                    continue
                self.report.note("dangling_entries", key)
                dangling.append(key)
            if self.fix and dangling:
                await self.delete_old(dangling, "deleted_entries")
            self.tick(len(keys))

    async def delete_old(self, keys: list[str], counter: str) -> None:
        """Delete keys older than the grace period (all of them if grace is 0)."""
        manager = self.manager
        if self.grace > 0:
            objects = await gather_all(
                (manager.storage.get(k) for k in keys), manager.max_concurrency
            )
            now = manager.clock()
            old = []
            for key, obj in zip(keys, objects, strict=True):
                modified = obj.last_modified.timestamp() if obj and obj.last_modified else None
                if obj is None or (modified is not None and now - modified < self.grace):
                    self.repair.skipped += obj is not None
                    continue
                old.append(key)
            keys = old
        if keys:
            await manager.storage.delete_many(keys)
            setattr(self.repair, counter, getattr(self.repair, counter) + len(keys))

    async def scan_reservations(self, name: str) -> None:
        manager = self.manager
        async for keys in _pages(manager, manager.layout.reservation_prefix(name)):
            await gather_all(
                (self.check_reservation(name, k) for k in keys), manager.max_concurrency
            )
            self.report.reservations_scanned += len(keys)
            self.tick(len(keys))

    async def check_reservation(self, name: str, key: str) -> None:
        manager = self.manager
        obj = await manager.storage.get(key)
        if obj is None:
            return
        encoded = key[len(manager.layout.reservation_prefix(name)) :]
        try:
            holder: Reservation | None = decode_reservation(obj.data, key=key)
        except CorruptItemError:
            holder = None
        if holder is not None:
            envelope = await self.read_item(holder.pk)
            if envelope is not None and envelope.uniques.get(name, {}).get(encoded) is not None:
                return
        self.report.note("stale_reservations", key)
        if not self.fix:
            return
        if holder is not None and manager.clock() - holder.at < self.grace:
            self.repair.skipped += 1
            return
        try:
            if manager.storage.supports_conditional_delete:
                await manager.storage.delete(key, if_version=obj.version)
            else:
                await manager.storage.delete(key)
            self.repair.deleted_reservations += 1
        except PreconditionFailed:
            self.repair.skipped += 1

    async def find_missing_entries(self, name: str) -> None:
        manager = self.manager
        layout = manager.layout
        async for keys in _pages(manager, layout.item_prefix):
            envelopes = await gather_all(
                (self.read_item(layout.pk_from_item_key(k)) for k in keys),
                manager.max_concurrency,
            )
            wanted = [
                layout.entry_key(name, encoded, envelope.pk, write_id)
                for envelope in envelopes
                if envelope is not None
                for encoded, write_id in envelope.entries.get(name, {}).items()
            ]
            found = await gather_all(
                (manager.storage.get(k) for k in wanted), manager.max_concurrency
            )
            missing = [k for k, obj in zip(wanted, found, strict=True) if obj is None]
            for key in missing:
                self.report.note("missing_entries", key)
            if self.fix and missing:
                await gather_all(
                    (manager.storage.put(k, b"") for k in missing), manager.max_concurrency
                )
                self.repair.restored_entries += len(missing)


async def check(manager: CManager, *, progress: Progress = None) -> CheckReport:
    """Scan every item, entry and reservation of ``manager``; change nothing."""
    scan = _Scan(manager, fix=False, grace=0.0, progress=progress)
    await scan.run()
    return scan.report


async def repair(
    manager: CManager, *, grace: float | None = None, progress: Progress = None
) -> RepairReport:
    """Fix what :func:`check` finds.  ``grace`` defaults to the unique lease."""
    grace = manager.unique_lease if grace is None else grace
    scan = _Scan(manager, fix=True, grace=grace, progress=progress)
    await scan.run()
    return scan.repair


async def reindex(manager: CManager, name: str, *, progress: Progress = None) -> ReindexReport:
    """Rebuild collection ``name`` from the items (e.g. one added after items existed).

    Each item whose stored entries for ``name`` differ from what ``key(item)``
    gives now is rewritten through the normal write protocol.  Items whose
    key cannot be computed from the stored (deserialised) form are counted
    in ``failed`` with the reason.
    """
    if name not in manager.collections:
        raise InvalidArgument(f"no collection {name!r}; known: {sorted(manager.collections)}")
    report = ReindexReport(name)
    layout = manager.layout
    async for keys in _pages(manager, layout.item_prefix):
        pks = [layout.pk_from_item_key(k) for k in keys]
        results = await gather_bounded(
            (manager.reindex_item(pk, name) for pk in pks), manager.max_concurrency
        )
        for pk, result in zip(pks, results, strict=True):
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
