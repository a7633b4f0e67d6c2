"""Running Python under ``-X dev`` and judging its stderr by what means a bug.

Development mode shows every warning, and turns on asyncio's debug mode,
which also reports any callback that ran longer than 0.1 s ("Executing <Task
…> took 0.123 seconds").  That report says how busy the machine was, not
that the code is wrong: on a loaded machine it comes and goes.  So a test
asserts that stderr holds nothing *but* such reports — a ResourceWarning, a
coroutine never awaited, a task destroyed while pending, an exception
ignored in ``__del__``, a traceback, any other warning all still fail it.

:func:`loaded_machine` writes a ``sitecustomize`` that makes every event
loop report every callback, so a test can show that its check does not
depend on the machine's speed.
"""

from __future__ import annotations

import re
from pathlib import Path

#: asyncio's debug-mode report of a slow callback (``base_events._run_once``).
SLOW_CALLBACK = re.compile(r"Executing <.*> took -?\d+(?:\.\d+)? seconds")

_SITECUSTOMIZE = """\
import asyncio.base_events

_init = asyncio.base_events.BaseEventLoop.__init__


def _report_every_callback(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.slow_callback_duration = 0.0


asyncio.base_events.BaseEventLoop.__init__ = _report_every_callback
"""


def problems(stderr: str) -> list[str]:
    """The lines of a ``-X dev`` run's stderr that are not slow-callback reports."""
    return [line for line in stderr.splitlines() if not SLOW_CALLBACK.fullmatch(line.strip())]


def assert_clean(stderr: str, context: str = "") -> None:
    """Fail, showing the whole stderr, unless it holds only slow-callback reports."""
    found = problems(stderr)
    assert not found, f"{context}\n-X dev reported:\n{stderr}"


def loaded_machine(directory: Path) -> Path:
    """A directory to put first on ``PYTHONPATH`` so that every event loop of
    the child reports every callback as slow, as a loaded machine makes it do."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    return directory
