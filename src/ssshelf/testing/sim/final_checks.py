"""The checks on the quiet store at the end of a run: update-once, check-repair, I3."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ...keys import encode_tuple
from ...managers import CManager
from ...repair import CheckReport
from .history import Outcome
from .store import DirectStorage
from .stored import reservation_holders
from .workload import collection_keys

if TYPE_CHECKING:
    from .checks import Checker


class FinalChecks:
    """Counters, then repair and the exact contents, once every request has landed."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.store = checker.store
        self.history = checker.history
        self.workload = checker.workload
        self.uniques = checker.uniques
        self.timeline = checker.timeline
        self.clock = checker.clock

    def violation(self, at: float, invariant: str, message: str) -> None:
        self.checker.violation(at, invariant, message)

    def clean_manager(self, storage: DirectStorage) -> CManager:
        return self.checker.clean_manager(storage)

    def _all_pks(self) -> list[str]:
        return self.checker.all_pks()

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
        # Nothing is in flight any more: judge everything now.
        await manager.repair(grace=0)
        report = await manager.check(grace=0)
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
            for key in collection_keys(manager, name, item)
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
            for key in collection_keys(manager, name, item)
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
