"""Placeholder until the S3 backend lands: the ``s3`` parameter skips."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from ssshelf.storages.base import Storage


@pytest.fixture
def s3_storage_factory() -> Callable[[], Awaitable[Storage]]:
    pytest.skip("S3 backend not built yet")
