"""The write protocol: how one item and its index objects are changed.

One write, from the manager's call down to the storage, is one story:

1. **Round 1** — write the index entries and claim the unique values the
   stored item does not already give the new one (everything, when the stored
   item is not known yet; it is read in the same round).
2. **Commit** — write the item conditionally on the version it replaces
   (``If-Match``, or ``If-None-Match: *`` when there is none).  The commit
   request, retries included, must be answered within ``commit_window``
   seconds of the attempt's first request, or it is abandoned: so no commit
   lands after its claims could have been taken over or repaired away.
3. **Release** — delete what the new item no longer names.

A write whose commit has a known outcome of "not applied" deletes what it
created (only that: its entries carry its write id, its reservations are
deleted at the version it wrote).  A write whose commit outcome is not known
reads the item: its header names the last few writes that made it, so the
writer finds out whether its write took effect — even under later writes —
and otherwise raises :class:`~ssshelf.errors.OutcomeUnknown`, deleting
nothing the commit might reference.  A cancelled write deletes nothing
either (what it leaves is garbage for ``repair``, as after a crash).

See ``docs/consistency.md`` for the guarantees and the assumptions left.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import keys as keycodec
from ._admission import admission_for
from ._concurrency import gather_bounded, raise_first
from ._json import compact_json
from .envelope import (
    HISTORY,
    Envelope,
    Holdings,
    Reservation,
    decode_reservation,
    encode_item,
    encode_reservation,
)
from .errors import (
    AccessDenied,
    AlreadyExistsError,
    BucketNotFound,
    ConfigurationError,
    ConflictError,
    CorruptItemError,
    InvalidArgument,
    InvalidKeyError,
    ItemNotFound,
    NotSent,
    OutcomeUnknown,
    PreconditionFailed,
    SSShelfError,
    StorageClosed,
    StorageError,
    StorageUnavailable,
    UniqueViolation,
    UnsupportedOperation,
)
from .known import KnownVersions
from .layout import Layout
from .planning import Planner, WritePlan
from .reading import CLOCK_RESOLUTION, ItemReader, Stored, older_than
from .storages import sending
from .storages.base import MAX_DELETE_BATCH, PutRequest, Storage, SupportsPutMany, read_fresh
from .storages.sending import SendLog

log = logging.getLogger("ssshelf")

#: Errors a request raises only when it was not applied (refused or never sent).
_NOT_APPLIED = (
    PreconditionFailed,
    NotSent,
    InvalidKeyError,
    InvalidArgument,
    ConfigurationError,
    AccessDenied,
    BucketNotFound,
    UnsupportedOperation,
)


@dataclass(frozen=True, slots=True)
class WritePolicy:
    """The tunables of a manager's writes (its class attributes, gathered)."""

    #: Tries of a write that keeps losing races to concurrent writers.
    attempts: int
    #: Seconds a claim (a fresh reservation or entry) is protected from
    #: take-over and repair; ages are judged by the store's clock.
    lease: float
    #: Longest wait between tries, unless the tries themselves are slower.
    max_backoff: float
    #: Most requests one operation keeps in flight.
    concurrency: int

    @property
    def commit_window(self) -> float:
        """Seconds from an attempt's first request by which its commit must be
        answered; the other half of the lease covers requests that land late."""
        return self.lease / 2


class _Outcome(enum.Enum):
    APPLIED = "applied"
    NOT_APPLIED = "not applied"
    UNKNOWN = "unknown"


class BatchOutcomeUnknown(OutcomeUnknown):
    """Commits of a bulk load got no answer: ``unknown`` names their pks;
    ``committed`` items of the batch are known to be written."""

    def __init__(self, message: str, *, unknown: list[str], committed: int) -> None:
        super().__init__(message, operation="put_many")
        self.unknown = unknown
        self.committed = committed


class _Lost(Exception):
    """The commit was refused: the item is not at the version the attempt built on."""


class _Again(Exception):
    """Start the attempt again from a fresh read: the base changed, or another
    write of the same item holds a claim (``wait``: seconds until it expires)."""

    def __init__(self, wait: float = 0.0) -> None:
        super().__init__(wait)
        self.wait = wait


class _Late(_Again):
    """The commit was not sent: its window ran out first (the store queued or
    answered round 1 too slowly).  Nothing of it landed; try again afresh."""


#: Tries in a row whose commits could not be sent in their window before a
#: write gives up (the store is too slow for the lease, not merely busy).
LATE_TRIES = 3


class _Unknown(Exception):
    """The commit may have taken effect (or may still): nothing it names may be deleted."""


@dataclass(slots=True)
class _Attempt:
    """What one try of a write created; all of it is its alone."""

    write_id: str
    started: float
    #: entry keys this try sent a PUT for (landed or not)
    entries: list[str] = field(default_factory=list)
    #: reservation key -> version this try holds it by (created or taken over)
    won: dict[str, str] = field(default_factory=dict)
    #: reservation keys whose PUT by this try has an unknown outcome
    unsure: set[str] = field(default_factory=set)


class _Absent:
    """A base known (or assumed) to be "no item object"."""


#: The write starts from "no item" without reading (a create, a bulk load).
ABSENT = _Absent()
#: A base hint: a stored item as known, ABSENT, or None (read it in round 1).
Hint = Stored | _Absent | None


