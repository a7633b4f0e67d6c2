"""Checks of the recorded history, at the end of a run: I1, listing-once,
I2-failed and stray-work.

Each item's states come from the store's write log (``Checker.timeline``):
an item "did not change during [t0, t1]" when its state at t0 and every state
committed until t1 give it the same keys in the listed range.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ...keys import KeyTuple
from .history import Op, Outcome
from .workload import Range, collection_keys

if TYPE_CHECKING:
    from .checks import Checker


class HistoryChecks:
    """The end-of-run checks of one run's history."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.history = checker.history
        self.model = checker.model
        self.workload = checker.workload

    def states(self, pk: str, start: float, end: float) -> list[Any]:
        return self.checker.states(pk, start, end)

    def violation(self, at: float, invariant: str, message: str) -> None:
        self.checker.violation(at, invariant, message)

    def _all_pks(self) -> list[str]:
        return self.checker.all_pks()

    def run(self) -> None:
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
        if not self.checker.store.quirks.conditional_put:
            # Without conditional writes every write rewrites its entries, and a
            # listing may miss or repeat an item meanwhile (docs/consistency.md).
            return
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
            return collection_keys(self.model, name, item)
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
            sorted(
                (k for k in collection_keys(self.model, name, item) if part.contains(k)), key=repr
            )
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
            if all(s is not None and key in collection_keys(self.model, name, s) for s in states):
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
        for pk in sorted(self.checker.timeline):
            for at, item in self.checker.timeline[pk]:
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
