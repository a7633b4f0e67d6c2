"""CManager: an item manager plus collections, kept consistent on every write.

The write protocol (see ``docs/consistency.md``):

1. Everything is validated and serialised before the first request.
2. New index entries and unique reservations are written, in parallel
   (together with reading the current item when it is not known yet).
3. The item is written conditionally on the version it replaces: the commit.
4. Entries and reservations the item no longer holds are deleted.

Readers verify each index entry against the item, so a crash between any two
requests leaves the old state or the new one visible, never a mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, NamedTuple, Self

from . import keys as keycodec
from . import repair as repair_module
from ._concurrency import gather_bounded
from .collections import Collection, Entry
from .envelope import Envelope, Holdings, Reservation, decode_envelope, decode_reservation
from .errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    CorruptItemError,
    InvalidKeyError,
    PreconditionFailed,
    SerializationError,
    SSShelfError,
    StorageError,
    UniqueViolation,
    UnsupportedOperation,
)
from .items import IManager
from .layout import Layout, check_name, normalize_pk
from .repair import CheckReport, ReindexReport, RepairReport
from .storages.base import MAX_DELETE_BATCH, Storage, StoredObject
from .storages.url import open_storage

log = logging.getLogger("ssshelf")

ProgressCallback = Callable[[int], None]


class Versioned(NamedTuple):
    """An item with the version tag of the stored object it was read from."""

    item: Any
    version: str


@dataclass(slots=True)
class _Plan:
    """What an item should look like in storage; computed before any request."""

    pk: str
    item_key: str
    payload: bytes
    #: collection -> encoded key tuples the item belongs under
    entries: dict[str, list[str]]
    #: unique collection -> encoded values to reserve
    uniques: dict[str, list[str]]


@dataclass(slots=True)
class _Base:
    """The stored item a write replaces (``obj`` None: there is none)."""

    obj: StoredObject | None
    envelope: Envelope | None

    @property
    def version(self) -> str | None:
        return self.obj.version if self.obj is not None else None


@dataclass(slots=True)
class _Attempt:
    """What one write operation has created so far (all of it is its alone)."""

    write_id: str
    entries: dict[str, str] = field(default_factory=dict)  # entry key -> collection
    reservations: dict[str, str] = field(default_factory=dict)  # reservation key -> version
    claimed_at: float | None = None


class _BaseChanged(Exception):
    """The stored item is newer than the base a write planned from."""


def _new_write_id() -> str:
    return os.urandom(8).hex()


class _ManagerMeta(type):
    """Collects Collection class attributes (inherited ones too) in declaration order."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> _ManagerMeta:
        declared: dict[str, Collection] = {}
        for base in reversed(bases):
            declared.update(getattr(base, "_declared_collections", {}))
        for attr, value in attrs.items():
            if isinstance(value, Collection):
                declared[attr] = value
        attrs["_declared_collections"] = declared
        return super().__new__(mcs, name, bases, attrs)


