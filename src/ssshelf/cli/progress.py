"""A tiny progress display for long CLI commands.

:func:`progress_for` returns a callback ``progress(done: int)`` suitable for
``check``/``repair``/``reindex``/``add_items``.  It draws on ``stream`` only
when that stream is a terminal, at most ten times a second, and :meth:`close`
clears the line; on a pipe or file it does nothing at all, so machine-readable
output is never mixed with progress noise.
"""

from __future__ import annotations

import time
from typing import TextIO

_FRAME_SECONDS = 0.1
_BAR_WIDTH = 30


class Progress:
    """Draws ``label: done [bar] total`` on a terminal; a no-op elsewhere."""

    def __init__(
        self,
        label: str,
        stream: TextIO,
        *,
        total: int | None = None,
        unit: str = "objects",
        enabled: bool | None = None,
    ) -> None:
        self.label = label
        self.stream = stream
        self.total = total
        self.unit = unit
        self.enabled = _is_tty(stream) if enabled is None else enabled
        self.done = 0
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < _FRAME_SECONDS:
            return
        self._last_draw = now
        self.stream.write("\r" + self.render(now) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def render(self, now: float | None = None) -> str:
        """The line as it would be drawn now (without control characters)."""
        elapsed = max((now if now is not None else time.monotonic()) - self._started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            filled = min(_BAR_WIDTH, _BAR_WIDTH * self.done // self.total)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            return f"{self.label}: [{bar}] {self.done}/{self.total} {self.unit} ({rate:,.0f}/s)"
        return f"{self.label}: {self.done:,} {self.unit} ({rate:,.0f}/s)"

    def close(self) -> None:
        """Erase the progress line, if one was drawn."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False
