"""The bookmarks demo (`make demo`): the seed's example, grown.

Stores a few hundred bookmarks with tags on the embedded SQLite default (or
wherever ``SSSHELF_URL`` points, e.g. ``s3://bucket/prefix?endpoint=...``),
then pages through the newest first, looks bookmarks up by tag and by URL,
moves one in the index with an update, and checks the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from ssshelf import CManager, Collection, Desc, IManager
from ssshelf.errors import SSShelfError, UniqueViolation
from ssshelf.utils import json_dump

TAGS = ["python", "databases", "s3", "asyncio", "rust", "design", "testing", "web"]


class Bookmark(IManager):
    def get_pk(self, item: dict[str, Any]) -> str:
        return str(item["pk"])

    def serialize_item(self, item: dict[str, Any]) -> bytes:
        return bytes(json_dump(item), "utf8")

    def deserialize_item(self, data: bytes) -> dict[str, Any]:
        item: dict[str, Any] = json.loads(data)
        item["created_at"] = datetime.fromisoformat(item["created_at"])
        return item


class Newest(Collection):
    """Every bookmark, newest first."""

    def key(self, item: dict[str, Any]) -> Any:
        return Desc(item["created_at"])


class ByTag(Collection):
    """One entry per tag, newest first within a tag."""

    def key(self, item: dict[str, Any]) -> Any:
        return [(tag, Desc(item["created_at"])) for tag in item["tags"]]


class ByUrl(Collection):
    """A URL is bookmarked once."""

    unique = True

    def key(self, item: dict[str, Any]) -> Any:
        return item["url"]


class BookmarkManager(CManager):
    namespace = "demo-bookmarks"
    item_manager = Bookmark()
    newest = Newest()
    by_tag = ByTag()
    by_url = ByUrl()


def make_bookmarks(count: int) -> list[dict[str, Any]]:
    rng = random.Random(42)
    start = datetime(2024, 1, 1)
    return [
        {
            "pk": f"bm{i:04d}",
            "url": f"https://example.com/articles/{i}",
            "title": f"Article {i}",
            "tags": rng.sample(TAGS, k=rng.randint(1, 3)),
            "created_at": start + timedelta(hours=7 * i + rng.randint(0, 6)),
        }
        for i in range(count)
    ]


def show(item: dict[str, Any]) -> str:
    return f"{item['pk']}  {item['created_at']:%Y-%m-%d %H:%M}  {item['title']:<13} {item['tags']}"


async def demo(url: str | None) -> None:
    manager = BookmarkManager(url)
    print(f"storage: {url or 'sqlite:///ssshelf.db (the embedded default)'}")
    async with manager:
        stale = [pk async for _, pk in manager.newest.iter_keys()]
        if stale:
            await manager.remove_items(dict.fromkeys(stale))
            print(f"removed {len(dict.fromkeys(stale))} bookmarks left by an earlier run")

        bookmarks = make_bookmarks(300)
        started = time.perf_counter()
        await manager.add_items(bookmarks)
        took = time.perf_counter() - started
        print(f"\nstored {len(bookmarks)} bookmarks with 3 collections in {took:.2f} s")

        print("\nnewest first, pages of 5 (the seed's resp['items'] / resp['after']):")
        resp = await manager.newest.get_items(max_keys=5)
        for page in (1, 2):
            print(f"  page {page}:")
            for item in resp["items"]:
                print("   ", show(item))
            resp = await manager.newest.get_items(max_keys=5, after=resp["after"])

        count = 0
        async for _ in manager.newest.iter_items(page_size=100):
            count += 1
        print(f"\niterated all {count} bookmarks in pages of 100")

        print("\nthe 3 newest tagged 'rust':")
        resp = await manager.by_tag.get_items(max_keys=3, prefix_parts=["rust"])
        for item in resp["items"]:
            print("   ", show(item))

        url_of_7 = "https://example.com/articles/7"
        found = await manager.by_url.get_item(url_of_7)
        assert found is not None
        print(f"\nlook-up by unique URL {url_of_7}: {found['pk']}")
        try:
            await manager.add_item({**bookmarks[8], "pk": "bm9999", "url": url_of_7})
        except UniqueViolation as exc:
            print(f"a second bookmark of the same URL is refused: {exc}")

        oldest = bookmarks[0]
        print(f"\nupdate: {oldest['pk']} becomes the newest bookmark and is tagged 'rust'")

        def refresh(item: dict[str, Any]) -> dict[str, Any]:
            return {
                **item,
                "created_at": datetime(2030, 1, 1),
                "tags": sorted({*item["tags"], "rust"}),
            }

        await manager.update_item(oldest["pk"], refresh)
        top = (await manager.newest.get_items(max_keys=1))["items"][0]
        top_rust = (await manager.by_tag.get_items(max_keys=1, prefix_parts=["rust"]))["items"][0]
        print(f"  newest now:          {show(top)}")
        print(f"  newest 'rust' now:   {show(top_rust)}")

        removed = await manager.remove_item(bookmarks[1]["pk"])
        print(f"\nremoved {bookmarks[1]['pk']}: {removed}")

        report = await manager.check()
        print(
            f"\ncheck: {report.items_scanned} items, {report.entries_scanned} index entries, "
            f"{report.reservations_scanned} unique reservations -> "
            f"{'ok' if report.ok else 'PROBLEMS: ' + str(report.to_dict())}"
        )


def main() -> int:
    try:
        asyncio.run(demo(os.environ.get("SSSHELF_URL")))
    except SSShelfError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
