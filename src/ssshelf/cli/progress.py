"""A tiny progress display for long CLI commands.

A :class:`Progress` is a callback ``progress(done: int)`` suitable for
``check``/``repair``/``reindex``/``add_items``.  It draws on its stream only
when that stream is a terminal, at most ten times a second, and
:meth:`~Progress.close` clears the line; on a pipe or file it does nothing at
all, so machine-readable output is never mixed with progress noise.  When the
total is known (an import file's line count, the number of items an export
or a reindex goes through) the line shows a bar and the time left.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TextIO

from ..errors import SSShelfError
from ..storages.base import MAX_LIST_LIMIT, Storage

_FRAME_SECONDS = 0.1
_BAR_WIDTH = 30


class Progress:
    """Draws ``label: [bar] done/total unit (rate/s, ETA …)`` on a terminal;
    a no-op elsewhere.  ``total`` may be set (or changed) while it runs."""

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
            left = self.total - self.done
            eta = f", ETA {duration(left / rate)}" if rate > 0 and left > 0 else ""
            return (
                f"{self.label}: [{bar}] {self.done:,}/{self.total:,} {self.unit} "
                f"({rate:,.0f}/s{eta})"
            )
        return f"{self.label}: {self.done:,} {self.unit} ({rate:,.0f}/s)"

    def close(self) -> None:
        """Erase the progress line, if one was drawn (the next call draws it again)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False


def duration(seconds: float) -> str:
    """``7s``, ``2m05s``, ``1h02m``: a time left, to the second under an hour."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole // 60 % 60:02d}m"


async def count_keys(storage: Storage, prefix: str) -> int:
    """How many keys start with ``prefix``: one list request per 1,000 keys."""
    count = 0
    after: str | None = None
    while True:
        page = await storage.list(prefix, after=after, limit=MAX_LIST_LIMIT)
        count += len(page.keys)
        after = page.next_after
        if after is None:
            return count


@contextlib.asynccontextmanager
async def total_from(
    progress: Progress, count: Callable[[], Awaitable[int]]
) -> AsyncIterator[None]:
    """Inside the block, find ``progress``'s total with ``count()`` beside the work.

    Only for a progress line that is drawn (else nothing is counted).  The
    count is advice: if it fails, the line goes on without a total; if the
    work ends first, the count is stopped.
    """
    if not progress.enabled:
        yield
        return

    async def find() -> None:
        with contextlib.suppress(SSShelfError):
            progress.total = await count()

    counting = asyncio.create_task(find())
    try:
        yield
    finally:
        counting.cancel()
        (outcome,) = await asyncio.gather(counting, return_exceptions=True)
        if isinstance(outcome, Exception):
            raise outcome


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False
