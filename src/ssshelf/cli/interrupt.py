"""Ctrl-C in two steps: first "stop once what is in flight is done", then "stop now".

A command that writes (``import``) runs its writes inside ``with CtrlC(…) as
stop:``.  While ``stop.writing`` is set, the first SIGINT only sets
``stop.requested`` and calls ``on_first`` on the event loop: the command
stops starting writes, lets the ones in flight finish, and says where it
stopped — nothing is left half-written.  A second SIGINT, or the first one
while nothing is being written, is handed to the handler that was there
before (``asyncio.run``'s: the command is cancelled at once, and the run
ends with "interrupted", exit status 130).

Signals can only be handled on the main thread: elsewhere, and where SIGINT
is ignored (a shell's background job), Ctrl-C keeps its usual meaning.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

#: The exit status of a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


class CtrlC:
    """See the module docstring; ``requested`` and ``writing`` are plain flags."""

    def __init__(self, on_first: Callable[[], None]) -> None:
        self.on_first = on_first
        self.requested = False
        self.writing = False
        self._previous: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is not threading.main_thread():
            return self
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):  # ignored, or the default of a non-Python handler
            return self
        self._previous = previous
        self._loop = asyncio.get_running_loop()
        signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.requested or not self.writing:
            self._previous(signum, frame)
            return
        self.requested = True
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.on_first)
