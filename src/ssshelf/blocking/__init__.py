"""The blocking twin of a manager: ``MyManager.sync(storage_or_url)``.

The same methods and collections as the async manager, without ``await``,
for scripts, WSGI apps (Flask, Django), notebooks and command lines::

    with BookmarkManager.sync("sqlite:///bookmarks.db") as m:
        m.add_item(bookmark)
        page = m.every.get_items()
        for item in m.every.iter_items():
            ...

Each call runs the async manager on one long-lived event loop on a
background thread (see :class:`SyncManager` for what a caller may rely on,
and ``docs/blocking.md`` for the cost per call).
"""

from ._collection import SyncCollection
from ._manager import ABANDONED_CLOSE_TIMEOUT, SyncManager, open_sync

__all__ = ["ABANDONED_CLOSE_TIMEOUT", "SyncCollection", "SyncManager", "open_sync"]
