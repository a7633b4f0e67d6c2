"""The embedded default: every object in one SQLite file.

Durable (WAL journal, ``synchronous=FULL``), safe for many asyncio tasks, for
several threads and event loops, and for several processes sharing the file.
All SQLite calls run on one worker thread per storage, never on an event
loop.  Requests that arrive while the worker is busy are committed together
in one transaction ("group commit"), so a burst of writes costs one fsync,
not one each; every request keeps its own conditional semantics and its own
answer.  ``docs/design.md`` ("SQLite") says what a caller may rely on.

* :class:`SQLiteStorage`: the storage.
* :class:`SupportsPutMany`, :class:`PutRequest`: the optional batched write
  it offers beside the storage contract.
"""

from ._batch import MAX_PUT_BATCH, PutRequest, SupportsPutMany
from ._storage import SQLiteStorage

__all__ = ["MAX_PUT_BATCH", "PutRequest", "SQLiteStorage", "SupportsPutMany"]
