"""A manager and its storage work from successive event loops and from threads
that each run their own (issue 10 point 1), on every backend."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ssshelf.storages.base import Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import SQLiteStorage

from .conftest import BACKENDS, Handle
from .models import BookmarkManager, bookmark


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Storage]:
    """How to make a storage on one store that no event loop has touched yet."""
    if request.param == "memory":
        store = InMemoryStorage()
        return lambda: Handle(store)
    if request.param == "sqlite":
        return lambda: SQLiteStorage(tmp_path / "loops.db")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"loops-{abs(hash(tmp_path)) % 10**8}"

    async def create() -> None:
        storage = endpoint.storage(bucket)
        await storage.create_bucket()
        await storage.close()

    asyncio.run(create())
    return lambda: endpoint.storage(bucket)


def test_successive_event_loops_share_one_manager(fresh: Callable[[], Storage]) -> None:
    storage = fresh()
    m = BookmarkManager(storage)
    item = bookmark("a", "https://a", "2024-01-01T00:00:00", "red")
    asyncio.run(m.add_item(item))
    assert asyncio.run(m.get_item("a")) == item
    assert asyncio.run(m.by_tag.get_items(prefix_parts=["red"]))["items"] == [item]
    assert asyncio.run(m.update_item("a", lambda i: {**i, "n": 1}))["n"] == 1
    asyncio.run(storage.close())


def test_threads_with_their_own_loops_share_one_manager(fresh: Callable[[], Storage]) -> None:
    storage = fresh()
    m = BookmarkManager(storage)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        async def run() -> None:
            for i in range(5):
                pk = f"t{n}-{i}"
                await m.add_item(bookmark(pk, f"https://{pk}", "2024-01-01T00:00:00", "t"))
                assert await m.get_item(pk) is not None

        try:
            asyncio.run(run())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    listed = asyncio.run(m.by_tag.get_items(prefix_parts=["t"], max_keys=100))
    assert len(listed["items"]) == 20
    assert asyncio.run(m.check(grace=0)).ok
    asyncio.run(storage.close())
