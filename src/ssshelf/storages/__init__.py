"""Storage backends and the contract they share (see :mod:`.base` and :mod:`.common`)."""

from .base import Capabilities, ListPage, Storage, StoredObject, capabilities_of, read_many
from .common import BaseStorage
from .url import open_storage

__all__ = [
    "BaseStorage",
    "Capabilities",
    "ListPage",
    "Storage",
    "StoredObject",
    "capabilities_of",
    "open_storage",
    "read_many",
]
