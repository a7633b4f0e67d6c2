"""Issue 17, case 3: a burst of writes larger than the store's throughput
within a commit window slows writes down; it does not fail them.

The client's own queue is what turned overload into failures: every commit
waited behind the first rounds of the tries started after it, until its
window ran out.  Writes are admitted to a store with a queue of its own only
as far as its request slots go (``ssshelf._admission``), a commit that could
not be sent in its window is not sent at all (``ssshelf.storages.sending``),
and the window counts from a try's first request sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ssshelf.storages.base import Storage
from ssshelf.storages.s3 import S3Storage
from ssshelf.testing import QueuedStorage

from .consistency_support import assert_visible_everywhere
from .models import BookmarkManager, bookmark
from .s3_server import S3Endpoint


class ShortLease(BookmarkManager):
    unique_lease = 1.0  # each commit must be answered within 0.5 s of its first request


def _burst(n: int) -> list[dict[str, Any]]:
    return [
        bookmark(f"{i:05d}", f"https://example.com/{i}", "2024-01-01T00:00:00", "red")
        for i in range(n)
    ]


async def _all_written(m: BookmarkManager, items: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    results = await asyncio.gather(*(m.add_item(i) for i in items), return_exceptions=True)
    took = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} of {len(items)} failed, e.g. {failures[0]!r}"
    return took


async def test_a_burst_through_a_small_client_queue_is_written(local_storage: Storage) -> None:
    # 4 requests at once, 2 ms each: 200 writes of 4-5 requests take ~1 s in
    # all, twice the window, yet every commit goes out within it.
    queued = QueuedStorage(local_storage, max_in_flight=4, seconds=0.002)
    items = _burst(200)
    await _all_written(ShortLease(queued), items)
    m = BookmarkManager(local_storage)
    assert len([i async for i in m.newest.iter_items()]) == 200
    await assert_visible_everywhere(m, items[-1])
    assert (await m.check(grace=0)).ok


async def test_a_commit_that_cannot_be_sent_in_its_window_is_not_sent(
    local_storage: Storage,
) -> None:
    """A store too slow for the lease: each try's commit is abandoned unsent
    (nothing lands, nothing is left to settle), and after a few tries the
    write says why, truthfully."""
    from ssshelf.errors import StorageUnavailable

    class Slow(ShortLease):
        unique_lease = 0.2

    queued = QueuedStorage(local_storage, max_in_flight=1, seconds=0.06)
    with pytest.raises(StorageUnavailable, match="could not send their commit"):
        await Slow(queued).add_item(bookmark("x", "https://x", "2024-01-01T00:00:00", "red"))
    m = BookmarkManager(local_storage)
    assert await m.get_item("x") is None
    await m.repair(grace=0)
    assert (await m.check(grace=0)).ok


async def test_a_burst_on_s3_with_few_connection_slots_is_written(
    s3_storage_factory: Callable[..., Awaitable[S3Storage]],
) -> None:
    async with await s3_storage_factory(max_in_flight=8) as storage:
        await _all_written(ShortLease(storage), _burst(300))
        assert len([i async for i in BookmarkManager(storage).newest.iter_items()]) == 300


async def test_thousands_of_concurrent_writes_with_the_default_settings(
    s3_endpoint: S3Endpoint, s3_storage_factory: Callable[..., Awaitable[S3Storage]]
) -> None:
    """The issue's burst, at the default settings: 1,203 writes at once on the
    S3 test server (which serves one request at a time), 5,000 on Ceph's RGW
    under ``make test-ceph``.  Every one is written."""
    n = 5000 if s3_endpoint.external else 1203
    async with await s3_storage_factory() as storage:
        took = await _all_written(BookmarkManager(storage), _burst(n))
        print(f"\n{n} concurrent add_item calls: {took:.1f} s, none failed")
        assert await BookmarkManager(storage).newest.count() == n
