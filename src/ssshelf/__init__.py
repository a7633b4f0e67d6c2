"""ssshelf: an object store (S3 and S3-compatible) used like a database.

The public face: managers, collections, item managers, keys, storages and the
whole exception tree.  See README.md for a tour.  ``S3Storage`` is imported on
first use, so that ``import ssshelf`` does not load the S3 client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .blocking import SyncManager
from .collections import Collection
from .errors import (
    AccessDenied,
    AlreadyExistsError,
    BucketNotFound,
    BulkWriteError,
    ClosedError,
    ConfigurationError,
    ConflictError,
    CorruptItemError,
    DeleteFailed,
    InvalidArgument,
    InvalidKeyError,
    ItemNotFound,
    NotSent,
    OutcomeUnknown,
    PreconditionFailed,
    ReentrantCallError,
    SerializationError,
    SSShelfError,
    StorageClosed,
    StorageError,
    StorageUnavailable,
    UniqueViolation,
    UnsupportedOperation,
)
from .items import IManager
from .keys import Desc
from .managers import CManager, Versioned
from .repair import CheckReport, ReindexReport, RepairReport
from .storages.base import ListPage, Storage, StoredObject
from .storages.cached import CachedStorage
from .storages.inmemory import InMemoryStorage
from .storages.retrying import RetryingStorage
from .storages.sqlite import SQLiteStorage
from .storages.url import open_storage

if TYPE_CHECKING:
    from .storages.s3 import S3Storage

__all__ = [
    "AccessDenied",
    "AlreadyExistsError",
    "BucketNotFound",
    "BulkWriteError",
    "CManager",
    "CachedStorage",
    "CheckReport",
    "ClosedError",
    "Collection",
    "ConfigurationError",
    "ConflictError",
    "CorruptItemError",
    "DeleteFailed",
    "Desc",
    "IManager",
    "InMemoryStorage",
    "InvalidArgument",
    "InvalidKeyError",
    "ItemNotFound",
    "ListPage",
    "NotSent",
    "OutcomeUnknown",
    "PreconditionFailed",
    "ReentrantCallError",
    "ReindexReport",
    "RepairReport",
    "RetryingStorage",
    "S3Storage",
    "SQLiteStorage",
    "SSShelfError",
    "SerializationError",
    "Storage",
    "StorageClosed",
    "StorageError",
    "StorageUnavailable",
    "StoredObject",
    "SyncManager",
    "UniqueViolation",
    "UnsupportedOperation",
    "Versioned",
    "open_storage",
]


def __getattr__(name: str) -> Any:
    if name == "S3Storage":
        from .storages.s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module 'ssshelf' has no attribute {name!r}")
