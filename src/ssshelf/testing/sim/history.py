"""The recorded history of a run: every operation of every actor.

An :class:`Op` is one call of the manager's public API by one actor: what it
was, when it was invoked and ended, and its outcome:

* ``ok`` — it returned;
* ``failed`` — it raised an error that means "did not happen"
  (``ConflictError`` and its subclasses, ``KeyError`` of a missing item,
  ``UnsupportedOperation`` / ``InvalidArgument`` raised before any request);
* ``unknown`` — it may or may not have taken effect (``OutcomeUnknown``,
  ``StorageUnavailable``, any other storage error, a timeout, a cancellation,
  the actor killed).

The history also tracks, per operation, what of it may still act on the
store: tasks it started that are still running and requests it sent that
have not landed.  An operation is *settled* once it has ended and nothing of
it can act any more; a pk is *quiet* when every writer operation touching it
is settled.  Those two notions are exact (the scheduler knows every request),
and they are what the checks use to decide when an expectation must hold.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(eq=False)
class Op:
    """One operation of one actor.  ``id`` is stamped into the items it writes."""

    id: str
    actor: str
    kind: str
    args: str
    #: pks this operation may write (empty for reads and maintenance).
    pks: tuple[str, ...]
    invoked: float
    ended: float | None = None
    outcome: Outcome | None = None
    error: BaseException | None = None
    #: What it returned (reads: the items; see actors.py per kind).
    result: Any = None
    #: Extra facts an actor records for the checks (e.g. a listing's range).
    facts: dict[str, Any] = field(default_factory=dict)
    tasks: int = 0
    flights: int = 0
    settled: float | None = None
    #: Requests it sent after it had ended (work left running).
    late_requests: int = 0
    #: Faults that touched its requests ("#12 lose", "#14 409"): whatever
    #: the scheduler did to them other than answering in time.
    faults: list[str] = field(default_factory=list)
    #: Seconds its requests waited in their client's queue before being sent.
    queued: float = 0.0
    #: Requests it gave up while they waited in the client's queue (never sent).
    unsent: list[str] = field(default_factory=list)
    #: Requests it gave up while they were on their way (its own timeout:
    #: the answer came too late for it).
    abandoned: list[str] = field(default_factory=list)
    #: What its requests did to items: (pk, time, "wrote" or "removed"), a
    #: write counted when it made the item this operation's, a removal when
    #: it turned a live item into none.
    effects: list[tuple[str, float, str]] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return bool(self.pks)

    def describe_outcome(self) -> str:
        if self.outcome is None:
            return "still running"
        if self.error is None:
            return f"{self.outcome.value} -> {_short(self.result)}"
        return f"{self.outcome.value}: {type(self.error).__name__}: {_short(str(self.error))}"


def _short(value: object, limit: int = 160) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


class History:
    """Every operation, plus the bookkeeping of what is settled and quiet.

    ``on_quiet(pk, now)`` is called each time a pk becomes quiet.
    """

    def __init__(self, on_quiet: Callable[[str, float], None]) -> None:
        self.ops: list[Op] = []
        self.by_id: dict[str, Op] = {}
        self._on_quiet = on_quiet
        self._by_pk: dict[str, list[Op]] = {}
        self._unsettled: dict[str, int] = {}
        #: The operation behind each request the store applied (``Change.by``).
        self.request_ops: dict[str, Op] = {}

    def begin(self, op: Op) -> None:
        self.ops.append(op)
        self.by_id[op.id] = op
        for pk in op.pks:
            self._by_pk.setdefault(pk, []).append(op)
            self._unsettled[pk] = self._unsettled.get(pk, 0) + 1

    def end(
        self, op: Op, now: float, outcome: Outcome, result: Any, error: BaseException | None
    ) -> None:
        op.ended = now
        op.outcome = outcome
        op.result = result
        op.error = error
        self._maybe_settle(op, now)

    def task_started(self, op: Op) -> None:
        op.tasks += 1

    def task_done(self, op: Op, now: float) -> None:
        op.tasks -= 1
        self._maybe_settle(op, now)

    def flight_sent(self, op: Op) -> None:
        op.flights += 1

    def flight_done(self, op: Op, now: float) -> None:
        op.flights -= 1
        self._maybe_settle(op, now)

    def _maybe_settle(self, op: Op, now: float) -> None:
        if op.settled is not None or op.ended is None or op.tasks or op.flights:
            return
        op.settled = now
        for pk in op.pks:
            self._unsettled[pk] -= 1
            if not self._unsettled[pk]:
                self._on_quiet(pk, now)

    def quiet(self, pk: str) -> bool:
        return not self._unsettled.get(pk, 0)

    def overlapping(self, op: Op) -> list[Op]:
        """Other writer operations on op's pks that may have acted during op."""
        end = op.ended if op.ended is not None else float("inf")
        found: list[Op] = []
        for pk in op.pks:
            for other in self._by_pk.get(pk, ()):
                if other is op or other in found:
                    continue
                if other.invoked <= end and (other.settled is None or other.settled >= op.invoked):
                    found.append(other)
        return found

    def writers_of(self, pk: str) -> list[Op]:
        return self._by_pk.get(pk, [])
