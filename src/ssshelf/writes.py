"""The write protocol: how one item and its index objects are changed.

Mixed into :class:`ssshelf.managers.CManager`; see that module's docstring
and ``docs/consistency.md`` for the protocol and its invariants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import keys as keycodec
from ._concurrency import gather_bounded, raise_first
from .collections import Collection
from .envelope import Envelope, Holdings, Reservation, decode_reservation
from .errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidKeyError,
    PreconditionFailed,
    SerializationError,
    SSShelfError,
    StorageError,
    UniqueViolation,
    UnsupportedOperation,
)
from .items import IManager
from .layout import Layout, normalize_pk
from .storages.base import MAX_DELETE_BATCH, Storage, StoredObject

log = logging.getLogger("ssshelf")


@dataclass(slots=True)
class WritePlan:
    """What an item should look like in storage; computed before any request."""

    pk: str
    item_key: str
    payload: bytes
    #: collection -> encoded key tuples the item belongs under
    entries: dict[str, list[str]]
    #: unique collection -> encoded values to reserve
    uniques: dict[str, list[str]]


@dataclass(slots=True)
class Current:
    """The stored item a write replaces (``obj`` None: there is none)."""

    obj: StoredObject | None
    envelope: Envelope | None

    @property
    def version(self) -> str | None:
        return self.obj.version if self.obj is not None else None


@dataclass(slots=True)
class WriteAttempt:
    """What one write operation has created so far (all of it is its alone)."""

    write_id: str
    entries: dict[str, str] = field(default_factory=dict)  # entry key -> collection
    reservations: dict[str, str] = field(default_factory=dict)  # reservation key -> version
    claimed_at: float | None = None


class _BaseChanged(Exception):
    """The stored item is newer than the base a write planned from."""


def new_write_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


class WriteProtocol:
    """Planning, committing and cleaning up writes; a CManager is one."""

    storage: Storage
    layout: Layout
    clock: Callable[[], float]
    rng: random.Random
    collections: dict[str, Collection]
    item_manager: ClassVar[IManager]
    max_concurrency: ClassVar[int]
    unique_lease: ClassVar[float]
    write_attempts: ClassVar[int]
    max_backoff: ClassVar[float]
    _known: OrderedDict[str, tuple[str, Envelope]]

    async def _read(self, pk: str, *, for_write: bool = False) -> Current:
        raise NotImplementedError

    def _remember(self, pk: str, version: str, envelope: Envelope) -> None:
        raise NotImplementedError

    # -- planning (no requests) ----------------------------------------------

    def _plan(
        self, item: Any, *, keep: Envelope | None = None, only: str | None = None
    ) -> WritePlan:
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
        return WritePlan(pk, item_key, bytes(payload), entries, uniques)

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

    def _require_conditional(self, what: str) -> None:
        if not self.storage.supports_conditional_put:
            raise UnsupportedOperation(
                f"{what} needs conditional writes (If-None-Match / If-Match), which this "
                "store does not support; use a store that does (AWS S3, MinIO, Ceph RGW, R2, "
                "SQLite, memory)",
                operation=what,
            )

    async def _back_off(self, tries: int) -> None:
        """Wait after a lost race so contending writers spread out (full jitter)."""
        await asyncio.sleep(self.rng.uniform(0, min(self.max_backoff, 0.002 * 2**tries)))

    async def _write(
        self, plan: WritePlan, *, expect: str | None, create_only: bool, assume_new: bool = False
    ) -> str:
        """Commit ``plan``, retrying lost races.  ``assume_new`` first tries it as
        a create (no read; one more round trip if the item turns out to exist)."""
        attempt = WriteAttempt(new_write_id(self.rng))
        try:
            for tries in range(self.write_attempts):
                if tries:
                    await self._back_off(tries - 1)
                assume_absent = create_only or (assume_new and not tries)
                base = self._base_for(plan, assume_absent, expect, create_only)
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

    def _base_for(
        self, plan: WritePlan, assume_absent: bool, expect: str | None, create_only: bool = False
    ) -> Current | None:
        """The base state if known without a request; ``None`` means read it in round 1.
        ``assume_absent``: no item, unless this manager knows one."""
        known = self._known.get(plan.pk)
        if assume_absent and (known is None or create_only):
            return Current(None, None)
        if known is not None and (expect is None or known[0] == expect):
            version, envelope = known
            return Current(StoredObject(plan.item_key, b"", version), envelope)
        return None

    async def _prepare(
        self, plan: WritePlan, base: Current | None, attempt: WriteAttempt
    ) -> Current:
        """Round 1: write the entries and reservations ``base`` lacks (all of
        them when it is unknown, reading it meanwhile).  Returns the base."""
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
        if base is None:
            requests.append(self._read(plan.pk, for_write=True))
        results = await gather_bounded(requests, self.max_concurrency)
        for key, result in zip(to_write, results, strict=False):
            if not isinstance(result, BaseException):
                attempt.entries[key] = wanted_entries[key]
        raise_first(results)
        if base is None:
            read = results[-1]
            assert isinstance(read, Current)
            return read
        return base

    async def _attempt(
        self,
        plan: WritePlan,
        base: Current | None,
        attempt: WriteAttempt,
        *,
        expect: str | None,
        create_only: bool,
    ) -> str:
        """One try at committing ``plan``.  Returns the new version, or "" if
        the base changed under us (the caller retries or gives up)."""
        base = await self._prepare(plan, base, attempt)
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

    def _envelope(self, plan: WritePlan, base: Current, attempt: WriteAttempt) -> Envelope:
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

    async def _reserve(self, collection: str, encoded: str, pk: str, attempt: WriteAttempt) -> None:
        """Create the reservation; a taken value is left for ``_resolve_taken``."""
        key = self.layout.reservation_key(collection, encoded)
        body = Reservation(pk, attempt.write_id, self.clock()).encode()
        with contextlib.suppress(PreconditionFailed):
            attempt.reservations[key] = await self.storage.put(key, body, if_absent=True)

    async def _resolve_taken(self, plan: WritePlan, base: Current, attempt: WriteAttempt) -> None:
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
        raise_first(results)

    async def _take_over(
        self, collection: str, encoded: str, pk: str, attempt: WriteAttempt
    ) -> None:
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

    async def _abandon(self, attempt: WriteAttempt, pk: str) -> WriteAttempt:
        """After a lost race in update_item: drop reservations (the next try
        re-plans), keep entries (they are reused if still wanted)."""
        await self._cleanup(WriteAttempt(attempt.write_id, {}, attempt.reservations), pk)
        return WriteAttempt(attempt.write_id, attempt.entries, {}, None)

    async def _cleanup(self, attempt: WriteAttempt, pk: str) -> None:
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
