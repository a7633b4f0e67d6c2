"""A manager workload over S3 while 20% of requests fail the ways S3 fails."""

from __future__ import annotations

import random

from ssshelf.storages.s3 import RetryPolicy

from .consistency_support import all_items, assert_exactly_the_items_say
from .fault_proxy import DROP_AFTER, DROP_BEFORE, SLOWDOWN, FaultProxy
from .models import BookmarkManager, bookmark
from .s3_server import S3Endpoint, unique_bucket_name


async def test_workload_is_correct_with_20_percent_faults(s3_endpoint: S3Endpoint) -> None:
    bucket = unique_bucket_name()
    async with s3_endpoint.storage(bucket) as admin:
        await admin.create_bucket()
    async with FaultProxy(s3_endpoint.url) as proxy:
        # Each fault takes its share of what the ones before it left.
        proxy.inject(SLOWDOWN, share=0.07)
        proxy.inject(DROP_BEFORE, share=0.07)
        proxy.inject(DROP_AFTER, share=0.07)
        retries = RetryPolicy(attempts=30, base_delay=0.001, max_delay=0.02)
        flaky = s3_endpoint.storage(bucket, endpoint_url=proxy.url, retries=retries)
        async with flaky:
            m = BookmarkManager(flaky)
            rng = random.Random(1)
            for i in range(24):
                tags = rng.sample(["a", "b", "c"], k=2)
                await m.add_item(bookmark(str(i), f"https://x/{i}", "2024-01-01T00:00:00", *tags))
            for i in range(0, 24, 3):
                await m.update_item(str(i), lambda item: {**item, "tags": ["u"], "n": 1})
            for i in range(1, 24, 3):
                assert await m.remove_item(str(i)) is True
        faulted = sum(1 for r in proxy.requests if r.fault is not None)
        assert faulted >= 0.1 * len(proxy.requests)
    async with s3_endpoint.storage(bucket) as store:
        clean = BookmarkManager(store)
        items = await all_items(clean)
        assert sorted(items, key=int) == [str(i) for i in range(24) if i % 3 != 1]
        assert all(items[str(i)].get("n") == 1 for i in range(0, 24, 3))
        report = await clean.check()
        assert report.ok, report.to_dict()
        await assert_exactly_the_items_say(clean)
