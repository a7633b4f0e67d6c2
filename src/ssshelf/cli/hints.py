"""Commands a person can run next, spelled out as shell text.

A "more follow" hint must work when pasted: it repeats every option that
changes what the next page is (the prefix, ``--limit``, ``--keys``) and the
``--url`` / ``--manager`` given on the command line.  Options that came from
the environment (``SSSHELF_URL``, ``SSSHELF_MANAGER``) are left out: the
shell that ran this command still has them.  A URL is shown with its
credentials masked (:func:`ssshelf.storages.url.redact_url`).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence

from ..storages.url import redact_url

#: Page size of ``ls`` and ``list`` when ``--limit`` is not given (a hint
#: repeats any other).
DEFAULT_LIMIT = 100


def command_line(args: argparse.Namespace, words: Sequence[str], last: Sequence[str] = ()) -> str:
    """``ssshelf WORDS…``, the ``--url`` / ``--manager`` this run was given, then ``LAST…``."""
    command = ["ssshelf", *words]
    url: str | None = getattr(args, "url", None)
    if url is not None:
        command += ["--url", redact_url(url)]
    manager: str | None = getattr(args, "manager", None)
    if manager is not None and getattr(args, "needs_manager", False):
        command += ["--manager", manager]
    return shlex.join([*command, *last])
