"""What each write did, judged at the end of a run: at-most-once and I2-failed
for removals.

The checker notes, for every item object the store changes, which operation's
request changed it (``Op.effects``): a write that made the item that
operation's, or a removal that turned a live item into none.  Then:

* **at-most-once** — no operation's write or removal of a pk took effect
  twice.  A removal whose answer was lost, then taken as "not applied" and
  sent again, deletes whatever was written after its first landing: an
  acknowledged item is gone.  (Stores without conditional writes are
  exempt: there a resent request may land twice, as ``docs/consistency.md``
  says.)
* **I2-failed** (removals) — an operation that raised a "did not happen"
  error removed nothing.  (Writes are judged by their payloads, in
  ``listings.py``.)
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from .history import Op, Outcome

if TYPE_CHECKING:
    from .checks import Checker


class EffectChecks:
    """at-most-once and I2-failed (removals) over the effects of every operation."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    def run(self) -> None:
        conditional = self.checker.store.quirks.conditional_put
        for op in self.checker.history.ops:
            if not op.effects:
                continue
            if conditional:
                self._at_most_once(op)
            if op.outcome is Outcome.FAILED:
                for pk, at, kind in op.effects:
                    if kind == "removed":
                        self.checker.violation(
                            at,
                            "I2-failed",
                            f"{op.id} {op.kind}({op.args}) raised {type(op.error).__name__} "
                            f"(did not happen) but removed {pk} at {at:.6f}",
                        )

    def _at_most_once(self, op: Op) -> None:
        counts = Counter((pk, kind) for pk, _, kind in op.effects)
        for (pk, kind), times in sorted(counts.items()):
            if times < 2:
                continue
            when = [at for p, at, k in op.effects if p == pk and k == kind]
            lost = self._state_before(pk, when[1])
            what = f"; the second time it replaced {self._describe(lost)}" if lost else ""
            self.checker.violation(
                when[1],
                "at-most-once",
                f"{op.id} {op.kind}({op.args}) {kind} {pk} {times} times "
                f"(at {', '.join(f'{at:.6f}' for at in when)}){what}",
            )

    def _state_before(self, pk: str, at: float) -> Any:
        state = None
        for changed, item in self.checker.timeline.get(pk, ()):
            if changed >= at:
                break
            state = item
        return state

    def _describe(self, item: Any) -> str:
        op_id = self.checker.workload.op_id(item)
        if op_id is None:
            return repr(item)
        op = self.checker.history.by_id.get(op_id)
        if op is None:
            return f"the item written by {op_id}"
        return f"the item written by {op.id} {op.kind}({op.args}), {op.describe_outcome()}"