class CManager(metaclass=_ManagerMeta):
    """Items of one kind plus their collections, over one storage.

    Subclass it, set ``item_manager`` to an :class:`~ssshelf.items.IManager`
    and add :class:`~ssshelf.collections.Collection` instances as class
    attributes.  ``namespace`` (default: the item manager's class name) is the
    key prefix all of this manager's objects live under: set it explicitly so
    that renaming a class never orphans data.
    """

    _declared_collections: ClassVar[dict[str, Collection]]
    item_manager: ClassVar[IManager]
    namespace: ClassVar[str | None] = None
    #: Most requests one operation keeps in flight at once.
    max_concurrency: ClassVar[int] = 64
    #: Seconds a unique reservation protects a write that has not committed yet.
    unique_lease: ClassVar[float] = 30.0
    #: Attempts of a write that keeps losing races to concurrent writers.
    write_attempts: ClassVar[int] = 50
    #: Reads delete the dangling index entries they meet (older than the
    #: unique lease, so in-flight writes are never disturbed).
    read_repair: ClassVar[bool] = False
    #: Longest wait (seconds) between tries after losing a race.
    max_backoff: ClassVar[float] = 0.25
    #: How many (pk -> version, holdings) pairs are remembered to save reads.
    known_items_limit: ClassVar[int] = 10_000

    def __init__(
        self, storage: Storage | str | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        if not isinstance(getattr(type(self), "item_manager", None), IManager):
            raise ConfigurationError(
                f"{type(self).__name__}.item_manager must be an IManager instance"
            )
        self.storage: Storage = (
            open_storage(storage) if storage is None or isinstance(storage, str) else storage
        )
        namespace = self.namespace or type(self.item_manager).__name__
        self.layout = Layout(namespace)
        self.clock = clock
        self.collections: dict[str, Collection] = {}
        for name, declared in self._declared_collections.items():
            check_name("collection", name)
            bound = declared.bind(self, name)
            self.collections[name] = bound
            setattr(self, name, bound)
        self._known: OrderedDict[str, tuple[str, Envelope]] = OrderedDict()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the storage."""
        await self.storage.close()

    # -- planning (no requests) ----------------------------------------------

    def _plan(self, item: Any, *, keep: Envelope | None = None, only: str | None = None) -> _Plan:
        """Validate and serialise ``item``.  With ``only``, compute keys for that
        collection alone and keep the others as ``keep`` (the stored item) has them."""
        try:
            raw_pk = self.item_manager.get_pk(item)
        except Exception as exc:
            raise InvalidKeyError(f"get_pk failed for {item!r}: {exc!r}") from exc
        pk = normalize_pk(raw_pk)
        item_key = self.layout.item_key(pk)
        self._check_length(item_key, None, pk)
        try:
            payload = self.item_manager.serialize_item(item)
        except Exception as exc:
            raise SerializationError(f"cannot serialise item {pk!r}: {exc!r}") from exc
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise SerializationError(
                f"serialize_item must return bytes, got {type(payload).__name__} for item {pk!r}"
            )
        entries: dict[str, list[str]] = {}
        uniques: dict[str, list[str]] = {}
        for name, collection in self.collections.items():
            if only is not None and name != only:
                held = keep.entries.get(name, {}) if keep is not None else {}
                entries[name] = list(held)
                if collection.unique and held:
                    uniques[name] = list(keep.uniques.get(name, {})) if keep is not None else []
                continue
            encoded = self._encode_keys(name, collection, item, pk)
            entries[name] = encoded
            if collection.unique and encoded:
                for value in encoded:
                    self._check_length(self.layout.reservation_key(name, value), name, value)
                uniques[name] = list(encoded)
        return _Plan(pk, item_key, bytes(payload), entries, uniques)

    def _encode_keys(self, name: str, collection: Collection, item: Any, pk: str) -> list[str]:
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
            entry_key = self.layout.entry_key(name, encoded, pk, "0" * 16)
            if len(entry_key.encode()) > self.storage.max_key_length:
                longest = max(parts, key=lambda p: len(keycodec.encode_part(p)))
                raise InvalidKeyError(
                    f"collection {name!r}, item {pk!r}: index key is "
                    f"{len(entry_key.encode())} bytes, over the store's limit of "
                    f"{self.storage.max_key_length}; shorten the part {str(longest)[:60]!r}",
                    collection=name,
                    part=longest,
                )
            out.append(encoded)
        return out

    def _check_length(self, key: str, collection: str | None, part: object) -> None:
        size = len(key.encode())
        if size > self.storage.max_key_length:
            where = f"collection {collection!r}" if collection else "item key"
            raise InvalidKeyError(
                f"{where}: key is {size} bytes, over the store's limit of "
                f"{self.storage.max_key_length}; shorten {str(part)[:60]!r}",
                collection=collection,
                part=part,
            )

    # -- reading -------------------------------------------------------------

    def _remember(self, pk: str, version: str, envelope: Envelope) -> None:
        self._known[pk] = (version, envelope)
        self._known.move_to_end(pk)
        while len(self._known) > self.known_items_limit:
            self._known.popitem(last=False)

    async def _read(self, pk: str, *, for_write: bool = False) -> _Base:
        """Read the stored item.  A corrupt one raises, except for writers,
        which see it as holding nothing (so it can be replaced or removed)."""
        key = self.layout.item_key(pk)
        obj = await self.storage.get(key)
        if obj is None:
            self._known.pop(pk, None)
            return _Base(None, None)
        try:
            envelope = decode_envelope(obj.data, key=key)
        except CorruptItemError:
            if not for_write:
                raise
            envelope = Envelope(pk, "", 0.0, b"")
        self._remember(pk, obj.version, envelope)
        return _Base(obj, envelope)

    def _deserialize(self, envelope: Envelope, key: str) -> Any:
        try:
            return self.item_manager.deserialize_item(envelope.payload)
        except Exception as exc:
            raise CorruptItemError(f"cannot deserialise item {key!r}: {exc!r}", key=key) from exc

    async def get_item_with_version(self, pk: Any) -> Versioned | None:
        """The item and its version tag, or ``None``: one request."""
        pk = normalize_pk(pk)
        base = await self._read(pk)
        if base.obj is None or base.envelope is None:
            return None
        return Versioned(self._deserialize(base.envelope, base.obj.key), base.obj.version)

    async def get_item(self, pk: Any) -> Any:
        """The item stored under ``pk`` (as ``get_pk`` returns it), or ``None``."""
        found = await self.get_item_with_version(pk)
        return found.item if found is not None else None

    async def get_items_by_pk(self, pks: Iterable[Any]) -> list[Any]:
        """Items for many pks, fetched concurrently; ``None`` where absent."""
        wanted = [normalize_pk(pk) for pk in pks]
        results = await gather_bounded((self.get_item(pk) for pk in wanted), self.max_concurrency)
        return [_unwrap(r) for r in results]

    async def verified_items(self, collection: str, entries: Sequence[Entry]) -> list[Any]:
        """Items behind listed entries, keeping only entries their item names.

        Each distinct pk is fetched once, all concurrently.
        """
        pks = list(dict.fromkeys(e.pk for e in entries))
        bases = await gather_bounded((self._read(pk) for pk in pks), self.max_concurrency)
        by_pk: dict[str, _Base] = {}
        for pk, result in zip(pks, bases, strict=True):
            base = _unwrap(result)
            if base.obj is not None and base.envelope is not None:
                by_pk[pk] = base
        items: list[Any] = []
        decoded: dict[str, Any] = {}
        dangling: list[Entry] = []
        for entry in entries:
            base = by_pk.get(entry.pk)
            if (
                base is None
                or base.envelope is None
                or base.obj is None
                or base.envelope.entries.get(collection, {}).get(entry.encoded) != entry.write_id
            ):
                dangling.append(entry)
                continue
            if entry.pk not in decoded:
                decoded[entry.pk] = self._deserialize(base.envelope, base.obj.key)
            items.append(decoded[entry.pk])
        if dangling and self.read_repair:
            await self._repair_on_read(collection, dangling)
        return items

    async def _repair_on_read(self, collection: str, dangling: Sequence[Entry]) -> None:
        """Delete dangling entries older than the unique lease.

        A younger one may belong to a write that has not committed yet, which
        would then miss its entry; so each is read first for its age.
        """
        keys = [self.layout.entry_key(collection, e.encoded, e.pk, e.write_id) for e in dangling]
        objects = await gather_bounded((self.storage.get(k) for k in keys), self.max_concurrency)
        now = self.clock()
        old = [
            key
            for key, obj in zip(keys, objects, strict=True)
            if isinstance(obj, StoredObject)
            and obj.last_modified is not None
            and now - obj.last_modified.timestamp() > self.unique_lease
        ]
        if old:
            try:
                await self.storage.delete_many(old)
            except SSShelfError as exc:
                log.warning("ssshelf: read-repair of %d entries failed: %s", len(old), exc)

    async def item_by_unique(self, collection: str, encoded: str) -> Any:
        """The item holding ``encoded`` in unique ``collection``, or ``None``."""
        key = self.layout.reservation_key(collection, encoded)
        obj = await self.storage.get(key)
        if obj is None:
            return None
        owner = decode_reservation(obj.data, key=key)
        base = await self._read(owner.pk)
        if base.envelope is None or base.obj is None:
            return None
        if encoded not in base.envelope.uniques.get(collection, {}):
            return None
        return self._deserialize(base.envelope, base.obj.key)

    # -- writing -------------------------------------------------------------

    def _require_conditional(self, what: str) -> None:
        if not self.storage.supports_conditional_put:
            raise UnsupportedOperation(
                f"{what} needs conditional writes (If-None-Match / If-Match), which this "
                "store does not support; use a store that does (AWS S3, MinIO, Ceph RGW, R2, "
                "SQLite, memory)",
                operation=what,
            )

    async def add_item(self, item: Any, *, if_version: str | None = None) -> str:
        """Store ``item`` (create or replace) and keep every collection right.

        Returns the new version tag.  With ``if_version`` the write happens
        only if the stored item is still at that version (else
        :class:`ConflictError`; ``None`` as the stored state is never "at a
        version").  Without it, a concurrent writer of the same pk never makes
        this fail: the write is retried on the newer state (last writer wins).
        """
        plan = self._plan(item)
        if if_version is not None or plan.uniques:
            self._require_conditional("add_item with if_version or unique collections")
        return await self._write(plan, expect=if_version, create_only=False)

    async def create_item(self, item: Any) -> str:
        """Store a new item; :class:`AlreadyExistsError` if its pk is taken."""
        plan = self._plan(item)
        self._require_conditional("create_item")
        return await self._write(plan, expect=None, create_only=True)

    async def update_item(self, pk: Any, fn: Callable[[Any], Any], *, retries: int = 10) -> Any:
        """Read the item, apply ``fn`` and write the result if nobody wrote meanwhile.

        ``fn(item)`` returns the new item (or ``None`` after changing it in
        place); it may be a coroutine function.  On a conflict the item is
        read again and ``fn`` applied again, up to ``retries`` more times, then
        :class:`ConflictError`.  A missing item raises ``KeyError``.  Returns
        the item as written.
        """
        pk = normalize_pk(pk)
        self._require_conditional("update_item")
        attempt = _Attempt(_new_write_id())
        try:
            for tries in range(retries + 1):
                base = await self._read(pk)
                if base.obj is None or base.envelope is None:
                    raise KeyError(f"no item with pk {pk!r}")
                current = self._deserialize(base.envelope, base.obj.key)
                result = fn(current)
                if inspect.isawaitable(result):
                    result = await result
                new_item = current if result is None else result
                plan = self._plan(new_item)
                if plan.pk != pk:
                    raise InvalidKeyError(
                        f"update_item's fn changed the pk from {pk!r} to {plan.pk!r}"
                    )
                if await self._attempt(plan, base, attempt, expect=base.version, create_only=False):
                    return new_item
                attempt = await self._abandon(attempt, pk)
                await self._back_off(tries)
            raise ConflictError(
                f"update_item({pk!r}) lost to concurrent writers {retries + 1} times", pk=pk
            )
        except BaseException:
            await self._cleanup(attempt, pk)
            raise

    async def _back_off(self, tries: int) -> None:
        """Wait after a lost race so contending writers spread out (full jitter)."""
        await asyncio.sleep(random.uniform(0, min(self.max_backoff, 0.002 * 2**tries)))

    async def _write(self, plan: _Plan, *, expect: str | None, create_only: bool) -> str:
        attempt = _Attempt(_new_write_id())
        try:
            for tries in range(self.write_attempts):
                if tries:
                    await self._back_off(tries - 1)
                base = self._base_for(plan, create_only, expect)
                version = await self._attempt(
                    plan, base, attempt, expect=expect, create_only=create_only
                )
                if version:
                    return version
                if expect is not None:
                    raise ConflictError(
                        f"item {plan.pk!r} changed since version {expect!r}", pk=plan.pk
                    )
            raise ConflictError(
                f"writing item {plan.pk!r} lost to concurrent writers {self.write_attempts} times",
                pk=plan.pk,
            )
        except BaseException:
            await self._cleanup(attempt, plan.pk)
            raise

    def _base_for(self, plan: _Plan, create_only: bool, expect: str | None) -> _Base | None:
        """The base state if known without a request; ``None`` means read it in round 1."""
        if create_only:
            return _Base(None, None)
        known = self._known.get(plan.pk)
        if known is not None and (expect is None or known[0] == expect):
            version, envelope = known
            return _Base(StoredObject(plan.item_key, b"", version), envelope)
        return None

    async def _attempt(
        self,
        plan: _Plan,
        base: _Base | None,
        attempt: _Attempt,
        *,
        expect: str | None,
        create_only: bool,
    ) -> str:
        """One try at committing ``plan``.  Returns the new version, or "" if
        the base changed under us (the caller retries or gives up)."""
        # Round 1: read the base (unless known), write entries and reservations.
        wanted_entries = {
            self.layout.entry_key(c, enc, plan.pk, attempt.write_id): c
            for c, encs in plan.entries.items()
            for enc in encs
            if base is None
            or base.envelope is None
            or base.envelope.entries.get(c, {}).get(enc) is None
        }
        to_write = [k for k in wanted_entries if k not in attempt.entries]
        wanted_uniques = [
            (c, enc)
            for c, encs in plan.uniques.items()
            for enc in encs
            if (
                base is None or base.envelope is None or enc not in base.envelope.uniques.get(c, {})
            )
            and self.layout.reservation_key(c, enc) not in attempt.reservations
        ]
        if wanted_uniques and attempt.claimed_at is None:
            attempt.claimed_at = self.clock()
        requests: list[Awaitable[Any]] = [self.storage.put(k, b"") for k in to_write]
        requests += [self._reserve(c, enc, plan.pk, attempt) for c, enc in wanted_uniques]
        read_base = base is None
        if read_base:
            requests.append(self._read(plan.pk, for_write=True))
        results = await gather_bounded(requests, self.max_concurrency)
        for key, result in zip(to_write, results, strict=False):
            if not isinstance(result, BaseException):
                attempt.entries[key] = wanted_entries[key]
        _raise_first(results)
        if read_base:
            read = results[-1]
            assert isinstance(read, _Base)
            base = read
        assert base is not None

        if create_only and base.obj is not None:
            raise AlreadyExistsError(f"an item with pk {plan.pk!r} already exists", pk=plan.pk)
        if expect is not None and base.version != expect:
            raise ConflictError(
                f"item {plan.pk!r} is at version {base.version!r}, not {expect!r}", pk=plan.pk
            )
        # Values taken by someone else (If-None-Match failed) and not ours via the base.
        try:
            await self._resolve_taken(plan, base, attempt)
        except _BaseChanged:
            if create_only:
                raise AlreadyExistsError(
                    f"an item with pk {plan.pk!r} already exists", pk=plan.pk
                ) from None
            self._known.pop(plan.pk, None)
            return ""
        if (
            attempt.claimed_at is not None
            and self.clock() - attempt.claimed_at > self.unique_lease / 2
        ):
            raise StorageError(
                f"writing item {plan.pk!r} took longer than half the unique lease "
                f"({self.unique_lease} s); its reservations may be taken over, so it was "
                "not committed; retry",
                operation="add_item",
                key=plan.item_key,
            )

        # Round 2: the commit.
        envelope = self._envelope(plan, base, attempt)
        try:
            if not self.storage.supports_conditional_put:
                version = await self.storage.put(plan.item_key, envelope.encode())
            elif base.obj is None:
                version = await self.storage.put(plan.item_key, envelope.encode(), if_absent=True)
            else:
                version = await self.storage.put(
                    plan.item_key, envelope.encode(), if_version=base.obj.version
                )
        except PreconditionFailed:
            self._known.pop(plan.pk, None)
            if create_only:
                raise AlreadyExistsError(
                    f"an item with pk {plan.pk!r} already exists", pk=plan.pk
                ) from None
            return ""
        self._remember(plan.pk, version, envelope)
        # Entries an earlier try of update_item wrote that this plan dropped.
        referenced = {
            self.layout.entry_key(c, enc, plan.pk, w)
            for c, held in envelope.entries.items()
            for enc, w in held.items()
        }
        leftovers = [k for k in attempt.entries if k not in referenced]
        attempt.entries, attempt.reservations = {}, {}

        # Round 3: what the item no longer holds.
        await self._release(plan.pk, base.envelope, envelope, leftovers)
        return version

    def _envelope(self, plan: _Plan, base: _Base, attempt: _Attempt) -> Envelope:
        old_entries = base.envelope.entries if base.envelope else {}
        old_uniques = base.envelope.uniques if base.envelope else {}
        entries: Holdings = {}
        for c, encs in plan.entries.items():
            held = entries.setdefault(c, {})
            for enc in encs:
                key = self.layout.entry_key(c, enc, plan.pk, attempt.write_id)
                held[enc] = attempt.write_id if key in attempt.entries else old_entries[c][enc]
        uniques: Holdings = {}
        for c, encs in plan.uniques.items():
            held = uniques.setdefault(c, {})
            for enc in encs:
                key = self.layout.reservation_key(c, enc)
                held[enc] = attempt.reservations.get(key) or old_uniques[c][enc]
        return Envelope(plan.pk, attempt.write_id, self.clock(), plan.payload, entries, uniques)

    async def _reserve(self, collection: str, encoded: str, pk: str, attempt: _Attempt) -> None:
        """Create the reservation; a taken value is left for ``_resolve_taken``."""
        key = self.layout.reservation_key(collection, encoded)
        body = Reservation(pk, attempt.write_id, self.clock()).encode()
        with contextlib.suppress(PreconditionFailed):
            attempt.reservations[key] = await self.storage.put(key, body, if_absent=True)

    async def _resolve_taken(self, plan: _Plan, base: _Base, attempt: _Attempt) -> None:
        taken = [
            (c, enc)
            for c, encs in plan.uniques.items()
            for enc in encs
            if self.layout.reservation_key(c, enc) not in attempt.reservations
            and not (base.envelope is not None and enc in base.envelope.uniques.get(c, {}))
        ]
        results = await gather_bounded(
            (self._take_over(c, enc, plan.pk, attempt) for c, enc in taken),
            self.max_concurrency,
        )
        _raise_first(results)

    async def _take_over(self, collection: str, encoded: str, pk: str, attempt: _Attempt) -> None:
        """Claim a reservation that exists: ours to take only if its holder
        no longer holds the value and its lease has run out (or it is ours)."""
        key = self.layout.reservation_key(collection, encoded)
        value = keycodec.decode_tuple(encoded)
        shown = value[0] if len(value) == 1 else value
        body = Reservation(pk, attempt.write_id, self.clock()).encode()
        for _ in range(self.write_attempts):
            obj = await self.storage.get(key)
            try:
                if obj is None:
                    attempt.reservations[key] = await self.storage.put(key, body, if_absent=True)
                    return
                holder = decode_reservation(obj.data, key=key)
                if holder.pk == pk:
                    mine = await self._read(pk, for_write=True)
                    if mine.envelope is not None and encoded in mine.envelope.uniques.get(
                        collection, {}
                    ):
                        raise _BaseChanged  # held by this item as stored now, not our base
                else:
                    owner = await self._read(holder.pk)
                    if owner.envelope is not None and encoded in owner.envelope.uniques.get(
                        collection, {}
                    ):
                        raise UniqueViolation(
                            f"{collection} {shown!r} is already taken by item {holder.pk!r}",
                            collection=collection,
                            value=shown,
                            pk=pk,
                            owner=holder.pk,
                        )
                    if self.clock() - holder.at < self.unique_lease:
                        raise UniqueViolation(
                            f"{collection} {shown!r} is being claimed by a concurrent write of "
                            f"item {holder.pk!r}; if that write crashed, the claim expires "
                            f"{self.unique_lease:.0f} s after it was made",
                            collection=collection,
                            value=shown,
                            pk=pk,
                            owner=holder.pk,
                        )
                attempt.reservations[key] = await self.storage.put(
                    key, body, if_version=obj.version
                )
                return
            except PreconditionFailed:
                continue  # it changed under us: look again
        raise ConflictError(f"could not claim {collection} {shown!r}: too much contention", pk=pk)

    async def _release(
        self,
        pk: str,
        old: Envelope | None,
        new: Envelope | None,
        extra_entries: Sequence[str] = (),
    ) -> None:
        """Delete entries and reservations ``old`` held that ``new`` does not.

        The item is already committed, so failures here only leave garbage
        that reads skip and ``repair`` removes; they are logged, not raised.
        """
        old_entries = old.entries if old is not None else {}
        old_uniques = old.uniques if old is not None else {}
        stale_entries = [
            self.layout.entry_key(c, enc, pk, write_id)
            for c, held in old_entries.items()
            for enc, write_id in held.items()
            if new is None or new.entries.get(c, {}).get(enc) != write_id
        ] + list(extra_entries)
        stale_reservations = [
            (self.layout.reservation_key(c, enc), version)
            for c, held in old_uniques.items()
            for enc, version in held.items()
            if new is None or new.uniques.get(c, {}).get(enc) != version
        ]
        requests: list[Awaitable[None]] = [
            self.storage.delete_many(stale_entries[i : i + MAX_DELETE_BATCH])
            for i in range(0, len(stale_entries), MAX_DELETE_BATCH)
        ]
        requests += [self._delete_reservation(k, v) for k, v in stale_reservations]
        results = await gather_bounded(requests, self.max_concurrency)
        for result in results:
            if isinstance(result, SSShelfError):
                log.warning("ssshelf: leaving garbage for repair after item %r: %s", pk, result)
            elif isinstance(result, BaseException):
                raise result

    async def _delete_reservation(self, key: str, version: str) -> None:
        """Delete a reservation only if it is still the version we know."""
        if self.storage.supports_conditional_delete:
            with contextlib.suppress(PreconditionFailed):
                await self.storage.delete(key, if_version=version)
            return
        obj = await self.storage.get(key)
        if obj is not None and obj.version == version:
            await self.storage.delete(key)

    async def _abandon(self, attempt: _Attempt, pk: str) -> _Attempt:
        """After a lost race in update_item: drop reservations (the next try
        re-plans), keep entries (they are reused if still wanted)."""
        await self._cleanup(_Attempt(attempt.write_id, {}, attempt.reservations), pk)
        return _Attempt(attempt.write_id, attempt.entries, {}, None)

    async def _cleanup(self, attempt: _Attempt, pk: str) -> None:
        """Delete what a failed write created: only objects it alone wrote."""
        if not attempt.entries and not attempt.reservations:
            return
        keys = list(attempt.entries)
        requests: list[Awaitable[None]] = [
            self.storage.delete_many(keys[i : i + MAX_DELETE_BATCH])
            for i in range(0, len(keys), MAX_DELETE_BATCH)
        ]
        requests += [self._delete_reservation(k, v) for k, v in attempt.reservations.items()]
        attempt.entries, attempt.reservations = {}, {}
        results = await gather_bounded(requests, self.max_concurrency)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("ssshelf: cleanup after failed write of %r incomplete: %s", pk, result)

    async def remove_item(self, item_or_pk: Any, *, if_version: str | None = None) -> bool:
        """Remove an item and its entries.  Returns False if it was not there.

        Two dependent round trips when this manager knows the item's version
        (it read or wrote it), three otherwise.  With ``if_version`` it
        removes only that version (else :class:`ConflictError`).
        """
        if isinstance(item_or_pk, str | int) and not isinstance(item_or_pk, bool):
            pk = normalize_pk(item_or_pk)
        else:
            pk = self._plan(item_or_pk).pk
        if if_version is not None:
            self._require_conditional("remove_item with if_version")
        key = self.layout.item_key(pk)
        for _ in range(self.write_attempts):
            known = self._known.get(pk)
            if known is not None and (if_version is None or known[0] == if_version):
                base = _Base(StoredObject(key, b"", known[0]), known[1])
            else:
                base = await self._read(pk, for_write=True)
            if base.obj is None or base.envelope is None:
                if if_version is not None:
                    raise ConflictError(f"item {pk!r} does not exist", pk=pk)
                return False
            if if_version is not None and base.obj.version != if_version:
                raise ConflictError(
                    f"item {pk!r} is at version {base.obj.version!r}, not {if_version!r}", pk=pk
                )
            try:
                if self.storage.supports_conditional_delete:
                    await self.storage.delete(key, if_version=base.obj.version)
                else:
                    await self.storage.delete(key)
            except PreconditionFailed:
                self._known.pop(pk, None)
                continue
            self._known.pop(pk, None)
            await self._release(pk, base.envelope, None)
            return True
        raise ConflictError(f"removing item {pk!r} lost to concurrent writers", pk=pk)

    async def reindex_item(self, pk: str, collection: str) -> bool:
        """Bring one item's entries in ``collection`` in line with ``key(item)``.

        Returns True if the item was rewritten, False if it was already right
        or is gone.  Other collections are kept as stored.
        """
        base = await self._read(pk)
        if base.obj is None or base.envelope is None:
            return False
        item = self._deserialize(base.envelope, base.obj.key)
        plan = self._plan(item, keep=base.envelope, only=collection)
        same_entries = set(plan.entries.get(collection, [])) == set(
            base.envelope.entries.get(collection, {})
        )
        same_uniques = set(plan.uniques.get(collection, [])) == set(
            base.envelope.uniques.get(collection, {})
        )
        if same_entries and same_uniques:
            return False
        attempt = _Attempt(_new_write_id())
        try:
            if await self._attempt(plan, base, attempt, expect=base.version, create_only=False):
                return True
        except BaseException:
            await self._cleanup(attempt, pk)
            raise
        await self._cleanup(attempt, pk)
        raise ConflictError(f"item {pk!r} changed while it was reindexed; run again", pk=pk)

    # -- maintenance ---------------------------------------------------------

    async def check(self, *, progress: ProgressCallback | None = None) -> CheckReport:
        """Find dangling/missing entries, stale/missing reservations and
        unreadable items (see :mod:`ssshelf.repair`).  Changes nothing."""
        return await repair_module.check(self, progress=progress)

    async def repair(
        self, *, grace: float | None = None, progress: ProgressCallback | None = None
    ) -> RepairReport:
        """Fix what :meth:`check` finds; objects younger than ``grace`` seconds
        (default: the unique lease) are left for in-flight writes."""
        return await repair_module.repair(self, grace=grace, progress=progress)

    async def reindex(
        self, collection: str, *, progress: ProgressCallback | None = None
    ) -> ReindexReport:
        """Rebuild one collection from the stored items."""
        return await repair_module.reindex(self, collection, progress=progress)

    # -- bulk ----------------------------------------------------------------

    async def add_items(
        self, items: Iterable[Any], *, progress: ProgressCallback | None = None
    ) -> int:
        """Store many items, pipelined with bounded concurrency, in bounded memory.

        Every item is validated as it is reached; the first failure stops the
        load after the writes already started finish, and is raised.  Returns
        how many items were written.  ``progress(n)`` is called with the
        running count.
        """
        return await self._bulk(items, self.add_item, progress)

    async def remove_items(
        self, items_or_pks: Iterable[Any], *, progress: ProgressCallback | None = None
    ) -> int:
        """Remove many items (as :meth:`remove_item`); returns how many existed."""
        removed = 0

        async def one(x: Any) -> None:
            nonlocal removed
            existed = await self.remove_item(x)
            removed += existed

        await self._bulk(items_or_pks, one, progress)
        return removed

    async def _bulk(
        self,
        items: Iterable[Any],
        op: Callable[[Any], Awaitable[Any]],
        progress: ProgressCallback | None,
    ) -> int:
        window = max(1, self.max_concurrency // 4)
        done = 0
        pending: set[asyncio.Task[Any]] = set()
        failure: BaseException | None = None
        iterator = iter(items)
        while True:
            while failure is None and len(pending) < window:
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                pending.add(asyncio.ensure_future(op(item)))
            if not pending:
                break
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task.exception() is not None:
                    failure = failure or task.exception()
                else:
                    done += 1
            if progress is not None:
                progress(done)
        if failure is not None:
            raise failure
        return done


def _raise_first(results: Sequence[object]) -> None:
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _unwrap(result: Any) -> Any:
    if isinstance(result, BaseException):
        raise result
    return result
