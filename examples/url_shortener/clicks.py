"""Counting clicks without losing any, and without a write per click.

Each click must end up in the link's ``clicks``.  Writes go through
``update_item``, which re-reads and retries when another writer got in first
(optimistic concurrency), so clicks counted by other processes or machines
are never overwritten.  Within one process, :class:`ClickCounter` coalesces:
while one update of a link is in flight, further clicks on it only add to a
pending count, and the next update adds them all at once.  A burst of N
concurrent clicks on one link therefore costs a handful of writes, not N
writes fighting over one object.

``record`` returns only after the update holding its click has been
committed, so an acknowledged redirect is a counted click.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

from ssshelf import CManager

#: ``update_item`` retries against writers in other processes.
UPDATE_RETRIES = 50


class ClickCounter:
    """Per-link coalescing of click increments (see the module docstring)."""

    def __init__(self, manager: CManager) -> None:
        self.manager = manager
        self._pending: dict[str, int] = {}
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._flushing: dict[str, asyncio.Task[None]] = {}

    async def record(self, pk: str) -> dict[str, Any]:
        """Count one click on link ``pk``; return the link as committed.

        Raises ``KeyError`` when there is no such link (nothing is written).
        """
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[pk] = self._pending.get(pk, 0) + 1
        self._waiters.setdefault(pk, []).append(future)
        if pk not in self._flushing:
            self._flushing[pk] = asyncio.create_task(self._flush(pk))
        return await asyncio.shield(future)

    async def drain(self) -> None:
        """Wait until every click recorded so far is written (or has failed)."""
        while self._flushing:
            await asyncio.gather(*self._flushing.values(), return_exceptions=True)

    async def _flush(self, pk: str) -> None:
        try:
            while self._pending.get(pk):
                count = self._pending.pop(pk)
                waiters = self._waiters.pop(pk)
                try:
                    link = await self.manager.update_item(
                        pk, partial(_add_clicks, count=count), retries=UPDATE_RETRIES
                    )
                except Exception as exc:  # every waiter learns what happened
                    for waiter in waiters:
                        waiter.set_exception(exc)
                    continue
                for waiter in waiters:
                    waiter.set_result(link)
        finally:
            del self._flushing[pk]


def _add_clicks(link: dict[str, Any], count: int) -> dict[str, Any]:
    return {
        **link,
        "clicks": int(link.get("clicks", 0)) + count,
        "last_click_at": datetime.now(UTC).isoformat(),
    }
