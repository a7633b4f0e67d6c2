"""Requests and dependent round trips per operation, on the S3 test server.

    .venv/bin/python -m benchmarks.request_counts [--items 1000]

Starts moto on 127.0.0.1, loads the bookmarks demo's data (3 collections:
newest first, one entry per tag, unique URL), then counts what each
operation sends, with :class:`ssshelf.testing.CountingStorage` in front of
:class:`ssshelf.storages.s3.S3Storage`.  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from examples.bookmarks import BookmarkManager, make_bookmarks
from ssshelf.storages.s3 import S3Storage
from ssshelf.testing import CountingStorage

from .servers import CREDENTIALS, MotoServer


async def measure(url: str, items: int) -> list[tuple[str, int, int, str]]:
    os.environ.update(CREDENTIALS)
    storage = S3Storage(f"counts-{os.getpid()}", endpoint_url=url, region="us-east-1")
    await storage.create_bucket()
    counting = CountingStorage(storage)
    rows: list[tuple[str, int, int, str]] = []

    async def row(name: str, op: Callable[[], Awaitable[Any]]) -> None:
        counting.reset()
        await op()
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(counting.counts.items()))
        rows.append((name, counting.round_trips, counting.total, kinds))

    bookmarks = make_bookmarks(items + 1)
    m = BookmarkManager(counting)
    await row(f"add_items: {items} bookmarks (bulk)", lambda: m.add_items(bookmarks[:items]))
    rows[-1] = (*rows[-1][:2], rows[-1][2], rows[-1][3] + f" ({rows[-1][2] / items:.1f}/item)")
    extra = bookmarks[items]
    await row("create_item (2 tags)", lambda: m.create_item(extra))
    cold = BookmarkManager(counting)
    await row("get_item", lambda: cold.get_item(extra["pk"]))
    await row("page of 100, newest first", lambda: cold.newest.get_items(max_keys=100))
    await row("page of 100, one tag", lambda: cold.by_tag.get_items(100, prefix_parts=["rust"]))
    await row("get by unique URL", lambda: cold.by_url.get_item(extra["url"]))

    def moved(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "created_at": datetime(2031, 1, 1), "tags": ["moved"]}

    await row("add_item replace, keys moved, version known", lambda: m.add_item(moved(extra)))
    other = BookmarkManager(counting)
    await row(
        "add_item replace, keys moved, not known",
        lambda: other.add_item({**moved(extra), "tags": ["again"]}),
    )
    await row("update_item, keys unchanged", lambda: m.update_item(extra["pk"], lambda i: None))
    await row(
        "update_item, keys moved",
        lambda: m.update_item(extra["pk"], lambda i: {**i, "tags": ["python"]}),
    )
    await row("remove_item, version known", lambda: m.remove_item(extra["pk"]))
    await m.add_item(extra)
    await row("remove_item, not known", lambda: BookmarkManager(counting).remove_item(extra["pk"]))
    await row(f"check() over {items} items", lambda: cold.check())
    await storage.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    with MotoServer() as server:
        rows = asyncio.run(measure(server.url, args.items))
    print("| operation | round trips | requests | by kind |")
    print("| --- | ---: | ---: | --- |")
    for name, trips, total, kinds in rows:
        print(f"| {name} | {trips} | {total} | {kinds} |")


if __name__ == "__main__":
    main()
