"""What a type checker (mypy --strict) learns from the item managers."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent

SNIPPET = textwrap.dedent(
    """
    from dataclasses import dataclass
    from typing import Any, assert_type

    import msgspec
    import pydantic

    from ssshelf import CManager
    from ssshelf.items import DataclassItems, IManager, MsgspecItems, PydanticItems


    @dataclass
    class Book:
        isbn: str
        title: str


    class PBook(pydantic.BaseModel):
        isbn: str


    class MBook(msgspec.Struct):
        isbn: str


    books = DataclassItems(Book, pk="isbn")
    assert_type(books, DataclassItems[Book])
    assert_type(books.deserialize_item(b"{}"), Book)
    assert_type(PydanticItems(PBook, pk="isbn").deserialize_item(b"{}"), PBook)
    assert_type(MsgspecItems(MBook, pk="isbn").deserialize_item(b"{}"), MBook)
    typed: IManager[Book] = books


    class Seedlike(IManager):  # the seed's way: no type parameter
        def get_pk(self, item: Any) -> str:
            return str(item["pk"])


    assert_type(Seedlike().deserialize_item(b"{}"), Any)
    assert_type(IManager().deserialize_item(b"{}"), Any)


    class Books(CManager):
        item_manager = DataclassItems(Book, pk="isbn")


    class Dicts(CManager):
        item_manager = IManager()


    books.serialize_item(42)  # E1
    PydanticItems(int, pk="x")  # E2
    MsgspecItems(Book, pk="isbn")  # E3
    """
)


def test_item_managers_carry_their_item_type(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    out, err, status = api.run(
        ["--strict", "--cache-dir", str(ROOT / ".mypy_cache"), "--no-error-summary", str(snippet)]
    )
    lines = {line.split("# ")[-1] for line in SNIPPET.splitlines() if "# E" in line}
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1, (out, err)
    found = {SNIPPET.splitlines()[int(line.split(":")[1]) - 1].split("# ")[-1] for line in errors}
    assert found == lines, "\n".join(errors)
    assert any(
        '"serialize_item" of "DataclassItems" has incompatible type "int"; expected "Book"' in e
        for e in errors
    )
