"""An optional storage capability: many conditional writes in one request.

A backend that can apply a batch of writes for the price of one request
offers ``put_many``; callers look for it with
``isinstance(storage, SupportsPutMany)`` and fall back to one ``put`` per
object otherwise.  :class:`~ssshelf.storages.sqlite.SQLiteStorage` offers it
(one transaction, one fsync, one answer to the event loop).
"""

from __future__ import annotations

from ..base import MAX_PUT_BATCH, PutRequest, SupportsPutMany

__all__ = ["MAX_PUT_BATCH", "PutRequest", "SupportsPutMany"]
