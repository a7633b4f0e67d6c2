"""Storage backends and the contract they share (see :mod:`.base`)."""

from .base import ListPage, Storage, StoredObject
from .url import open_storage

__all__ = ["ListPage", "Storage", "StoredObject", "open_storage"]
