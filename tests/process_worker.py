"""Run in separate OS processes by the race tests (spawned: nothing is shared)."""

from __future__ import annotations

import asyncio
from typing import Any

from ssshelf.storages.base import Storage
from ssshelf.storages.sqlite import SQLiteStorage

from .models import BookmarkManager


def open_spec(spec: dict[str, Any]) -> Storage:
    """Rebuild a storage from a picklable description."""
    if spec["kind"] == "sqlite":
        return SQLiteStorage(spec["path"])
    from ssshelf.storages.s3 import S3Storage

    return S3Storage(spec["bucket"], aws_client_kwargs=spec["client_kwargs"])


def increment(spec: dict[str, Any], pk: str, times: int) -> None:
    """``times`` optimistic increments of item ``pk``'s ``n``."""

    async def run() -> None:
        storage = open_spec(spec)
        manager = BookmarkManager(storage)
        try:
            for _ in range(times):
                await manager.update_item(
                    pk, lambda item: {**item, "n": item["n"] + 1}, retries=1000
                )
        finally:
            await storage.close()

    asyncio.run(run())
