"""What is particular to the embedded backends and to open_storage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ssshelf.errors import ConfigurationError, StorageError
from ssshelf.storages import open_storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.sqlite._storage import _prefix_end
from ssshelf.storages.url import DEFAULT_URL, default_url


def test_open_storage_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_storage("memory://"), InMemoryStorage)
    monkeypatch.chdir(tmp_path)
    store = open_storage("sqlite:///sub.db")
    assert isinstance(store, SQLiteStorage) and store.path == "sub.db"
    absolute = open_storage(f"sqlite:///{tmp_path}/abs.db")  # four slashes: absolute
    assert isinstance(absolute, SQLiteStorage) and absolute.path == f"{tmp_path}/abs.db"
    for bad in ["nope://x", "sqlite://", "s3://", "s3://bucket?colour=red"]:
        with pytest.raises(ConfigurationError):
            open_storage(bad)


def test_default_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_url() == DEFAULT_URL
    monkeypatch.setenv("SSSHELF_URL", "memory://")
    assert default_url() == "memory://"
    assert isinstance(open_storage(), InMemoryStorage)


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_bytes(b"this is not an SQLite database, it is a text file" * 100)
    with pytest.raises(ConfigurationError, match=r"notes\.txt"):
        SQLiteStorage(bogus)
    with pytest.raises(ConfigurationError, match="does not exist"):
        SQLiteStorage(tmp_path / "missing-dir" / "x.db")


async def test_sqlite_is_durable_across_instances_and_closes_cleanly(tmp_path: Path) -> None:
    first = SQLiteStorage(tmp_path / "d.db")
    version = await first.put("k", b"v")
    await first.close()
    await first.close()  # twice is fine
    with pytest.raises(StorageError, match="closed"):
        await first.get("k")
    second = SQLiteStorage(tmp_path / "d.db")
    obj = await second.get("k")
    assert obj is not None and obj.version == version and obj.last_modified is not None
    await second.close()


async def test_sqlite_group_commit_keeps_each_request_result(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "g.db")
    results = await asyncio.gather(
        *(store.put(f"k{i % 50}", str(i).encode(), if_absent=True) for i in range(200)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, str) for r in results) == 50
    assert (await store.list("k")).keys == sorted(f"k{i}" for i in range(50))
    await store.close()


def test_prefix_end() -> None:
    assert _prefix_end(b"ab") == b"ac"
    assert _prefix_end(b"a\xff") == b"b"
    assert _prefix_end(b"\xff\xff") is None


async def test_in_memory_compacts_deleted_keys() -> None:
    store = InMemoryStorage()
    for i in range(100):
        await store.put(f"k{i:03d}", b"")
    await store.list()
    await store.delete_many([f"k{i:03d}" for i in range(0, 100, 2)])
    await store.delete_many([f"k{i:03d}" for i in range(1, 60, 2)])
    page = await store.list("k")
    assert page.keys == [f"k{i:03d}" for i in range(61, 100, 2)]
    assert len(store) == 20
    await store.put("a", b"")  # sorts before everything kept
    assert (await store.list(limit=2)).keys == ["a", "k061"]
