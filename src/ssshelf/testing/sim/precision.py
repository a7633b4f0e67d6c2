"""Every error is true: the checks of schedules with ``precise`` set.

A refusal that applied nothing is consistent, so the other invariants let an
untrue error pass.  These checks judge each error a write raised against
what the run shows happened during the call (its states, from the store's
write log; who claimed which unique value when; the fate of each of its
requests):

* ``AlreadyExistsError`` — the pk held a live item at some point during the call;
* ``ItemNotFound`` — the pk held no live item at some point during the call;
* ``UniqueViolation`` — another pk held the value during the call: its live
  item, or a reservation naming it that was younger than the lease (plus
  the second a coarse clock may add);
* ``ConflictError`` of a write conditioned on a version — the item was not
  at that version at some point during the call (that it did not take
  effect, I2-failed and at-most-once judge);
* ``InvalidArgument``, ``InvalidKeyError``, ``UnsupportedOperation``,
  ``SerializationError`` — never: the actors' input is legal;
* ``remove_item`` answering False ("there was none") — never after its own
  removal took effect;
* ``OutcomeUnknown`` of a write — never when no commit of its item was sent
  (a commit given up in the client's queue provably did not land);
* ``OutcomeUnknown`` and every other "may or may not have happened" error
  (a storage error, a timeout) — only when a fault touched one of the
  operation's own requests (lost, held, timed out, refused, slow, a 409, the
  actor killed), it gave up a request on its way (the store answered too
  late for it), or its own ``wait_for`` ran out.

``add_items`` that stops at an item (``BulkWriteError``) is judged by the
error of that item, and must blame the item the error is about (the pk a
``ConflictError`` or ``ItemNotFound`` names).  A write
that breaks the last rule while its requests waited in its client's queue
(or one was given up there, never sent) is reported as **overload**, even
when it gave up a request on its way — under load writes must slow down, not
fail; the window its commit lost was lost in the queue — and any other
untrue error as **precision**.  So an operation that overlapped nothing (no concurrent
writer of its pk or values, no fault) can only succeed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ...errors import (
    AlreadyExistsError,
    BulkWriteError,
    ConflictError,
    InvalidArgument,
    InvalidKeyError,
    ItemNotFound,
    OutcomeUnknown,
    SerializationError,
    UniqueViolation,
    UnsupportedOperation,
)
from ...keys import encode_tuple
from ...reading import CLOCK_RESOLUTION
from .history import Op
from .scheduler import ActorKilled
from .store import Request
from .workload import collection_keys

if TYPE_CHECKING:
    from .checks import Checker

#: Errors that say the input itself is wrong: never true of the actors' input.
_ILLEGAL_INPUT = (InvalidArgument, InvalidKeyError, UnsupportedOperation, SerializationError)


class PrecisionChecks:
    """precision and overload, for every write that ended with an error."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.model = checker.model
        #: op id -> keys of the writes it sent (put_many: each write's key).
        self._written: dict[str, set[str]] = {}
        for event in checker.trace.events:
            if event[2] == "send" and event[5].is_write:
                request: Request = event[5]
                keys = [p.key for p in request.puts] or [request.key, *request.keys]
                self._written.setdefault(event[4], set()).update(keys)

    def run(self) -> None:
        for op in self.checker.history.ops:
            if not op.pks or op.ended is None:
                continue
            if op.error is not None:
                self._judge(op)
            elif op.kind == "remove_item" and op.result is False:
                removed = [at for pk, at, kind in op.effects if kind == "removed"]
                if removed:
                    self.checker.violation(
                        op.ended,
                        "precision",
                        f"{op.id} remove_item({op.args}) returned False (no item), untrue: its "
                        f"removal of {op.pks[0]} took effect at {removed[0]:.6f}",
                    )

    def _judge(self, op: Op) -> None:
        assert op.ended is not None
        error: BaseException = op.error  # type: ignore[assignment]
        if isinstance(error, ActorKilled) or op.facts.get("killed"):
            return  # killed: anything goes
        if op.facts.get("wait_for") and isinstance(error, TimeoutError | asyncio.CancelledError):
            return  # its own wait_for ran out
        pk = op.pks[0]
        where = ""
        if isinstance(error, BulkWriteError):
            pk = self._pk_of(error.item, pk)
            where = f" (item #{error.index}, {pk})"
            blamed = error.error
            about = self._about(blamed)
            if about is not None and about != pk:
                self._untrue(
                    op,
                    "precision",
                    f"blames item #{error.index} ({pk}) for an error about item {about}: "
                    f"{type(blamed).__name__}: {blamed}",
                )
                return
            error = blamed
        why = self._why_untrue(op, pk, error)
        if why is not None:
            self._untrue(op, *why, where=where, error=error)

    def _pk_of(self, item_or_pk: Any, default: str) -> str:
        """The pk of a bulk call's item (``remove_items`` takes pks)."""
        if isinstance(item_or_pk, str):
            return item_or_pk
        if item_or_pk is None:
            return default
        return self.model.item_manager.get_pk(item_or_pk)

    @staticmethod
    def _about(error: BaseException) -> str | None:
        """The pk an error is about (``ConflictError`` and ``ItemNotFound``
        name it; a storage error of a batch's request is the batch's)."""
        pk = getattr(error, "pk", None)
        return pk if isinstance(pk, str) else None

    def _why_untrue(self, op: Op, pk: str, error: BaseException) -> tuple[str, str] | None:
        """(invariant, why) when ``error`` is not true of ``op``, else None."""
        assert op.ended is not None
        states = self.checker.states(pk, op.invoked, op.ended)
        if isinstance(error, AlreadyExistsError):
            if all(state is None for state in states):
                return "precision", f"no item {pk} existed at any time during the call"
            return None
        if isinstance(error, UniqueViolation):
            return self._unique_untrue(op, pk, error)
        if isinstance(error, ConflictError):
            expected = op.facts.get("if_version")
            if expected is not None and self._version_held(pk, expected, op):
                return "precision", f"{pk} was at version {expected} throughout the call"
            return None
        if isinstance(error, ItemNotFound):
            if all(state is not None for state in states):
                return "precision", f"{pk} held a live item throughout the call"
            return None
        if isinstance(error, _ILLEGAL_INPUT):
            return "precision", "legal input refused"
        queued = ""
        if op.queued > 0 or op.unsent:
            unsent = f"; never sent: {'; '.join(op.unsent)}" if op.unsent else ""
            queued = f"its requests waited {op.queued:.3f} s in the client's queue{unsent}"
        if isinstance(error, OutcomeUnknown) and not self._sent_commit(op, pk):
            never = f"no commit of {pk} was ever sent, so none can have taken effect"
            return ("overload", f"{never}; {queued}") if queued else ("precision", never)
        if op.faults:
            return None  # a fault touched it: any "may or may not" is true
        if queued:
            return "overload", f"no fault touched it; {queued}"
        if op.abandoned:
            return None  # an answer came too late for it: the store was slow
        return "precision", "no fault touched any of its requests"

    def _sent_commit(self, op: Op, pk: str) -> bool:
        """Whether ``op`` ever sent a write of ``pk``'s item object."""
        return self.model.layout.item_key(pk) in self._written.get(op.id, ())

    def _unique_untrue(self, op: Op, pk: str, error: UniqueViolation) -> tuple[str, str] | None:
        assert op.ended is not None
        value = error.value if isinstance(error.value, tuple) else (error.value,)
        wanted = (error.collection, encode_tuple(value))
        for other in self.checker.all_pks():
            if other == pk:
                continue
            for state in self.checker.states(other, op.invoked, op.ended):
                if state is not None and wanted in self._values(state):
                    return None  # another live item held it
        fresh = self.checker.lease + CLOCK_RESOLUTION
        claims = self.checker.claims.get(wanted, [])
        for index, (at, holder) in enumerate(claims):
            until = claims[index + 1][0] if index + 1 < len(claims) else float("inf")
            if holder is None or holder == pk or until < op.invoked or at > op.ended:
                continue
            if max(at, op.invoked) - at <= fresh:
                return None  # another write's fresh claim
        return (
            "precision",
            f"no other item held {error.collection} {error.value!r} during the call, and no "
            "other write's claim on it was younger than the lease",
        )

    def _values(self, item: Any) -> set[tuple[str, str]]:
        return {
            (name, encode_tuple(key))
            for name in self.checker.uniques
            for key in collection_keys(self.model, name, item)
        }

    def _version_held(self, pk: str, expected: str, op: Op) -> bool:
        """Whether ``pk`` was a live item at version ``expected`` throughout the call."""
        assert op.ended is not None
        current: str | None = None
        for at, version in self.checker.versions.get(pk, ()):
            if at <= op.invoked:
                current = version
            elif at > op.ended:
                break
            elif version != expected:
                return False
        return current == expected

    def _untrue(
        self,
        op: Op,
        invariant: str,
        why: str,
        *,
        where: str = "",
        error: BaseException | None = None,
    ) -> None:
        assert op.ended is not None
        shown = error if error is not None else op.error
        self.checker.violation(
            op.ended,
            invariant,
            f"{op.id} {op.kind}({op.args}) raised {type(shown).__name__}{where}, untrue: "
            f"{why} ({shown})",
        )
