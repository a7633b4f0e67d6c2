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
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import AlreadyExistsError, ConflictError, SSShelfError, UniqueViolation
from ...keys import KeyTuple, encode_tuple, normalize_key
from ...managers import CManager
from ...repair import CheckReport
from ...storages.base import MAX_LIST_LIMIT, ListPage, Storage, StoredObject
from .history import History, Op, Outcome
from .scheduler import ActorKilled
from .store import EPOCH, Change, DirectStorage, ObjectTable, Record, SimStore
from .stored import decode_item, item_pk, reservation_holders
from .trace import Trace
from .workload import Range, Workload

UniqueValue = tuple[str, str]  # (collection, encoded value)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: when it was seen, which, and what exactly."""

    at: float
    invariant: str
    message: str

    def describe(self) -> str:
        return f"[{self.invariant}] at {self.at:.6f}: {self.message}"


@dataclass(frozen=True, slots=True)
class _Expectation:
    at: float
    reason: str
    pk: str
    #: op id the stored item must carry; "" = anything (only visible); None = absent.
    stamp: str | None
    snapshot: int


class _Reads:
    """A storage over a snapshot that remembers every answer it gave."""

    def __init__(self, inner: DirectStorage) -> None:
        self.inner = inner
        self.gets: dict[str, Record | None] = {}
        self.lists: dict[tuple[str, str | None, int], ListPage] = {}
        self.max_key_length = inner.max_key_length
        self.supports_conditional_put = inner.supports_conditional_put
        self.supports_conditional_delete = inner.supports_conditional_delete

    async def get(self, key: str) -> StoredObject | None:
        found = await self.inner.get(key)
        self.gets[key] = self.inner.record(key)
        return found

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        page = await self.inner.list(prefix, after=after, limit=limit)
        self.lists[(prefix, after, limit)] = page
        return page

    async def put(
        self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        raise AssertionError("checks only read")

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        raise AssertionError("checks only read")

    async def delete_many(self, keys: Sequence[str]) -> None:
        raise AssertionError("checks only read")

    async def close(self) -> None:
        """Nothing to release."""

    def same_answers(self, table: ObjectTable) -> bool:
        """Whether ``table`` answers every recorded read as before."""
        objects = table.objects
        if any(objects.get(key) is not record for key, record in self.gets.items()):
            return False
        return all(
            table.list(prefix, after, limit) == page
            for (prefix, after, limit), page in self.lists.items()
        )


@dataclass(slots=True)
class _Checked:
    """One pk checked on one snapshot: what it read, the item, what was wrong."""

    reads: _Reads
    item: Any
    problems: list[str]
    #: The problems were reported (a later snapshot with the same answers
    #: shows the same state, not a new violation).
    reported: bool = False


def keys_of(manager: CManager, name: str, item: Any) -> list[KeyTuple]:
    """The key tuples ``item`` has in collection ``name``."""
    return normalize_key(manager.collections[name].key(item), collection=name)


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
    ) -> None:
        self.store = store
        self.history = history
        self.trace = trace
        self.workload = workload
        self.manager_class = manager_class
        self.clock = clock
        self.violations: list[Violation] = []
        #: A manager used only for its collections' key() and its layout.
        self.model = self.clean_manager(DirectStorage(store, ObjectTable()))
        self.uniques = [n for n, c in self.model.collections.items() if c.unique]
        #: pk -> [(time, item or None)], every state its item object went through.
        self.timeline: dict[str, list[tuple[float, Any]]] = {}
        self._held: dict[str, set[UniqueValue]] = {}
        self._holders: dict[UniqueValue, set[str]] = {}
        self._reported_i4: set[tuple[UniqueValue, tuple[str, ...]]] = set()
        self._snapshots: list[ObjectTable] = []
        self._snapshot_at_mutation = -1
        self._expectations: list[_Expectation] = []
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
            return
        item = decode_item(self.model, change.key, change.data) if change.data is not None else None
        self.timeline.setdefault(pk, []).append((change.at, item))
        if self.uniques:
            self._track_uniques(change.at, pk, item)

    def _track_uniques(self, at: float, pk: str, item: Any) -> None:
        now: set[UniqueValue] = set()
        if item is not None:
            for name in self.uniques:
                now.update((name, encode_tuple(k)) for k in keys_of(self.model, name, item))
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

    def _snapshot(self) -> int:
        if self._snapshot_at_mutation != self.store.mutations:
            self._snapshots.append(self.store.snapshot())
            self._snapshot_at_mutation = self.store.mutations
        return len(self._snapshots) - 1

    def on_quiet(self, pk: str, now: float) -> None:
        self._expectations.append(_Expectation(now, "quiet", pk, "", self._snapshot()))

    def expect_all_quiet(self, now: float, reason: str) -> None:
        """Every quiet pk must be visible now (after maintenance, at the end)."""
        snapshot = self._snapshot()
        for pk in self._all_pks():
            if self.history.quiet(pk):
                self._expectations.append(_Expectation(now, reason, pk, "", snapshot))

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
        snapshot = self._snapshot()
        for pk, present in expect.items():
            stamp = op.id if present else None
            self._expectations.append(_Expectation(now, f"ack of {op.id}", pk, stamp, snapshot))

    # -- deferred: snapshots through a clean manager ---------------------------------

    async def check_expectations(self) -> None:
        """Evaluate every expectation on its snapshot.

        Checking one pk through the public API costs a few dozen requests; a
        pk whose objects did not change since its last check would read the
        same answers, so each check records what it read (``_Reads``) and is
        reused while a new snapshot gives the same answers to those reads.
        """
        last: dict[str, _Checked] = {}
        for expectation in self._expectations:
            table = self._snapshots[expectation.snapshot]
            checked = last.get(expectation.pk)
            if checked is None or not checked.reads.same_answers(table):
                checked = last[expectation.pk] = await self._check_pk(table, expectation.pk)
            self._judge(expectation, checked)

    async def _check_pk(self, table: ObjectTable, pk: str) -> _Checked:
        reads = _Reads(DirectStorage(self.store, table))
        manager = self.clean_manager(reads)
        item = await manager.get_item(pk)
        problems = await self._invisible(manager, pk, item) if item is not None else []
        return _Checked(reads, item, problems)

    def _judge(self, expectation: _Expectation, checked: _Checked) -> None:
        pk, at, item = expectation.pk, expectation.at, checked.item
        invariant = "I2-ack" if expectation.stamp != "" else "I2-settled"
        if expectation.stamp is None:
            if item is not None:
                self.violation(at, invariant, f"{expectation.reason}: {pk} is still stored: {item}")
            return
        if expectation.stamp:
            stored = self.workload.op_id(item) if item is not None else None
            if stored != expectation.stamp:
                held = "nothing" if item is None else f"the write of {stored}"
                self.violation(at, invariant, f"{expectation.reason}: {pk} holds {held}")
                return
        if checked.reported:
            return
        checked.reported = bool(checked.problems)
        for problem in checked.problems:
            self.violation(at, invariant, f"{expectation.reason}: {pk} {problem}")

    async def _invisible(self, manager: CManager, pk: str, item: Any) -> list[str]:
        problems: list[str] = []
        get_pk = manager.item_manager.get_pk
        for name, collection in manager.collections.items():
            for key in keys_of(manager, name, item):
                page = await collection.get_items(1000, prefix_parts=list(key))
                if not any(get_pk(found) == pk and found == item for found in page["items"]):
                    problems.append(f"is missing from {name} at {key!r}")
                if collection.unique:
                    found = await collection.get_item(key)
                    if found != item:
                        problems.append(f"is not what {name}.get_item({key!r}) returns: {found}")
        return problems

    # -- deferred: the history ---------------------------------------------------

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

    def check_history(self) -> None:
        for op in self.history.ops:
            if op.late_requests:
                self.violation(
                    op.ended or 0.0,
                    "stray-work",
                    f"{op.id} {op.kind}({op.args}) sent {op.late_requests} request(s) after it "
                    "had returned (work it started kept running)",
                )
            if "items" in op.facts and "range" in op.facts:
                self._check_listing(op)
            elif op.kind == "unique_get":
                self._check_unique_get(op)
            elif op.kind == "get_item":
                self._check_get(op)
        self._check_failed_payloads()

    def _check_listing(self, op: Op) -> None:
        name: str = op.facts["collection"]
        part: Range = op.facts["range"]
        items: list[Any] = op.facts["items"]
        model = self.model
        get_pk = model.item_manager.get_pk
        at = op.ended if op.ended is not None else op.invoked
        listed: list[Any] = []
        for item in items:
            keys = self._keys_or_none(name, item)
            if keys is None:
                self.violation(
                    at, "I1", f"{op.id} {op.kind}({op.args}) returned {item!r}, not an item"
                )
                continue
            listed.append(item)
            if not any(part.contains(k) for k in keys):
                self.violation(
                    at,
                    "I1",
                    f"{op.id} {op.kind}({op.args}) returned {item}, which has no key "
                    f"in {part.describe()}",
                )
        if op.outcome is not Outcome.OK or op.ended is None or op.facts.get("cached"):
            return  # a read cache may serve any older state (docs/cache.md)
        returned = Counter(get_pk(item) for item in listed)
        for pk in self._all_pks():
            wanted = self._unchanged_keys(pk, name, part, op.invoked, op.ended)
            if wanted is None or returned.get(pk, 0) == wanted:
                continue
            self.violation(
                at,
                "listing-once",
                f"{op.id} {op.kind}({op.args}) returned {pk} {returned.get(pk, 0)} time(s); "
                f"its keys in range did not change during the listing "
                f"({op.invoked:.6f}-{op.ended:.6f}) and it has {wanted} there",
            )

    def _keys_or_none(self, name: str, item: Any) -> list[KeyTuple] | None:
        """``item``'s keys in ``name``, or None when it is not an item at all."""
        try:
            return keys_of(self.model, name, item)
        except Exception:
            return None

    def _unchanged_keys(
        self, pk: str, name: str, part: Range, start: float, end: float
    ) -> int | None:
        """How many keys in ``part`` ``pk`` held throughout [start, end], or
        None if they changed (or the item was absent at some point)."""
        states = self.states(pk, start, end)
        if any(item is None for item in states):
            return 0 if all(item is None for item in states) else None
        held = [
            sorted((k for k in keys_of(self.model, name, item) if part.contains(k)), key=repr)
            for item in states
        ]
        return len(held[0]) if all(keys == held[0] for keys in held) else None

    def _check_unique_get(self, op: Op) -> None:
        name: str = op.facts["collection"]
        value: Any = op.facts["value"]
        wanted: KeyTuple = value if isinstance(value, tuple) else (value,)
        if op.outcome is not Outcome.OK or op.ended is None:
            return
        at = op.ended
        item = op.result
        if item is not None and wanted not in (self._keys_or_none(name, item) or []):
            self.violation(at, "I1", f"{op.id} {name}.get_item({value!r}) returned {item}")
        holder = self._steady_holder(name, wanted, op.invoked, op.ended)
        if (
            holder is not None
            and not op.facts.get("cached")
            and (item is None or self.model.item_manager.get_pk(item) != holder)
        ):
            self.violation(
                at,
                "listing-once",
                f"{op.id} {name}.get_item({value!r}) returned {item}, but {holder} held it "
                "throughout the call",
            )

    def _steady_holder(self, name: str, key: KeyTuple, start: float, end: float) -> str | None:
        for pk in self._all_pks():
            states = self.states(pk, start, end)
            if all(s is not None and key in keys_of(self.model, name, s) for s in states):
                return pk
        return None

    def _check_get(self, op: Op) -> None:
        if op.outcome is not Outcome.OK or op.ended is None or op.facts.get("cached"):
            return
        pk: str = op.facts["pk"]
        states = self.states(pk, op.invoked, op.ended)
        if all(s == states[0] for s in states) and op.result != states[0]:
            self.violation(
                op.ended,
                "listing-once",
                f"{op.id} get_item({pk}) returned {op.result}; it was {states[0]} "
                "throughout the call",
            )

    def _check_failed_payloads(self) -> None:
        reported: set[str] = set()
        for pk in sorted(self.timeline):
            for at, item in self.timeline[pk]:
                if item is None:
                    continue
                op = self.history.by_id.get(self.workload.op_id(item) or "")
                if op is None or op.outcome is not Outcome.FAILED or op.id in reported:
                    continue
                reported.add(op.id)
                self.violation(
                    at,
                    "I2-failed",
                    f"{op.id} {op.kind}({op.args}) raised {type(op.error).__name__} "
                    f"(did not happen) but its write of {pk} was committed",
                )

    def _all_pks(self) -> list[str]:
        return [*self.workload.pks, *self.workload.counter_pks]

    # -- at the end, on a quiet store ----------------------------------------------

    async def check_counters(self) -> None:
        wl = self.workload
        if not wl.counter_pks:
            return
        manager = self.clean_manager(DirectStorage(self.store))
        at = self.clock()
        present: Counter[str] = Counter()
        for pk in wl.counter_pks:
            item = await manager.get_item(pk)
            if item is None:
                self.violation(at, "update-once", f"counter {pk} is gone")
                continue
            present.update(wl.nonces(item))
            for nonce, first in self._first_duplicates(pk).items():
                self.violation(
                    first,
                    "update-once",
                    f"nonce {nonce} was applied {present[nonce]} times to counter {pk}",
                )
        for op in self.history.ops:
            if "counter" not in op.facts:
                continue
            if op.outcome is Outcome.OK and not present[op.id]:
                self.violation(at, "update-once", f"acknowledged {op.id} ({op.args}) is lost")
            if op.outcome is Outcome.FAILED and present[op.id]:
                self.violation(
                    at,
                    "update-once",
                    f"{op.id} ({op.args}) raised {type(op.error).__name__} but was applied",
                )

    def _first_duplicates(self, pk: str) -> dict[str, float]:
        """Nonce -> when a committed state of counter ``pk`` first held it twice."""
        found: dict[str, float] = {}
        for at, item in self.timeline.get(pk, ()):
            if item is None:
                continue
            for nonce, count in sorted(Counter(self.workload.nonces(item)).items()):
                if count > 1 and nonce not in found:
                    found[nonce] = at
        return found

    async def check_repaired(self) -> None:
        """I3: repair on the quiet store, then check() and the exact contents."""
        manager = self.clean_manager(DirectStorage(self.store, by="final repair"))
        at = self.clock()
        await manager.repair()
        report = await manager.check()
        if not report.ok:
            self.violation(
                at,
                "check-repair",
                f"on the quiet store, check() after repair() (default grace) is not ok: "
                f"{_problems(report)}",
            )
        if not report.ok:  # else nothing is left for repair(grace=0)
            await manager.repair(grace=0)
            report = await manager.check()
        if not report.ok:
            self.violation(
                at, "I3", f"check() after repair(grace=0) is not ok: {_problems(report)}"
            )
        items = {}
        for pk in self._all_pks():
            item = await manager.get_item(pk)
            if item is not None:
                items[pk] = item
        expected = sorted(
            (name, repr(key), pk)
            for pk, item in items.items()
            for name in manager.collections
            for key in keys_of(manager, name, item)
        )
        listed = []
        for name, collection in manager.collections.items():
            async for key, pk in collection.iter_keys():
                listed.append((name, repr(key), pk))
        listed.sort()
        if listed != expected:
            extra = _difference(listed, expected)
            missing = _difference(expected, listed)
            self.violation(
                at,
                "I3",
                f"after repair, entries not as the items say: extra {extra}, missing {missing}",
            )
        holders = await reservation_holders(manager, DirectStorage(self.store))
        wanted = {
            (name, encode_tuple(key)): pk
            for pk, item in items.items()
            for name in self.uniques
            for key in keys_of(manager, name, item)
        }
        if holders != wanted:
            self.violation(
                at,
                "I3",
                f"after repair, reservations {sorted(holders.items())} but the items hold "
                f"{sorted(wanted.items())}",
            )


def _problems(report: CheckReport) -> str:
    counts = {
        k: v
        for k, v in report.to_dict().items()
        if isinstance(v, int) and v and not k.endswith("scanned")
    }
    return f"{counts} {report.examples}"


def _difference(a: Sequence[Any], b: Iterable[Any]) -> list[Any]:
    remaining = Counter(a)
    remaining.subtract(Counter(b))
    return sorted(k for k, n in remaining.items() if n > 0)
