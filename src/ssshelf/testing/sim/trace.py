"""The trace of a run: every request, its fate and result; every operation.

Events are recorded as tuples (cheap) and turned into text only when a run
is printed.  A line reads::

    12.345678 w1   #17 put 'sim/items/p2' (96 B) if-version=v8 [w1.3] fate=lose -> lands 12.3461
    12.346100 w1   #17 applied -> 'v9'

Times are simulated seconds since the run started.  The same seed gives the
same lines: that is what "replays exactly" means, and what the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...storages.base import ListPage, StoredObject

Event = tuple[Any, ...]


def describe_result(result: object) -> str:
    """A request's answer in a few words."""
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    if isinstance(result, StoredObject):
        return f"found {result.version} ({len(result.data)} B)"
    if isinstance(result, ListPage):
        more = f" more after {result.next_after!r}" if result.next_after is not None else ""
        return f"{len(result.keys)} keys {result.keys}{more}"
    if result is None:
        return "none"
    return repr(result)


class Trace:
    """Events in the order they happened."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, at: float, who: str, text: str) -> None:
        self.events.append((at, who, "text", text))

    def record(self, at: float, who: str, kind: str, *payload: Any) -> None:
        self.events.append((at, who, kind, *payload))

    def lines(self) -> list[str]:
        return [self._line(event) for event in self.events]

    def _line(self, event: Event) -> str:
        at, who, kind, *payload = event
        return f"{at:11.6f} {who:<4} {self._text(kind, payload)}"

    @staticmethod
    def _text(kind: str, payload: list[Any]) -> str:
        if kind == "text":
            return str(payload[0])
        if kind == "send":
            number, op_id, request, fate, land_at, answer_at = payload
            landing = f" lands {land_at:.6f}" if land_at is not None else " never lands"
            return (
                f"#{number} {request.describe()} [{op_id}] fate={fate}{landing}"
                f" answers {answer_at:.6f}"
            )
        if kind == "applied":
            number, result = payload
            return f"#{number} applied -> {describe_result(result)}"
        if kind == "answer":
            number, result = payload
            return f"#{number} answer -> {describe_result(result)}"
        if kind == "invoke":
            op = payload[0]
            return f"invoke {op.id} {op.kind}({op.args})"
        if kind == "end":
            op = payload[0]
            return f"end    {op.id} {op.kind} {op.describe_outcome()}"
        raise AssertionError(kind)


def numbered(lines: Iterable[str], limit: int | None = None) -> str:
    """Lines joined for printing, cut to the last ``limit`` when given."""
    items = list(lines)
    if limit is not None and len(items) > limit:
        skipped = len(items) - limit
        items = [f"… {skipped} earlier lines not shown (--trace-lines)", *items[-limit:]]
    return "\n".join(items)
