"""The stored form of an item: a header line, then the serialised item.

The header records what the item holds in every collection, with the version
of each index entry and unique reservation its writer created.  Readers verify
entries against it (so verification never has to recompute keys from a
deserialised item), and writers use the versions to delete only what they
themselves wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import CorruptItemError

MAGIC = b"ssshelf:1 "

#: collection name -> {encoded key tuple -> version tag of the object}
Holdings = dict[str, dict[str, str]]


@dataclass(slots=True)
class Envelope:
    """Header of a stored item plus its payload (the user's serialised bytes)."""

    pk: str
    write_id: str
    written_at: float
    payload: bytes
    entries: Holdings = field(default_factory=dict)
    uniques: Holdings = field(default_factory=dict)

    def encode(self) -> bytes:
        header = {
            "pk": self.pk,
            "w": self.write_id,
            "at": self.written_at,
            "e": self.entries,
            "u": self.uniques,
        }
        return MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n" + self.payload

    def holds_entry(self, collection: str, encoded: str) -> bool:
        return encoded in self.entries.get(collection, {})

    def holds_unique(self, collection: str, encoded: str) -> bool:
        return encoded in self.uniques.get(collection, {})


def decode_envelope(data: bytes, *, key: str) -> Envelope:
    """Parse a stored item; raise :class:`CorruptItemError` naming ``key``."""
    if not data.startswith(MAGIC):
        raise CorruptItemError(
            f"object {key!r} is not an item written by ssshelf (bad header)", key=key
        )
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise CorruptItemError(f"object {key!r} has a truncated header", key=key)
    try:
        header: dict[str, Any] = json.loads(data[len(MAGIC) : end])
        return Envelope(
            pk=str(header["pk"]),
            write_id=str(header["w"]),
            written_at=float(header["at"]),
            payload=data[end + 1 :],
            entries={c: dict(v) for c, v in header.get("e", {}).items()},
            uniques={c: dict(v) for c, v in header.get("u", {}).items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptItemError(f"object {key!r} has an unreadable header: {exc}", key=key) from None


@dataclass(frozen=True, slots=True)
class Reservation:
    """Body of a unique-value reservation: who holds it, since when."""

    pk: str
    write_id: str
    at: float

    def encode(self) -> bytes:
        return json.dumps({"pk": self.pk, "w": self.write_id, "at": self.at}).encode()


def decode_reservation(data: bytes, *, key: str) -> Reservation:
    try:
        raw = json.loads(data)
        return Reservation(str(raw["pk"]), str(raw["w"]), float(raw["at"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptItemError(f"reservation {key!r} is unreadable: {exc}", key=key) from None
