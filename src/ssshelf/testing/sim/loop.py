"""An asyncio event loop on virtual time: one thread, no real sleeps.

:class:`VirtualTimeLoop` is a plain asyncio loop whose :meth:`~VirtualTimeLoop.time`
is a number it owns.  When no callback is ready it jumps straight to the
next timer, so ``asyncio.sleep``, ``asyncio.timeout``, ``wait_for`` and every
back-off run in simulated time at the speed of the Python code around them.

It has no I/O at all (the simulated world lives in the loop), and it turns
the two ways a simulated run can hang into exceptions:

* nothing is ready and no timer is set, yet the loop was asked to go on:
  some coroutine waits for something that will never happen
  (:class:`WaitsForever`);
* virtual time passes ``time_limit``, or the loop turns ``step_limit``
  times without finishing (:class:`TimeLimitExceeded`).
"""

from __future__ import annotations

import asyncio
from typing import Any


class LivenessError(Exception):
    """The simulated run cannot finish; ``at`` is the virtual time it was noticed."""

    def __init__(self, message: str, *, at: float) -> None:
        super().__init__(message)
        self.at = at


class WaitsForever(LivenessError):
    """Nothing is ready and no timer is due: whatever is still waiting waits forever."""


class TimeLimitExceeded(LivenessError):
    """The run went past its virtual time limit or its step limit."""


class _Clockwork:
    """Stands where a selector would: "waiting" for ``timeout`` advances the clock."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        loop = self._loop
        loop.steps += 1
        if timeout is None:
            raise WaitsForever(
                "nothing is ready and no timer is set, but the loop must go on", at=loop.now
            )
        if loop.steps > loop.step_limit:
            raise TimeLimitExceeded(
                f"the loop turned {loop.step_limit} times without finishing", at=loop.now
            )
        if timeout > 0:
            target = loop.now + timeout
            if target > loop.time_limit:
                raise TimeLimitExceeded(
                    f"virtual time would pass the limit of {loop.time_limit:g} s "
                    f"(next timer at {target:.6f} s)",
                    at=loop.now,
                )
            loop.now = target
        return []

    def close(self) -> None:
        """Nothing to release."""


class VirtualTimeLoop(asyncio.BaseEventLoop):
    """A fresh loop per simulated run; virtual time starts at 0.0.

    ``time_limit`` (virtual seconds) and ``step_limit`` (loop iterations) bound
    a run; :meth:`lift_limits` removes them (for winding down after a failure).
    Callbacks from other threads are not supported: the simulated world has none.
    """

    def __init__(self, *, time_limit: float = 3600.0, step_limit: int = 2_000_000) -> None:
        super().__init__()
        self.now = 0.0
        self.steps = 0
        self.time_limit = time_limit
        self.step_limit = step_limit
        self._selector = _Clockwork(self)

    def time(self) -> float:
        """Virtual seconds since the loop was made."""
        return self.now

    def lift_limits(self) -> None:
        """Let the loop run on without time or step limits."""
        self.time_limit = float("inf")
        self.step_limit = 1 << 62

    def _process_events(self, event_list: list[Any]) -> None:
        """There is no I/O to dispatch."""

    def _write_to_self(self) -> None:
        """No other thread ever needs to wake this loop."""
