"""The invariants, checked against the history and the store's ground truth.

Online, after every request the store applies:

* **I4** — never two live items holding the same value of a unique collection
  (per their payloads).

When an expectation becomes due, a snapshot of the store is taken (a dict
copy; reads of it cost no simulated time) and checked at the end of the run
through a clean manager, i.e. through the public read API:

* **I2-ack** — a write acknowledged while no other writer operation on its
  pks overlapped it (unknown and killed ones included, until their last
  request has landed) is what is stored when it returns, and visible by
  ``get_item``, by each collection's page at each of its keys, and by its
  unique look-ups; an acknowledged remove left nothing behind.
* **I2-settled** — whenever a pk becomes quiet (every writer operation that
  touched it has ended and nothing of them can land any more), whatever is
  stored under it is visible in the same way.

At the end, from the history:

* **I1** — every item a reader got from a collection (or a unique look-up)
  has a key in what it asked for.
* **listing-once** — a full listing over [t0, t1] returns every item whose
  keys in the listed range did not change during [t0, t1] exactly once per
  such key; a ``get_item`` or unique look-up of something that did not change
  during the call returns it.
* **I2-failed** — no payload of an operation that raised a "did not happen"
  error was ever committed.
* **update-once** — each counter nonce appears at most once; every
  acknowledged one appears; no failed one does.
* **check-repair** — on the quiet store at the end, ``check()`` is ok after
  ``repair()`` with its default grace (what repair leaves alone is in flight,
  not a problem).
* **check-repair** — on the quiet store at the end, ``check()`` is ok after
  ``repair()`` with its default grace: what repair leaves alone may belong
  to a write in flight, which check must not report as a problem.
* **I3** — after letting every request land, ``repair(grace=0)`` through a
  clean manager, then ``check()`` is ok and the store holds exactly the
  entries and reservations the live items' keys give them.
* **stray-work** — no operation sends a request after it has returned.
* **unexpected-error** — operations raise only the errors the API documents.
* **liveness** — nothing waits forever, a run ends within its time limit, and
  writes without a condition (``add_item``, ``update_item``, ``remove_item``,
  bulk) never give up with ``ConflictError`` under contention.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import AlreadyExistsError, ConflictError, SSShelfError, UniqueViolation
from ...keys import encode_tuple
from ...managers import CManager
from ...storages.base import Storage
from .effects import EffectChecks
from .final_checks import FinalChecks
from .history import History, Op, Outcome
from .listings import HistoryChecks
from .precision import PrecisionChecks
from .scheduler import ActorKilled
from .store import EPOCH, Change, DirectStorage, ObjectTable, SimStore
from .stored import decode_item, item_pk, reservation_claim
from .trace import Trace
from .visibility import Visibility
from .workload import Workload, collection_keys

UniqueValue = tuple[str, str]  # (collection, encoded value)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: when it was seen, which, and what exactly."""

    at: float
    invariant: str
    message: str

    def describe(self) -> str:
        return f"[{self.invariant}] at {self.at:.6f}: {self.message}"


def _expected_error(error: BaseException) -> bool:
    import asyncio

    return isinstance(
        error, SSShelfError | KeyError | TimeoutError | asyncio.CancelledError | ActorKilled
    )


