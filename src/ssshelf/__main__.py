"""``python -m ssshelf``: the command line (see :mod:`ssshelf.cli`)."""

from ssshelf.cli import main

raise SystemExit(main())
