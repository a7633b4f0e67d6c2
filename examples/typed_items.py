"""Typed items: dataclasses stored through a small JSON codec.

ssshelf stores whatever ``IManager.serialize_item`` returns and hands back
whatever ``deserialize_item`` makes of it, so items can be real types instead
of dicts.  :class:`DataclassCodec` is one such item manager, driven by the
dataclass's type hints:

* fields of type ``str``, ``int``, ``float``, ``bool``, ``Decimal``, ``date``,
  ``datetime``, ``Enum`` subclasses, nested dataclasses, ``list[X]``,
  ``tuple[X, ...]`` and ``X | None`` are written as JSON and read back as
  exactly those types;
* a field missing from a stored item takes its default (so adding a field
  with a default needs no migration); a stored field the class no longer has
  is ignored;
* anything else fails loudly: writing an object of another class raises
  before any request, reading a payload that does not fit raises
  :class:`ssshelf.errors.CorruptItemError` naming the stored key.

Run it: ``python examples/typed_items.py [STORAGE_URL]`` (default ``memory://``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import sys
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from ssshelf import CManager, Collection, Desc, IManager

T = TypeVar("T")


def encode(value: Any) -> Any:
    """A dataclass instance (or field value) as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return encode(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot encode {type(value).__name__}: {value!r}")


def decode(kind: Any, data: Any) -> Any:
    """Rebuild a value of type ``kind`` from what :func:`encode` wrote."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"only X | None unions are supported, not {kind}")
        return decode(options[0], data)
    if origin is list:
        return [decode(args[0], v) for v in _expect(list, data)]
    if origin is tuple:
        return tuple(decode(args[0], v) for v in _expect(list, data))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, _expect(dict, data))
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(data)
    if kind is datetime:
        return datetime.fromisoformat(_expect(str, data))
    if kind is date:
        return date.fromisoformat(_expect(str, data))
    if kind is Decimal:
        return Decimal(_expect(str, data))
    if kind is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if kind in (str, int, float, bool) and type(data) is kind:
        return data
    raise TypeError(f"expected {getattr(kind, '__name__', kind)}, got {data!r}")


def _expect(kind: type[T], data: Any) -> T:
    if not isinstance(data, kind):
        raise TypeError(f"expected a JSON {kind.__name__}, got {data!r}")
    return data


def _decode_dataclass(cls: type[T], data: dict[str, Any]) -> T:
    hints = typing.get_type_hints(cls)
    values = {
        f.name: decode(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name in data
    }
    return cls(**values)


class DataclassCodec(IManager, Generic[T]):
    """Items of dataclass ``cls``, identified by field ``pk_field``, stored as JSON."""

    def __init__(self, cls: type[T], *, pk_field: str) -> None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        if pk_field not in {f.name for f in dataclasses.fields(cls)}:
            raise TypeError(f"{cls.__name__} has no field {pk_field!r}")
        self.cls = cls
        self.pk_field = pk_field

    def get_pk(self, item: Any) -> str:
        return str(getattr(self._check(item), self.pk_field))

    def serialize_item(self, item: Any) -> bytes:
        return json.dumps(encode(self._check(item)), separators=(",", ":")).encode()

    def deserialize_item(self, data: bytes) -> T:
        return decode(self.cls, json.loads(data))  # type: ignore[no-any-return]

    def _check(self, item: Any) -> T:
        if not isinstance(item, self.cls):
            raise TypeError(f"expected a {self.cls.__name__}, got {type(item).__name__}")
        return item


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
    item_manager = DataclassCodec(Book, pk_field="isbn")
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
