"""The ``ssshelf`` command line (also ``python -m ssshelf``); see ``docs/cli.md``.

``main(argv)`` parses, runs one command and returns its exit status:

* ``0`` success;
* ``1`` the command ran and found a problem (``check`` found damage, ``get``
  or ``cat`` found nothing, ``export`` met unreadable items, ``reindex``
  could not rewrite some items);
* ``2`` usage, configuration or connection errors, reported as one
  ``ssshelf: error: …`` line on stderr (never a traceback);
* ``130`` interrupted (Ctrl-C).

Every command takes ``--url`` (default ``SSSHELF_URL``, else
``sqlite:///ssshelf.db``); manager-level commands take ``--manager
module:Class`` (default ``SSSHELF_MANAGER``).  Only ``import`` creates a
store; every other command refuses one that does not exist.

``main`` and ``build_parser`` are this package's interface; its modules
(one per group of commands) are its own business.
"""

from .app import main
from .parser import build_parser

__all__ = ["build_parser", "main"]
