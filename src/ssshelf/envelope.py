"""The stored form of an item (a header line, then the serialised item) and
of a unique-value reservation.

The item header records what the item holds in every collection — each index
entry with the id of the write that created it, each unique value with the
version of its reservation — plus where the item stands in its own history:
the ids of the last few writes that made it (newest first), its sequence
number and the id of the write that created it (its incarnation).  Readers
verify entries against the header, writers delete only what a header no
longer names, and a writer that lost the answer to its commit tells from the
history whether its write took effect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ._json import compact_json
from ._json import json_str as _json_str
from .errors import CorruptItemError

MAGIC = b"ssshelf:1 "
#: How many write ids an item remembers (its own first).
HISTORY = 8

#: collection name -> {encoded key tuple -> write id (entries) or reservation version (uniques)}
Holdings = dict[str, dict[str, str]]


@dataclass(slots=True)
class Envelope:
    """Header of a stored item plus its payload (the user's serialised bytes).

    ``removed`` marks a tombstone: what ``remove_item`` leaves on a store that
    cannot delete conditionally.  Readers treat a tombstone as no item.
    """

    pk: str
    write_id: str
    written_at: float
    payload: bytes
    entries: Holdings = field(default_factory=dict)
    uniques: Holdings = field(default_factory=dict)
    #: Ids of the most recent writes of this item, newest (``write_id``) first.
    history: list[str] = field(default_factory=list)
    #: 1 for the write that created the item, +1 for each write since.
    sequence: int = 1
    #: Id of the write that created this incarnation of the item.
    incarnation: str = ""
    removed: bool = False

    def encode(self) -> bytes:
        return encode_item(
            self.pk,
            self.write_id,
            compact_json(self.written_at),
            self.payload,
            self.entries,
            self.uniques,
            self.history,
            self.sequence,
            self.incarnation,
            self.removed,
        )

    def entry_write(self, collection: str, encoded: str) -> str | None:
        """The write id of the entry this item is listed under, or ``None``."""
        return self.entries.get(collection, {}).get(encoded)

    def reservation_version(self, collection: str, encoded: str) -> str | None:
        """The version of the reservation this item holds the value by, or ``None``."""
        return self.uniques.get(collection, {}).get(encoded)

    def remembers(self, write_id: str) -> bool:
        """True when ``write_id`` is one of the recent writes that made this item."""
        return write_id in self.history


def encode_item(
    pk: str,
    write_id: str,
    written_at: str,
    payload: bytes,
    entries: Holdings,
    uniques: Holdings,
    history: list[str],
    sequence: int = 1,
    incarnation: str = "",
    removed: bool = False,
) -> bytes:
    """The stored form of an item: :meth:`Envelope.encode` without an
    :class:`Envelope`, ``written_at`` given as JSON already
    (``compact_json(time)``, made once for a batch of items)."""
    nested = compact_json({"e": entries, "u": uniques, "h": history})[1:-1]
    tail = ',"x":1}' if removed else "}"
    header = (
        f'{{"pk":{_json_str(pk)},"w":{_json_str(write_id)},"at":{written_at},{nested},'
        f'"n":{sequence:d},"i":{_json_str(incarnation)}{tail}'
    )
    return MAGIC + header.encode() + b"\n" + payload


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
        write_id = str(header["w"])
        return Envelope(
            pk=str(header["pk"]),
            write_id=write_id,
            written_at=float(header["at"]),
            payload=data[end + 1 :],
            entries=_holdings(header.get("e", {})),
            uniques=_holdings(header.get("u", {})),
            history=[str(w) for w in header.get("h", [write_id])],
            sequence=int(header.get("n", 1)),
            incarnation=str(header.get("i", "")),
            removed=bool(header.get("x", 0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptItemError(f"object {key!r} has an unreadable header: {exc}", key=key) from None


def _holdings(raw: Any) -> Holdings:
    return {str(c): {str(k): str(v) for k, v in dict(held).items()} for c, held in raw.items()}


@dataclass(frozen=True, slots=True)
class Reservation:
    """Body of a unique-value reservation: the write that claimed it, for which item.

    A ``released`` reservation is a marker left where the store cannot delete
    conditionally: the value is free and any writer may take it at once.
    """

    pk: str
    write_id: str
    at: float
    released: bool = False

    def encode(self) -> bytes:
        return encode_reservation(self.pk, self.write_id, compact_json(self.at), self.released)


def encode_reservation(pk: str, write_id: str, at: str, released: bool = False) -> bytes:
    """:meth:`Reservation.encode` without a :class:`Reservation`, ``at`` given
    as JSON already (``compact_json(time)``)."""
    tail = ',"free":1}' if released else "}"
    return f'{{"pk":{_json_str(pk)},"w":{_json_str(write_id)},"at":{at}{tail}'.encode()


def decode_reservation(data: bytes, *, key: str) -> Reservation:
    try:
        raw = json.loads(data)
        return Reservation(
            str(raw["pk"]), str(raw["w"]), float(raw["at"]), bool(raw.get("free", 0))
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptItemError(f"reservation {key!r} is unreadable: {exc}", key=key) from None
