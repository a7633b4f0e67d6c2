"""Typed items: dataclasses stored with the ready-made ``DataclassItems``.

ssshelf stores whatever ``IManager.serialize_item`` returns and hands back
whatever ``deserialize_item`` makes of it, so items can be real types instead
of dicts.  :class:`ssshelf.items.DataclassItems` is the item manager for
dataclasses, driven by their type hints:

* ``str``, ``int``, ``float``, ``bool``, ``Decimal``, ``date``, ``datetime``,
  ``UUID``, ``bytes``, ``Enum`` subclasses, nested dataclasses, ``list[X]``,
  ``tuple[X, ...]``, ``set[X]``, ``dict[K, V]`` and ``X | None`` fields are
  written as JSON and read back as exactly those types;
* a field missing from a stored item takes its default (so adding a field
  with a default needs no migration); a stored field the class no longer has
  is ignored;
* anything else fails loudly: a field type that cannot round-trip when the
  item manager is made, a value of the wrong type before any request, a
  payload that does not fit as :class:`ssshelf.errors.CorruptItemError`
  naming the stored key.

``PydanticItems`` and ``MsgspecItems`` do the same for pydantic models and
msgspec Structs (see docs/items.md).

Run it: ``python examples/typed_items.py [STORAGE_URL]`` (default ``memory://``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import sys
from datetime import date, datetime
from decimal import Decimal

from ssshelf import CManager, Collection, Desc
from ssshelf.items import DataclassItems

# -- an application's types -----------------------------------------------------


class Format(enum.Enum):
    HARDCOVER = "hardcover"
    PAPERBACK = "paperback"
    EBOOK = "ebook"


@dataclasses.dataclass(frozen=True)
class Author:
    name: str
    born: int | None = None


@dataclasses.dataclass(frozen=True)
class Book:
    isbn: str
    title: str
    author: Author
    published: date
    price: Decimal
    format: Format = Format.PAPERBACK
    tags: tuple[str, ...] = ()
    added_at: datetime | None = None


class ByAuthorNewestFirst(Collection):
    """An author's books, most recently published first."""

    def key(self, item: Book) -> tuple[str, Desc]:
        return (item.author.name, Desc(item.published))


class ByTag(Collection):
    """One entry per tag."""

    def key(self, item: Book) -> list[tuple[str]]:
        return [(tag,) for tag in item.tags]


class Books(CManager):
    item_manager = DataclassItems(Book, pk="isbn")
    namespace = "books"
    by_author = ByAuthorNewestFirst()
    by_tag = ByTag()


LE_GUIN = Author("Ursula K. Le Guin", 1929)
BOOKS = [
    Book("9780441478125", "The Left Hand of Darkness", LE_GUIN, date(1969, 3, 1),
         Decimal("9.99"), Format.PAPERBACK, ("sf", "classic")),
    Book("9780060512750", "The Dispossessed", LE_GUIN, date(1974, 5, 1),
         Decimal("11.50"), Format.HARDCOVER, ("sf", "utopia")),
    Book("9780547773742", "A Wizard of Earthsea", LE_GUIN, date(1968, 11, 1),
         Decimal("8.25"), tags=("fantasy", "classic")),
    Book("9780345391803", "The Hitchhiker's Guide to the Galaxy", Author("Douglas Adams"),
         date(1979, 10, 12), Decimal("7.99"), Format.EBOOK, ("sf", "comedy")),
]  # fmt: skip


async def demo(url: str = "memory://") -> list[str]:
    """Store the books, read them back through each collection; return the report lines."""
    lines: list[str] = []
    books = Books(url)
    async with books:
        await books.add_items(BOOKS)
        found = await books.get_item("9780060512750")
        assert found == BOOKS[1] and isinstance(found.price, Decimal)
        lines.append(f"get_item: {found.title!r} ({found.format.value}, ${found.price})")

        page = await books.by_author.get_items(prefix_parts=["Ursula K. Le Guin"])
        lines.append("Le Guin, newest first: " + "; ".join(
            f"{b.published.year} {b.title}" for b in page["items"]
        ))  # fmt: skip
        classics = [b.title async for b in books.by_tag.iter_items(prefix_parts=["classic"])]
        lines.append("tagged classic: " + "; ".join(classics))

        def reprice(book: Book) -> Book:
            return dataclasses.replace(book, price=book.price - Decimal("1.00"))

        cheaper = await books.update_item("9780441478125", reprice)
        lines.append(f"update_item: {cheaper.title!r} now ${cheaper.price}")
        await books.remove_item(BOOKS[3])
        remaining = [b.isbn async for b in books.by_tag.iter_items(prefix_parts=["sf"])]
        lines.append(f"after remove_item: {len(remaining)} books tagged sf")
    return lines


def main(argv: list[str]) -> int:
    for line in asyncio.run(demo(argv[1] if len(argv) > 1 else "memory://")):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
