"""examples/typed_items.py: dataclass items through ``DataclassItems``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from examples.typed_items import BOOKS, Author, Book, Books, Format, demo
from ssshelf.cli import main as cli_main
from ssshelf.errors import CorruptItemError, InvalidKeyError, SerializationError
from ssshelf.storages.base import Storage

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = [
    "get_item: 'The Dispossessed' (hardcover, $11.50)",
    "Le Guin, newest first: 1974 The Dispossessed; 1969 The Left Hand of Darkness; "
    "1968 A Wizard of Earthsea",
    "tagged classic: The Left Hand of Darkness; A Wizard of Earthsea",
    "update_item: 'The Left Hand of Darkness' now $8.99",
    "after remove_item: 2 books tagged sf",
]


def test_the_example_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "examples/typed_items.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == EXPECTED


async def test_the_demo_on_sqlite(tmp_path: Path) -> None:
    assert await demo(f"sqlite:///{tmp_path / 'books.db'}") == EXPECTED


async def test_items_come_back_as_the_same_typed_values(local_storage: Storage) -> None:
    book = dataclasses.replace(BOOKS[0], added_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    async with Books(local_storage) as books:
        await books.add_item(book)
        again = await books.get_item(book.isbn)
    assert again == book
    assert isinstance(again.author, Author) and isinstance(again.format, Format)
    assert isinstance(again.tags, tuple) and again.added_at.tzinfo is not None


def test_encoding_is_plain_json() -> None:
    assert Books.item_manager.to_json(BOOKS[3]) == {
        "isbn": "9780345391803",
        "title": "The Hitchhiker's Guide to the Galaxy",
        "author": {"name": "Douglas Adams", "born": None},
        "published": "1979-10-12",
        "price": "7.99",
        "format": "ebook",
        "tags": ["sf", "comedy"],
        "added_at": None,
    }


def test_missing_fields_take_defaults_and_unknown_fields_are_ignored() -> None:
    stored = {
        "isbn": "1",
        "title": "Old record",
        "author": {"name": "Anon"},
        "published": "2000-01-01",
        "price": "1.00",
        "shelf": "B3",
    }
    book = Books.item_manager.deserialize_item(json.dumps(stored).encode())
    assert book == Book("1", "Old record", Author("Anon"), date(2000, 1, 1), Decimal("1.00"))


async def test_a_wrong_type_fails_before_any_request(local_storage: Storage) -> None:
    async with Books(local_storage) as books:
        with pytest.raises(InvalidKeyError, match="stores Book items, got dict"):
            await books.add_item({"isbn": "1"})
        assert (await local_storage.list("")).keys == []


async def test_a_stored_payload_that_does_not_fit_is_a_corrupt_item(
    local_storage: Storage,
) -> None:
    async with Books(local_storage) as books:
        await books.add_item(BOOKS[0])
        stored = await local_storage.get(books.layout.item_key(BOOKS[0].isbn))
        assert stored is not None
        broken = stored.data.replace(b'"price":"9.99"', b'"price":9.99')
        await local_storage.put(stored.key, broken)
        with pytest.raises(CorruptItemError, match="price: expected Decimal as a string") as caught:
            await books.get_item(BOOKS[0].isbn)
        assert caught.value.key == stored.key
        assert isinstance(caught.value, SerializationError)


def test_typed_items_export_and_import_with_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    source = f"sqlite:///{tmp_path / 'a.db'}"
    target = f"sqlite:///{tmp_path / 'b.db'}"
    asyncio.run(demo(source))
    spec = ["--manager", "examples.typed_items:Books"]
    dump = tmp_path / "books.jsonl"
    assert cli_main(["export", "--url", source, "-o", str(dump), *spec]) == 0
    assert cli_main(["import", str(dump), "--url", target, *spec]) == 0
    assert (
        cli_main(["list", "by_author", "--prefix", "Ursula K. Le Guin", "--url", target, *spec])
        == 0
    )
    titles = [json.loads(line)["title"] for line in capsys.readouterr().out.splitlines()]
    assert titles == ["The Dispossessed", "The Left Hand of Darkness", "A Wizard of Earthsea"]
