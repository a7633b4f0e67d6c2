"""Fixtures shared by the whole suite.

``storage`` is parametrized over every backend: the contract suite and the
manager tests run on each.  The S3 backend runs against a real S3-protocol
server on 127.0.0.1 that the suite starts itself (see ``tests/s3_server.py``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import settings

from ssshelf.storages.base import Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.wrapper import StorageWrapper

pytest_plugins = ["tests.s3_server"]

# Timing depends on the machine's load (CI has 2 cores); correctness does not.
settings.register_profile("ssshelf", deadline=None, print_blob=True)
settings.load_profile("ssshelf")

#: ``SSSHELF_TEST_BACKENDS=s3`` (comma-separated) narrows the run, as
#: ``make test-ceph`` does to point the suite at Ceph's RGW only.
BACKENDS = os.environ.get("SSSHELF_TEST_BACKENDS", "memory,sqlite,s3").split(",")


class Handle(StorageWrapper):
    """One more storage on a store a test shares: closing it closes this handle
    only.  (An in-memory store, once closed, answers no one: there is no file
    to open it again from.)"""

    async def _close(self) -> None:
        """The store stays open for the next handle."""


async def make_storage(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    """A fresh, empty storage of the given kind."""
    if kind == "memory":
        return InMemoryStorage()
    if kind == "sqlite":
        return SQLiteStorage(tmp_path / "store.db")
    if kind == "s3":
        factory = request.getfixturevalue("s3_storage_factory")
        storage: Storage = await factory()
        return storage
    raise AssertionError(kind)


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Every backend in turn, empty, closed after the test."""
    store = await make_storage(request.param, tmp_path, request)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=[b for b in BACKENDS if b != "s3"] or ["memory"])
async def local_storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """The embedded backends only (for tests that need no network server)."""
    store = await make_storage(request.param, tmp_path, request)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(autouse=True)
def _no_ambient_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's SSSHELF_URL by accident."""
    if "SSSHELF_URL" in os.environ:
        monkeypatch.delenv("SSSHELF_URL")