@dataclass(frozen=True, slots=True)
class _Rules:
    """What the stored state must be for the write to go ahead."""

    expect: str | None = None
    create_only: bool = False

    def check(self, pk: str, base: Stored | None) -> None:
        live = base is not None and base.live
        if self.create_only and live:
            raise AlreadyExistsError(f"an item with pk {pk!r} already exists", pk=pk)
        if self.expect is not None and (not live or base is None or base.version != self.expect):
            shown = base.version if live and base is not None else None
            raise ConflictError(f"item {pk!r} is at version {shown!r}, not {self.expect!r}", pk=pk)


def superseded_version(write_id: str) -> str:
    """The version reported for a write that took effect but was already written
    over when its writer found out: it matches no stored version, so a write
    conditioned on it fails with :class:`ConflictError`, truthfully."""
    return f"~{write_id}"


class Writer:
    """Carries out a manager's writes over one storage."""

    def __init__(
        self,
        storage: Storage,
        layout: Layout,
        planner: Planner,
        reader: ItemReader,
        known: KnownVersions,
        policy: WritePolicy,
        *,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.storage = storage
        self.layout = layout
        self.planner = planner
        self.reader = reader
        self.known = known
        self.policy = policy
        self.clock = clock
        self.rng = rng

    # -- the operations ------------------------------------------------------

    async def put(
        self,
        plan: WritePlan,
        *,
        expect: str | None = None,
        create_only: bool = False,
        assume_new: bool = False,
    ) -> str:
        """Commit ``plan``; returns the new version.  Without ``expect`` or
        ``create_only``, a concurrent writer of the same pk never makes this
        fail: the write is tried again on the newer state (last writer wins).
        ``assume_new`` tries a create first, without reading."""
        if expect is not None or create_only or plan.uniques:
            self._require_conditional(_what(expect, create_only))
        rules = _Rules(expect, create_only)
        last = wait = 0.0
        late = 0
        #: what a lost create found in place of an item, to build on next
        found: Hint = ABSENT
        for tries in range(self.policy.attempts):
            if tries:
                await self._back_off(tries - 1, last, wait)
            if create_only:
                # A create is tried without reading; after a lost try, on what
                # was read in its place (a tombstone is "no item" to build on).
                hint: Hint = found
            else:
                hint = self._hint(plan.pk, expect, first=assume_new and not tries)
            started, wait = self._now(), 0.0
            try:
                return await self._attempt(plan, hint, rules)
            except _Lost:
                self.known.forget(plan.pk)
                if create_only:
                    # Refused: an object is in the way, or the one built on is
                    # gone (a tombstone purged meanwhile).  Only an item makes
                    # it "already exists".
                    current = await self.reader.read(plan.pk, fresh=True, for_write=True)
                    if current is not None and current.live:
                        raise AlreadyExistsError(
                            f"an item with pk {plan.pk!r} already exists", pk=plan.pk
                        ) from None
                    found = current if current is not None else ABSENT
                if expect is not None:
                    raise ConflictError(
                        f"item {plan.pk!r} changed since version {expect!r}", pk=plan.pk
                    ) from None
            except _Again as again:
                self.known.forget(plan.pk)
                wait = again.wait
                late = self._count_late(again, late, plan.pk, plan.item_key)
            last = self._now() - started
        raise ConflictError(
            f"writing item {plan.pk!r} lost to concurrent writers {self.policy.attempts} times",
            pk=plan.pk,
        )

    async def update(self, pk: str, fn: Callable[[Any], Any], *, attempts: int) -> tuple[Any, str]:
        """Read, apply ``fn``, commit if nobody wrote meanwhile; again on a lost race.

        ``fn`` is applied once per try, and a try is repeated only when its
        commit is known not to have taken effect, so its result is written at
        most once.  Returns the new item and its version.
        """
        self._require_conditional("update_item")
        last = wait = 0.0
        late = 0
        for tries in range(attempts):
            if tries:
                await self._back_off(tries - 1, last, wait)
            started, wait = self._now(), 0.0
            base = await self._read_base(pk)
            if base is None or not base.live:
                raise ItemNotFound(f"no item with pk {pk!r}", pk=pk)
            current = self.reader.deserialize(base)
            result = fn(current)
            if inspect.isawaitable(result):
                result = await result
            new_item = current if result is None else result
            plan = self.planner.plan(new_item)
            if plan.pk != pk:
                raise InvalidKeyError(f"update_item's fn changed the pk from {pk!r} to {plan.pk!r}")
            try:
                version = await self._attempt(plan, base, _Rules(expect=base.version))
            except (_Lost, _Again) as lost:
                self.known.forget(pk)
                wait = lost.wait if isinstance(lost, _Again) else 0.0
                late = self._count_late(lost, late, pk, plan.item_key)
                last = self._now() - started
                continue
            return new_item, version
        raise ConflictError(
            f"update_item({pk!r}) lost to concurrent writers {attempts} times", pk=pk
        )

    async def reindex(self, pk: str, collection: str) -> bool | None:
        """Rewrite one item's entries in ``collection`` from ``key(item)``.

        True if rewritten, False if already right, None if there is no item."""
        base = await self.reader.read(pk, for_write=True, fresh=True)
        if base is None or not base.live:
            return None
        item = self.reader.deserialize(base)
        plan = self.planner.plan(item, keep=base.envelope, only=collection)
        held = base.envelope
        if set(plan.entries.get(collection, [])) == set(held.entries.get(collection, {})) and set(
            plan.uniques.get(collection, [])
        ) == set(held.uniques.get(collection, {})):
            return False
        late = 0
        while True:
            try:
                await self._attempt(plan, base, _Rules(expect=base.version))
                return True
            except _Late as again:  # not sent at all: the same write, once more
                late = self._count_late(again, late, pk, plan.item_key)
            except (_Lost, _Again):
                self.known.forget(pk)
                raise ConflictError(
                    f"item {pk!r} changed while it was reindexed; run again", pk=pk
                ) from None

    async def remove(self, pk: str, *, expect: str | None = None) -> bool:
        """Remove an item and what it holds; False if there was none.

        Where writes are conditional the removal is a commit like any other
        (a tombstone written on the version it replaces), settled by the same
        rule when its answer is lost (:meth:`_settle`)."""
        if expect is not None:
            self._require_conditional("remove_item with if_version")
        last = 0.0
        late = 0
        for tries in range(self.policy.attempts):
            if tries:
                await self._back_off(tries - 1, last)
            started = self._now()
            base = self._known_base(pk, expect)
            if base is None:
                base = await self._read_base(pk)
            if base is None or not base.live:
                if expect is not None:
                    raise ConflictError(f"item {pk!r} does not exist", pk=pk)
                return False
            if expect is not None and base.version != expect:
                raise ConflictError(
                    f"item {pk!r} is at version {base.version!r}, not {expect!r}", pk=pk
                )
            try:
                async with self._admitted(2):
                    await self._remove_once(pk, base)
            except (_Lost, _Again) as lost:
                self.known.forget(pk)
                late = self._count_late(lost, late, pk, base.key)
                if expect is not None and not isinstance(lost, _Late):
                    raise ConflictError(f"item {pk!r} changed since {expect!r}", pk=pk) from None
                last = self._now() - started
                continue
            self.known.forget(pk)
            await self._release(pk, base.envelope, None, [])
            return True
        raise ConflictError(f"removing item {pk!r} lost to concurrent writers", pk=pk)

    async def _remove_once(self, pk: str, base: Stored) -> None:
        """One try of a removal: returns once it took effect; raises _Lost or
        _Again (it did not), or OutcomeUnknown."""
        if self._needs_tombstone:
            tombstone = self._tombstone(base)
            try:
                await self._commit(
                    pk, base.key, tombstone.encode(), base, tombstone.write_id, removal=True
                )
            except _Unknown as unknown:
                raise OutcomeUnknown(
                    f"removing item {pk!r}: the answer was lost ({unknown.__cause__!r}) and the "
                    "item's history cannot tell whether the removal took effect; it may or may "
                    "not be removed",
                    operation="delete",
                    key=base.key,
                ) from unknown.__cause__
            return
        try:
            async with asyncio.timeout(self.policy.commit_window):
                if self.storage.supports_conditional_delete:
                    await self.storage.delete(base.key, if_version=base.version)
                else:
                    await self.storage.delete(base.key)
        except PreconditionFailed:
            raise _Lost from None
        except _NOT_APPLIED:
            raise
        except Exception as exc:  # a timeout, a lost answer: it may have landed
            self.known.forget(pk)
            try:
                current = await self.reader.read(pk, fresh=True, for_write=True)
            except SSShelfError:
                current = base
            if current is not None:
                raise OutcomeUnknown(
                    f"removing item {pk!r}: the answer was lost and the request may still "
                    "take effect",
                    operation="delete",
                    key=base.key,
                ) from exc

    async def create_batch(self, plans: Sequence[WritePlan]) -> list[WritePlan]:
        """Store new items in bulk, on a store that applies many writes per request.

        The same protocol as one create per item (entries and claims first,
        then each item with ``If-None-Match: *``, within the commit window),
        with every round one request per :data:`MAX_PUT_BATCH` objects.
        Returns the plans that could not be done that way — their item exists
        already, a unique value is taken, or a request failed before anything
        was applied — after deleting what was written for them; the caller
        writes those one by one.  A commit whose answer is lost raises
        :class:`~ssshelf.errors.OutcomeUnknown`, deleting nothing.
        """
        batcher = self.storage
        assert isinstance(batcher, SupportsPutMany)
        layout = self.layout
        entry_key, reservation_key = layout.entry_key_escaped, layout.reservation_key
        started = self._now()
        at = compact_json(self.clock())
        write_ids = [_new_write_id(self.rng) for _ in plans]
        requests: list[PutRequest] = []
        #: where the requests of each plan start in ``requests`` (and where its claims do)
        starts: list[int] = []
        claims_at: list[int] = []
        for plan, write_id in zip(plans, write_ids, strict=True):
            starts.append(len(requests))
            escaped = layout.escaped_pk_of(plan.item_key)
            for c, encs in plan.entries.items():
                for enc in encs:
                    requests.append(PutRequest(entry_key(c, enc, escaped, write_id), b""))
            claims_at.append(len(requests))
            if plan.uniques:
                body = encode_reservation(plan.pk, write_id, at)
                for c, encs in plan.uniques.items():
                    for enc in encs:
                        requests.append(PutRequest(reservation_key(c, enc), body, True))
        starts.append(len(requests))

        def attempts(indices: Iterable[int], answers: list[Any] | None) -> dict[str, _Attempt]:
            """What the tries of ``plans[i]`` wrote, for their clean-up (``answers``
            None: round 1 got no answer)."""
            tries: dict[str, _Attempt] = {}
            for i in indices:
                attempt = tries[plans[i].pk] = _Attempt(write_ids[i], started)
                attempt.entries = [r.key for r in requests[starts[i] : claims_at[i]]]
                for index in range(claims_at[i], starts[i + 1]):
                    key = requests[index].key
                    if answers is None:
                        attempt.unsure.add(key)
                    elif isinstance(answers[index], str):
                        attempt.won[key] = answers[index]
            return tries

        sent = SendLog()
        try:
            with sending.recording(sent):
                answers = await self._put_many(batcher, requests)
        except BaseException as exc:
            await self._cleanup_all(attempts(range(len(plans)), None))
            if isinstance(exc, OutcomeUnknown):  # no commit was sent: none took effect
                raise _not_committed(plans[0].pk, plans[0].item_key, exc, len(plans)) from exc
            raise
        #: the plans the one-by-one path settles (a value taken, the item there)
        refused: list[int] = []
        for i in range(len(plans)):
            for k in range(claims_at[i], starts[i + 1]):
                if not isinstance(answers[k], str):
                    refused.append(i)
                    break
        skip = set(refused)
        ready = [i for i in range(len(plans)) if i not in skip]
        commits = [
            PutRequest(
                plans[i].item_key,
                self._new_item(plans[i], write_ids[i], at, answers, claims_at[i]),
                True,
            )
            for i in ready
        ]
        # Each request of the commits is settled on its own: one that failed
        # before anything was applied says nothing of the others, which may
        # have committed (and must then keep everything they wrote).
        window_end = max(started, sent.first_sent or started) + self.policy.commit_window
        send_by = self._send_by(window_end)
        size = batcher.max_put_batch
        chunks = [(ready[i : i + size], commits[i : i + size]) for i in range(0, len(ready), size)]

        async def commit(chunk: list[PutRequest]) -> list[str | PreconditionFailed]:
            if self._now() >= send_by:
                raise NotSent("a bulk load's commits were not sent: their window ran out")
            with sending.send_by(send_by):
                async with asyncio.timeout_at(window_end):
                    return await batcher.put_many(chunk)

        results = await gather_bounded((commit(c) for _, c in chunks), self.policy.concurrency)
        not_applied: list[int] = []
        unknown: list[int] = []
        cause: BaseException | None = None
        for (indices, _), result in zip(chunks, results, strict=True):
            if isinstance(result, list):
                refused += [
                    i for i, a in zip(indices, result, strict=True) if not isinstance(a, str)
                ]
            elif isinstance(result, _NOT_APPLIED) or (
                isinstance(result, StorageError) and not isinstance(result, OutcomeUnknown)
            ):
                not_applied += indices  # the put_many contract: nothing of it was applied
            elif isinstance(result, Exception):  # a timeout, a lost answer: it may have landed
                unknown += indices
                cause = cause or result
            else:
                raise result
        # Committed items are not remembered (KnownVersions): a bulk load of
        # many thousands would only push out what was remembered, and keeping
        # their headers alive costs the garbage collector more than a read
        # saves a later write on a store this fast.
        leftovers = sorted(refused + not_applied)
        if leftovers:
            await self._cleanup_all(attempts(leftovers, answers))
        if unknown:
            assert cause is not None
            committed = len(plans) - len(leftovers) - len(unknown)
            raise self._bulk_unknown([plans[i] for i in unknown], cause, committed) from cause
        return [plans[i] for i in leftovers]

    def _new_item(
        self, plan: WritePlan, write_id: str, at: str, answers: list[Any], claims_at: int
    ) -> bytes:
        """The stored form of a new item of a bulk load: its entries written by
        ``write_id``, its values held by the versions of its claims (the
        answers from ``claims_at`` on, in the order of ``plan.uniques``)."""
        entries: Holdings = {
            c: dict.fromkeys(encs, write_id) for c, encs in plan.entries.items() if encs
        }
        uniques: Holdings = {}
        index = claims_at
        for c, encs in plan.uniques.items():
            if encs:
                held = uniques[c] = {}
                for enc in encs:
                    held[enc] = answers[index]
                    index += 1
        return encode_item(
            plan.pk, write_id, at, plan.payload, entries, uniques, [write_id], 1, write_id
        )

    async def _put_many(
        self, batcher: SupportsPutMany, requests: Sequence[PutRequest]
    ) -> list[str | PreconditionFailed]:
        size = batcher.max_put_batch
        chunks = [requests[i : i + size] for i in range(0, len(requests), size)]
        results = await gather_bounded(
            (batcher.put_many(chunk) for chunk in chunks), self.policy.concurrency
        )
        raise_first(results)
        return [answer for chunk in results for answer in chunk]  # type: ignore[union-attr]

    async def _cleanup_all(self, attempts: dict[str, _Attempt]) -> None:
        await gather_bounded(
            (self._cleanup(attempt, pk) for pk, attempt in attempts.items()),
            self.policy.concurrency,
        )

    @staticmethod
    def _bulk_unknown(
        plans: Sequence[WritePlan], cause: BaseException, committed: int
    ) -> BatchOutcomeUnknown:
        shown = ", ".join(repr(p.pk) for p in plans[:5]) + (" …" if len(plans) > 5 else "")
        return BatchOutcomeUnknown(
            f"the commits of {len(plans)} items ({shown}) got no answer ({cause!r}); they may "
            "or may not have taken effect — read them to find out; what they wrote is left "
            "for repair",
            unknown=[p.pk for p in plans],
            committed=committed,
        )

    # -- one attempt -----------------------------------------------------------

    async def _attempt(self, plan: WritePlan, hint: Hint, rules: _Rules) -> str:
        # Round 1 (entries, claims, perhaps the read) and the commit, at most.
        requests = sum(len(e) for e in plan.entries.values())
        requests += sum(len(u) for u in plan.uniques.values()) + 2
        async with self._admitted(requests):
            return await self._admitted_attempt(plan, hint, rules)

    async def _admitted_attempt(self, plan: WritePlan, hint: Hint, rules: _Rules) -> str:
        attempt = _Attempt(_new_write_id(self.rng), self._now())
        try:
            sent = SendLog()
            with sending.recording(sent):
                base = await self._round_one(plan, hint, attempt)
            # The window counts from the first request that left the client:
            # no claim of this try can have landed before that.
            attempt.started = max(attempt.started, sent.first_sent or attempt.started)
            rules.check(plan.pk, base)
            envelope = await self._holdings(plan, base, attempt, rules)
            version = await self._commit(
                plan.pk, plan.item_key, envelope.encode(), base, attempt.write_id, attempt.started
            )
        except _Unknown as unknown:
            # The commit may reference what this try created: repair collects it.
            raise OutcomeUnknown(
                f"the commit of item {plan.pk!r} got no answer ({unknown.__cause__!r}); it may "
                "or may not have taken effect — read the item to find out; what the write "
                "created is left for repair",
                operation="put",
                key=plan.item_key,
            ) from unknown.__cause__
        except (asyncio.CancelledError, StorageClosed):
            raise  # as after a crash: what this try created is left for repair
        except BaseException as exc:
            await self._cleanup(attempt, plan.pk)
            if isinstance(exc, OutcomeUnknown):
                # A request before the commit got no answer; the commit was
                # never sent, so the write did not take effect.
                raise _not_committed(plan.pk, plan.item_key, exc) from exc
            raise
        self.known.remember(plan.pk, version, envelope)
        named = {
            self.layout.entry_key(c, enc, plan.pk, w)
            for c, held in envelope.entries.items()
            for enc, w in held.items()
        }
        duplicates = [k for k in attempt.entries if k not in named]
        await self._release(
            plan.pk, base.envelope if base is not None else None, envelope, duplicates
        )
        return version

    async def _round_one(self, plan: WritePlan, hint: Hint, attempt: _Attempt) -> Stored | None:
        """Write entries and claim values the base does not give; read the base if unknown."""
        known = hint if isinstance(hint, Stored) else None
        entries = [
            self.layout.entry_key(c, enc, plan.pk, attempt.write_id)
            for c, enc in plan.wanted()
            if known is None or not self._carries_entry(known, c, enc)
        ]
        values = [
            (c, enc)
            for c, enc in plan.values()
            if known is None or not known.live or known.envelope.reservation_version(c, enc) is None
        ]
        attempt.entries.extend(entries)
        requests: list[Awaitable[Any]] = [self.storage.put(k, b"") for k in entries]
        requests += [self._reserve(c, enc, plan.pk, attempt) for c, enc in values]
        if hint is None:
            requests.append(self.reader.read(plan.pk, for_write=True, fresh=self._fresh_base))
        results = await gather_bounded(requests, self.policy.concurrency)
        raise_first(results)
        if hint is None:
            read = results[-1]
            assert read is None or isinstance(read, Stored)
            return read
        return known

    def _carries_entry(self, base: Stored, collection: str, encoded: str) -> bool:
        """The new item may name the base's own entry for this key (no new entry):
        only when the commit is conditional, so the base is proven current."""
        return (
            self.storage.supports_conditional_put
            and base.live
            and base.envelope.entry_write(collection, encoded) is not None
        )

    async def _holdings(
        self, plan: WritePlan, base: Stored | None, attempt: _Attempt, rules: _Rules
    ) -> Envelope:
        """The new header: which entries and reservations the committed item names."""
        entries: Holdings = {}
        for c, enc in plan.wanted():
            held = base.envelope.entry_write(c, enc) if base is not None else None
            carried = base is not None and held is not None and self._carries_entry(base, c, enc)
            entries.setdefault(c, {})[enc] = held if carried and held else attempt.write_id
        uniques: Holdings = {}
        taken: list[tuple[str, str]] = []
        for c, enc in plan.values():
            key = self.layout.reservation_key(c, enc)
            ours = attempt.won.get(key)
            held = (
                base.envelope.reservation_version(c, enc)
                if base is not None and base.live
                else None
            )
            if ours is not None or held is not None:
                uniques.setdefault(c, {})[enc] = ours or held or ""
            else:
                taken.append((c, enc))
        results = await gather_bounded(
            (self._take_over(c, enc, plan.pk, attempt, rules) for c, enc in taken),
            self.policy.concurrency,
        )
        raise_first(results)
        for (c, enc), version in zip(taken, results, strict=True):
            assert isinstance(version, str)
            uniques.setdefault(c, {})[enc] = version
        return self._envelope(plan, base, attempt.write_id, entries, uniques)

    def _envelope(
        self,
        plan: WritePlan,
        base: Stored | None,
        write_id: str,
        entries: Holdings,
        uniques: Holdings,
        *,
        removed: bool = False,
    ) -> Envelope:
        if base is None:
            history, sequence, incarnation = [write_id], 1, write_id
        else:
            old = base.envelope
            history = [write_id, *old.history][:HISTORY]
            sequence, incarnation = old.sequence + 1, old.incarnation
        return Envelope(
            plan.pk,
            write_id,
            self.clock(),
            plan.payload,
            entries,
            uniques,
            history,
            sequence,
            incarnation,
            removed,
        )

    async def _commit(
        self,
        pk: str,
        key: str,
        data: bytes,
        base: Stored | None,
        write_id: str,
        started: float | None = None,
        *,
        removal: bool = False,
    ) -> str:
        """Write the item object ``data`` (written by ``write_id``) conditionally
        on ``base``: the commit of every kind of write.  Returns the new
        version; raises _Lost (refused), _Again (never sent: its window ran
        out first) or _Unknown (it may have landed).

        It must be answered within the commit window from ``started`` (default:
        now): a commit that cannot be *sent* in time is not sent at all, and
        one sent but unanswered by then is settled by :meth:`_settle`."""
        window_end = (self._now() if started is None else started) + self.policy.commit_window
        send_by = self._send_by(window_end)
        if self._now() >= send_by:
            raise _Late  # not sent: nothing landed; the next try claims afresh
        try:
            with sending.send_by(send_by):
                async with asyncio.timeout_at(window_end):
                    if not self.storage.supports_conditional_put:
                        return await self.storage.put(key, data)
                    if base is None:
                        return await self.storage.put(key, data, if_absent=True)
                    return await self.storage.put(key, data, if_version=base.version)
        except PreconditionFailed:
            raise _Lost from None
        except NotSent:
            raise _Late from None
        except _NOT_APPLIED:
            raise
        except Exception as exc:  # a timeout, a lost answer: it may have landed
            return await self._settle(pk, base, write_id, exc, removal=removal)

    async def _settle(
        self,
        pk: str,
        base: Stored | None,
        write_id: str,
        cause: BaseException,
        *,
        removal: bool = False,
    ) -> str:
        """After a commit whose answer did not come: find out from the item.

        The one rule for every kind of write (put, update, reindex, removal):
        the write took effect if the item's history names it; it provably did
        not if another write took the place in the history that it would have
        had (and that place is still in the history); otherwise the outcome is
        unknown — whatever happened since, a version that changed proves
        nothing once more writes landed on top than the history holds."""
        self.known.forget(pk)
        try:
            current = await self.reader.read(pk, fresh=True, for_write=True)
        except SSShelfError:
            raise _Unknown(pk) from cause
        if current is None:
            if removal:  # no object at all: a tombstone (ours or not) was purged since
                return superseded_version(write_id)
            raise _Unknown(pk) from cause
        if current.envelope.remembers(write_id):
            if current.envelope.write_id == write_id:
                return current.version
            return superseded_version(write_id)
        if self._proven_not_applied(current, base):
            raise _Lost from cause
        raise _Unknown(pk) from cause

    def _proven_not_applied(self, current: Stored | None, base: Stored | None) -> bool:
        """True when a conditional commit on ``base`` can no longer take effect
        and did not: another write took the place in the item's history that
        ours would have had."""
        if not self.storage.supports_conditional_put or base is None:
            return False
        if current is None or current.version == base.version:
            return False
        old, now = base.envelope, current.envelope
        if now.incarnation != old.incarnation:
            return False
        gap = now.sequence - (old.sequence + 1)
        return 0 <= gap < len(now.history)

    # -- claims ------------------------------------------------------------------

    async def _reserve(self, collection: str, encoded: str, pk: str, attempt: _Attempt) -> None:
        """Create the reservation; a taken value is left for ``_take_over``."""
        key = self.layout.reservation_key(collection, encoded)
        body = Reservation(pk, attempt.write_id, self.clock()).encode()
        try:
            attempt.won[key] = await self.storage.put(key, body, if_absent=True)
        except PreconditionFailed:
            return
        except BaseException:
            attempt.unsure.add(key)
            raise

    async def _take_over(
        self, collection: str, encoded: str, pk: str, attempt: _Attempt, rules: _Rules
    ) -> str:
        """Claim a value whose reservation exists.  Ours only if the write that
        made it is over without holding it: its item's history names it and
        the item no longer holds the value, or its lease has run out by the
        store's clock.  Every decision reads past caches."""
        key = self.layout.reservation_key(collection, encoded)
        value = keycodec.decode_tuple(encoded)
        shown = value[0] if len(value) == 1 else value
        body = Reservation(pk, attempt.write_id, self.clock()).encode()
        for _ in range(self.policy.attempts):
            obj = await read_fresh(self.storage, key)
            try:
                if obj is None:
                    attempt.won[key] = await self._claim(key, body, None, attempt)
                    return attempt.won[key]
                try:
                    holder: Reservation | None = decode_reservation(obj.data, key=key)
                except CorruptItemError:
                    holder = None
                if holder is not None and holder.write_id == attempt.write_id:
                    attempt.won[key] = obj.version  # our own claim, its answer lost
                    return obj.version
                if holder is None or not holder.released:
                    owner = None
                    if holder is not None:
                        owner = await self.reader.read(holder.pk, fresh=True, for_write=True)
                    if (
                        owner is not None
                        and owner.live
                        and owner.envelope.reservation_version(collection, encoded) is not None
                    ):
                        if holder is not None and holder.pk == pk:
                            if rules.create_only:
                                raise AlreadyExistsError(
                                    f"an item with pk {pk!r} already exists", pk=pk
                                )
                            raise _Again  # this item holds it as stored now: not our base
                        assert holder is not None
                        raise UniqueViolation(
                            f"{collection} {shown!r} is already taken by item {holder.pk!r}",
                            collection=collection,
                            value=shown,
                            pk=pk,
                            owner=holder.pk,
                        )
                    over = (
                        holder is not None
                        and owner is not None
                        and owner.envelope.remembers(holder.write_id)
                    )
                    if not over and not older_than(obj, self.policy.lease):
                        if holder is not None and holder.pk == pk:
                            # Another write of this same item (in flight, or crashed):
                            # wait for it to commit or for its claim to expire.
                            age = obj.age or 0.0
                            raise _Again(max(0.0, self.policy.lease - age) + CLOCK_RESOLUTION)
                        raise UniqueViolation(
                            f"{collection} {shown!r} is being claimed by a concurrent write of "
                            f"item {holder.pk if holder else '?'!r}; if that write crashed, the "
                            f"claim expires {self.policy.lease:g} s after it was made",
                            collection=collection,
                            value=shown,
                            pk=pk,
                            owner=holder.pk if holder else None,
                        )
                attempt.won[key] = await self._claim(key, body, obj.version, attempt)
                return attempt.won[key]
            except PreconditionFailed:
                continue  # it changed under us: look again
        raise ConflictError(f"could not claim {collection} {shown!r}: too much contention", pk=pk)

    async def _claim(self, key: str, body: bytes, version: str | None, attempt: _Attempt) -> str:
        try:
            if version is None:
                return await self.storage.put(key, body, if_absent=True)
            return await self.storage.put(key, body, if_version=version)
        except PreconditionFailed:
            raise
        except BaseException:
            attempt.unsure.add(key)
            raise

    # -- after the commit, and after failures --------------------------------

    async def _release(
        self, pk: str, old: Envelope | None, new: Envelope | None, extra_entries: Iterable[str]
    ) -> None:
        """Delete entries and reservations ``old`` held that ``new`` does not.

        The item is committed, so failures here only leave garbage that reads
        skip and ``repair`` removes; they are logged, not raised.  Nothing a
        later version could name is deleted: versions only ever name their
        own new objects or what the version they replaced named.
        """
        stale_entries = list(extra_entries)
        stale_reservations: list[tuple[str, str]] = []
        if old is not None and not old.removed:
            stale_entries += [
                self.layout.entry_key(c, enc, pk, write_id)
                for c, held in old.entries.items()
                for enc, write_id in held.items()
                if new is None or new.entry_write(c, enc) != write_id
            ]
            stale_reservations = [
                (self.layout.reservation_key(c, enc), version)
                for c, held in old.uniques.items()
                for enc, version in held.items()
                if new is None or new.reservation_version(c, enc) != version
            ]
        requests = self._delete_entries(stale_entries)
        requests += [self._release_reservation(k, v, pk) for k, v in stale_reservations]
        for result in await gather_bounded(requests, self.policy.concurrency):
            if isinstance(result, SSShelfError):
                log.warning("ssshelf: leaving garbage for repair after item %r: %s", pk, result)
            elif isinstance(result, BaseException):
                raise result

    async def _cleanup(self, attempt: _Attempt, pk: str) -> None:
        """Delete what a try created whose commit is known not to have landed."""
        requests = self._delete_entries(attempt.entries)
        requests += [self._release_reservation(k, v, pk) for k, v in attempt.won.items()]
        requests += [self._release_if_ours(k, attempt.write_id, pk) for k in attempt.unsure]
        attempt.entries, attempt.won, attempt.unsure = [], {}, set()
        for result in await gather_bounded(requests, self.policy.concurrency):
            if isinstance(result, BaseException):
                log.warning("ssshelf: cleanup after failed write of %r incomplete: %s", pk, result)

    def _delete_entries(self, keys: list[str]) -> list[Awaitable[None]]:
        return [
            self.storage.delete_many(keys[i : i + MAX_DELETE_BATCH])
            for i in range(0, len(keys), MAX_DELETE_BATCH)
        ]

    async def _release_if_ours(self, key: str, write_id: str, pk: str) -> None:
        obj = await read_fresh(self.storage, key)
        if obj is None:
            return
        with contextlib.suppress(CorruptItemError):
            if decode_reservation(obj.data, key=key).write_id == write_id:
                await self._release_reservation(key, obj.version, pk)

    async def _release_reservation(self, key: str, version: str, pk: str) -> None:
        """Free a reservation only if it is still at ``version``: deleted where
        the store deletes conditionally, else overwritten (``If-Match``) by a
        released marker that any writer may take at once."""
        with contextlib.suppress(PreconditionFailed):
            if self.storage.supports_conditional_delete:
                await self.storage.delete(key, if_version=version)
            else:
                marker = Reservation(pk, "", self.clock(), released=True).encode()
                await self.storage.put(key, marker, if_version=version)

    # -- removal details ---------------------------------------------------------

    @property
    def _needs_tombstone(self) -> bool:
        """A removed item leaves a tombstone wherever writes are conditional.

        Deleting the object would let a create (``If-None-Match: *``) of the
        same pk that is still on its way — given up by its client, landing
        late within the bound of ``docs/consistency.md`` — bring the item
        back without the entries its removal released.  A tombstone makes
        such a create fail; ``repair`` deletes tombstones once they are older
        than any request can still be on its way (where the store deletes
        conditionally)."""
        return self.storage.supports_conditional_put

    def _tombstone(self, base: Stored) -> Envelope:
        plan = WritePlan(base.envelope.pk, base.key, b"", {}, {})
        return self._envelope(plan, base, _new_write_id(self.rng), {}, {}, removed=True)

    # -- small helpers -------------------------------------------------------------

    async def _read_base(self, pk: str) -> Stored | None:
        """The stored item a write starts from.  A cached copy will do when it
        holds an item (the conditional commit checks it); "no item" decides
        that there is nothing to do, so it is confirmed past any cache."""
        base = await self.reader.read(pk, for_write=True, fresh=self._fresh_base)
        cached = bool(getattr(self.storage, "caches_reads", False))
        if (base is None or not base.live) and cached and not self._fresh_base:
            base = await self.reader.read(pk, for_write=True, fresh=True)
        return base

    @property
    def _fresh_base(self) -> bool:
        """Without conditional writes nothing checks the base: read it past caches."""
        return not self.storage.supports_conditional_put

    def _hint(self, pk: str, expect: str | None, *, first: bool) -> Hint:
        known = self._known_base(pk, expect)
        if known is not None:
            return known
        if first and self.storage.supports_conditional_put:
            return ABSENT
        return None

    def _known_base(self, pk: str, expect: str | None) -> Stored | None:
        if not self.storage.supports_conditional_put:
            return None
        known = self.known.get(pk)
        if known is None or (expect is not None and known.version != expect):
            return None
        return Stored(self.layout.item_key(pk), known.version, known.envelope)

    def _send_by(self, window_end: float) -> float:
        """By when a commit due by ``window_end`` must be sent: a moment
        before, so that it is never both unsent and timed out."""
        return window_end - min(1.0, self.policy.commit_window / 10)

    def _count_late(self, failed: Exception, late: int, pk: str, key: str) -> int:
        """Tries in a row whose commit could not be sent in its window, with
        this one; give up (StorageUnavailable) after :data:`LATE_TRIES`."""
        if not isinstance(failed, _Late):
            return 0
        late += 1
        if late >= LATE_TRIES:
            raise StorageUnavailable(
                f"writing item {pk!r}: {late} tries in a row could not send their commit "
                f"within its commit window ({self.policy.commit_window:.3g} s, half the "
                "lease) — the store answers too slowly for the lease; nothing was "
                "committed: retry later, or give the manager a longer unique_lease",
                operation="put",
                key=key,
            )
        return late

    @contextlib.asynccontextmanager
    async def _admitted(self, requests: int) -> AsyncIterator[None]:
        """Wait until a try of ``requests`` requests fits in the store's own
        request slots (see :mod:`ssshelf._admission`), and hold them."""
        admission = admission_for(self.storage)
        if admission is None:
            yield
            return
        async with admission.admit(requests):
            yield

    def _require_conditional(self, what: str) -> None:
        if not self.storage.supports_conditional_put:
            raise UnsupportedOperation(
                f"{what} needs conditional writes (If-None-Match / If-Match), which this "
                "store does not support; use a store that does (AWS S3, MinIO, Ceph RGW, R2, "
                "SQLite, memory)",
                operation=what,
            )

    async def _back_off(self, tries: int, last_attempt: float, wait: float = 0.0) -> None:
        """Wait after a lost race so contending writers spread out (full jitter,
        scaled to how long an attempt takes on this store).  ``wait``: another
        write of the item holds a claim for that long; look again sooner than
        that, but with patience enough that the attempts outlast the claim."""
        unit = max(0.002, last_attempt)
        cap = max(self.policy.max_backoff, 4 * last_attempt)
        delay = self.rng.uniform(0, min(cap, unit * 2**tries))
        if wait > 0:
            patience = self.policy.lease * 2 / self.policy.attempts
            delay = min(wait, max(delay, self.rng.uniform(0.5, 1.0) * patience))
        await asyncio.sleep(delay)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()


def _not_committed(pk: str, key: str, cause: BaseException, items: int = 1) -> StorageUnavailable:
    """The error of a write whose commit was never sent: it did not take effect."""
    what = f"item {pk!r}" if items == 1 else f"{items} items (from {pk!r})"
    return StorageUnavailable(
        f"writing {what} failed before its commit ({cause}); the commit was never sent, "
        "so nothing of it took effect (what its first round wrote was cleaned up)",
        operation="put",
        key=key,
    )


def _new_write_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def _what(expect: str | None, create_only: bool) -> str:
    if create_only:
        return "create_item"
    if expect is not None:
        return "add_item with if_version"
    return "add_item with unique collections"
