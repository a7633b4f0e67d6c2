"""What an :class:`sqlite3.Error` means: its primary result code."""

from __future__ import annotations

import sqlite3


def primary_code(exc: sqlite3.Error) -> int | None:
    """The primary SQLite result code (``SQLITE_BUSY``, …), or ``None`` when unknown."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_busy(exc: sqlite3.Error) -> bool:
    """The file (or a table) is locked by another connection: trying later may work."""
    return primary_code(exc) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