class Checker:
    """Watches the store and the history of one run; collects violations."""

    def __init__(
        self,
        store: SimStore,
        history: History,
        trace: Trace,
        workload: Workload,
        manager_class: type[CManager],
        clock: Callable[[], float],
        *,
        precise: bool = False,
        lease: float = 30.0,
    ) -> None:
        self.store = store
        self.history = history
        self.trace = trace
        self.workload = workload
        self.manager_class = manager_class
        self.clock = clock
        #: Judge every error (precision, overload): ScheduleParams.precise.
        self.precise = precise
        #: The managers' unique_lease (how long a claim may block others).
        self.lease = lease
        self.violations: list[Violation] = []
        #: A manager used only for its collections' key() and its layout.
        self.model = self.clean_manager(DirectStorage(store, ObjectTable()))
        self.uniques = [n for n, c in self.model.collections.items() if c.unique]
        #: pk -> [(time, item or None)], every state its item object went through.
        self.timeline: dict[str, list[tuple[float, Any]]] = {}
        #: pk -> [(time, version of the live item or None)], alongside ``timeline``.
        self.versions: dict[str, list[tuple[float, str | None]]] = {}
        #: (unique collection, encoded value) -> [(time, pk its reservation
        #: names, or None)]: who claimed the value when.
        self.claims: dict[UniqueValue, list[tuple[float, str | None]]] = {}
        self._held: dict[str, set[UniqueValue]] = {}
        self._holders: dict[UniqueValue, set[str]] = {}
        self._reported_i4: set[tuple[UniqueValue, tuple[str, ...]]] = set()
        self.visibility = Visibility(self)
        store.observers.append(self.on_change)

    def clean_manager(self, storage: Storage) -> CManager:
        """A manager with no memory and no faults, on the store's own clock."""
        clock = self.clock
        return self.manager_class(
            storage, clock=lambda: EPOCH + clock(), rng=random.Random("checker")
        )

    def violation(self, at: float, invariant: str, message: str) -> None:
        self.violations.append(Violation(at, invariant, message))
        self.trace.add(at, "!!", f"VIOLATION [{invariant}] {message}")

    # -- online ------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        pk = item_pk(self.model, change.key)
        if pk is None:
            if self.uniques:
                claim = reservation_claim(self.model, change.key, change.data)
                if claim is not None:
                    name, encoded, holder = claim
                    self.claims.setdefault((name, encoded), []).append((change.at, holder))
            return
        item = decode_item(self.model, change.key, change.data) if change.data is not None else None
        before = self.truth(pk)
        self.timeline.setdefault(pk, []).append((change.at, item))
        version = change.version if item is not None else None
        self.versions.setdefault(pk, []).append((change.at, version))
        self._track_effect(change, pk, before, item)
        if self.uniques:
            self._track_uniques(change.at, pk, item)

    def _track_effect(self, change: Change, pk: str, before: Any, item: Any) -> None:
        """Note what the write did for the operation that sent it: made the
        item its own, or removed a live item."""
        op = self.history.request_ops.get(change.by)
        if op is None or pk not in op.pks:
            return
        op_id = self.workload.op_id
        if item is None:
            if before is not None:
                op.effects.append((pk, change.at, "removed"))
        elif op_id(item) == op.id and (before is None or op_id(before) != op.id):
            op.effects.append((pk, change.at, "wrote"))

    def _track_uniques(self, at: float, pk: str, item: Any) -> None:
        now: set[UniqueValue] = set()
        if item is not None:
            for name in self.uniques:
                now.update((name, encode_tuple(k)) for k in collection_keys(self.model, name, item))
        before = self._held.get(pk, set())
        for value in sorted(before - now):
            self._holders[value].discard(pk)
        for value in sorted(now - before):
            holders = self._holders.setdefault(value, set())
            holders.add(pk)
            pks = tuple(sorted(holders))
            if len(pks) > 1 and (value, pks) not in self._reported_i4:
                self._reported_i4.add((value, pks))
                self.violation(
                    at,
                    "I4",
                    f"items {', '.join(pks)} all hold {value[0]} value {value[1]!r} "
                    f"(written by {self.store.log[-1].by})",
                )
        self._held[pk] = now

    def truth(self, pk: str) -> Any:
        """The item stored under ``pk`` now, or None."""
        states = self.timeline.get(pk)
        return states[-1][1] if states else None

    def on_quiet(self, pk: str, now: float) -> None:
        if self._settles_visibly:
            self.visibility.expect(now, "quiet", pk, "")

    @property
    def _settles_visibly(self) -> bool:
        """Without conditional writes, a write's retried PUT whose first attempt
        lands late can bring an older version back (with entries it no longer
        has, until repair restores them): docs/consistency.md promises I2 there
        only for writes nothing overlaps, which I2-ack checks."""
        return self.store.quirks.conditional_put

    def expect_all_quiet(self, now: float, reason: str) -> None:
        """Every quiet pk must be visible now (after maintenance, at the end)."""
        if not self._settles_visibly:
            return
        for pk in self.all_pks():
            if self.history.quiet(pk):
                self.visibility.expect(now, reason, pk, "")

    def on_end(self, op: Op) -> None:
        """An operation ended: check its error, and its effect if it was acknowledged."""
        now = self.clock()
        if op.error is not None and not _expected_error(op.error):
            self.violation(
                now,
                "unexpected-error",
                f"{op.id} {op.kind}({op.args}) raised {type(op.error).__name__}: {op.error}",
            )
        if (
            op.facts.get("unconditional")
            and isinstance(op.error, ConflictError)
            and not isinstance(op.error, AlreadyExistsError | UniqueViolation)
        ):
            self.violation(
                now,
                "liveness",
                f"{op.id} {op.kind}({op.args}) gave up under contention at the default "
                f"settings: {op.error}",
            )
        if op.facts.get("maintains"):
            self.expect_all_quiet(now, f"after {op.id} {op.kind}")
        expect: dict[str, bool] | None = op.facts.get("expect")
        if op.outcome is not Outcome.OK or not expect:
            return
        overlapping = self.history.overlapping(op)
        if overlapping:
            self.trace.add(
                now, "  ", f"{op.id} acknowledged; overlapped by {[o.id for o in overlapping]}"
            )
            return
        for pk, present in expect.items():
            self.visibility.expect(now, f"ack of {op.id}", pk, op.id if present else None)

    # -- at the end ----------------------------------------------------------------

    async def check_visibility(self) -> None:
        """Judge every expectation on its snapshot (I2-ack, I2-settled)."""
        await self.visibility.check_all()

    def check_history(self) -> None:
        """I1, listing-once, I2-failed, stray-work, at-most-once; with
        ``precise``, precision and overload."""
        HistoryChecks(self).run()
        EffectChecks(self).run()
        if self.precise:
            PrecisionChecks(self).run()

    async def check_final(self) -> None:
        """On the quiet store: update-once, check-repair, I3."""
        final = FinalChecks(self)
        await final.check_counters()
        await final.check_repaired()

    def states(self, pk: str, start: float, end: float) -> list[Any]:
        """Every state of ``pk`` from ``start`` to ``end``: the one at start, then each change."""
        out: list[Any] = [None]
        for at, item in self.timeline.get(pk, ()):
            if at <= start:
                out[0] = item
            elif at <= end:
                out.append(item)
            else:
                break
        return out

    def all_pks(self) -> list[str]:
        """The workload's pks and counters, then the bulk pks ever written."""
        wl = self.workload
        return [
            *wl.pks,
            *wl.counter_pks,
            *(pk for pk in wl.bulk_pks if pk in self.timeline),
        ]
