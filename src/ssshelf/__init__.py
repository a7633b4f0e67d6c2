"""ssshelf: an object store (S3 and S3-compatible) used like a database.

The public face: managers, collections, item managers, keys, storages and the
exception tree.  See README.md for a tour.
"""

from .collections import Collection
from .errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidKeyError,
    SSShelfError,
    UniqueViolation,
)
from .items import IManager
from .keys import Desc
from .managers import CManager, Versioned
from .storages.base import Storage
from .storages.url import open_storage

__all__ = [
    "AlreadyExistsError",
    "CManager",
    "Collection",
    "ConflictError",
    "Desc",
    "IManager",
    "InvalidKeyError",
    "SSShelfError",
    "Storage",
    "UniqueViolation",
    "Versioned",
    "open_storage",
]
