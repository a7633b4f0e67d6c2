"""Order-preserving encoding of key tuples into storage-key strings.

A collection's key for an item is a tuple of parts.  :func:`encode_tuple`
turns it into a string such that, for tuples ``a`` and ``b`` of supported
parts (compared position by position with parts of the same type):

* ``a < b``  ⇔  ``encode_tuple(a) < encode_tuple(b)``  (byte-wise, as S3 lists);
* ``decode_tuple(encode_tuple(a)) == a``;
* ``encode_tuple(p)`` is a prefix of ``encode_tuple(a)`` exactly when the
  tuple ``p`` is a prefix of ``a`` (whole parts only).

Supported parts: ``str``, ``int`` (any size and sign), ``bool``, ``bytes``,
``datetime.date``, ``datetime.datetime`` and :class:`Desc` around any of
those for a descending (newest-first) order.  Datetimes order as instants: an
aware one is stored in UTC, a naive one is taken as UTC, and both decode as
aware UTC datetimes, so naive and aware keys of one collection interleave by
time and an aware prefix finds a naive entry.  (Keys written before naive
meant UTC carry their own tag, ``t``: they still decode, as naive datetimes,
but sort apart from the rest until the collection is reindexed.)

Encoded keys use only ``0-9 A-Z a-z - . _ = ! ) ( ' *`` and never ``/``, so
``/`` can separate a key from the primary key that follows it.  Letters,
digits and ``-`` of strings stay readable; other bytes of a string's UTF-8
form are written as an escape character plus two hex digits, the escape chosen
so that order is kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

from ._seed import decode_str_as_int, encode_int_as_str, reverse
from .errors import InvalidKeyError

__all__ = [
    "SEPARATOR",
    "Desc",
    "decode_str_as_int",
    "decode_tuple",
    "encode_int_as_str",
    "encode_part",
    "encode_tuple",
    "escape_bytes",
    "escape_text",
    "normalize_key",
    "reverse",
    "unescape_text",
]

KeyPart: TypeAlias = "str | int | bool | bytes | date | datetime | Desc"
KeyTuple: TypeAlias = tuple[Any, ...]

_HEX = "0123456789ABCDEF"
#: Ends a string or bytes part; sorts below every character a part uses.
_TERMINATOR = "!"
#: Separates an encoded key from what follows it (the pk); sorts below tags.
SEPARATOR = "/"


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class Desc:
    """Wrap a key part to sort it in descending order (``Desc(2) < Desc(1)``)."""

    value: Any

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Desc):
            return NotImplemented
        return bool(other.value < self.value)


def _build_byte_table() -> list[str]:
    table: list[str] = []
    for byte in range(256):
        char = chr(byte)
        if char == "-" or "0" <= char <= "9" or "A" <= char <= "Z" or "a" <= char <= "y":
            table.append(char)
            continue
        if byte < 0x2D:
            escape = ")"
        elif byte < 0x30:
            escape = "."
        elif byte < 0x41:
            escape = "="
        elif byte < 0x61:
            escape = "_"
        else:
            escape = "z"
        table.append(escape + _HEX[byte >> 4] + _HEX[byte & 15])
    return table


_BYTE_TABLE = _build_byte_table()
_ESCAPES = frozenset(")._=z")
#: Every character an ascending part body may contain, in byte order.
_ALPHABET = "".join(sorted(set(_TERMINATOR + "".join(_BYTE_TABLE) + "0123456789-.T")))
_COMPLEMENT = str.maketrans(_ALPHABET, _ALPHABET[::-1])


#: ``str.translate`` table: each byte (as a Latin-1 character) to its escaped form.
_TRANSLATE = {byte: _BYTE_TABLE[byte] for byte in range(256)}
#: Strings that escape to themselves (the common case: no lookup needed).
_UNESCAPED = re.compile(r"[-0-9A-Za-y]*")


def escape_bytes(data: bytes) -> str:
    """Encode bytes as readable, order-preserving, ``/``-free text."""
    return data.decode("latin-1").translate(_TRANSLATE)


def escape_text(text: str) -> str:
    """Encode a string (its UTF-8 bytes) as by :func:`escape_bytes`."""
    if _UNESCAPED.fullmatch(text):
        return text
    if text.isascii():  # its UTF-8 bytes are its characters
        return text.translate(_TRANSLATE)
    try:
        return escape_bytes(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKeyError(f"string {text!r} is not valid Unicode", part=text) from None


def _unescape_to_bytes(text: str, pos: int, stop: int) -> bytes:
    out = bytearray()
    while pos < stop:
        char = text[pos]
        if char in _ESCAPES:
            out.append(int(text[pos + 1 : pos + 3], 16))
            pos += 3
        else:
            out.append(ord(char))
            pos += 1
    return bytes(out)


def unescape_text(text: str) -> str:
    """Inverse of :func:`escape_text`."""
    return _unescape_to_bytes(text, 0, len(text)).decode("utf-8")


#: Integers past this many bits (about 1,000 digits) cannot fit in a key anyway.
_MAX_INT_BITS = 3300


def _encode_natural(n: int) -> str:
    if n.bit_length() > _MAX_INT_BITS:
        raise InvalidKeyError(
            f"integer of {n.bit_length()} bits is too large for a key (keys are <= 1024 bytes)",
            part=n,
        )
    digits = str(n)
    size = len(digits)
    if size <= 8:
        return f"{size}{digits}"
    return f"9{size:04d}{digits}"


_DIGIT_COMPLEMENT = str.maketrans("0123456789", "9876543210")


def _encode_int(n: int) -> str:
    if n == 0:
        return "0"
    if n > 0:
        return _encode_natural(n)
    return "-" + _encode_natural(-n).translate(_DIGIT_COMPLEMENT)


def _decode_natural(text: str, pos: int) -> tuple[int, int]:
    if text[pos] == "9":
        size = int(text[pos + 1 : pos + 5])
        pos += 5
    else:
        size = int(text[pos])
        pos += 1
    return int(text[pos : pos + size]), pos + size


def _decode_int(text: str, pos: int) -> tuple[int, int]:
    head = text[pos]
    if head == "0":
        return 0, pos + 1
    if head != "-":
        return _decode_natural(text, pos)
    # Un-complement just the natural number's span: its length prefix says how long.
    plain = text[pos + 1 : pos + 6].translate(_DIGIT_COMPLEMENT)
    size_len, size = (5, int(plain[1:5])) if plain[0] == "9" else (1, int(plain[0]))
    body = text[pos + 1 : pos + 1 + size_len + size].translate(_DIGIT_COMPLEMENT)
    value, _ = _decode_natural(body, 0)
    return -value, pos + 1 + size_len + size


def _encode_datetime_body(value: datetime) -> str:
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}{value.minute:02d}{value.second:02d}.{value.microsecond:06d}"
    )


_DATETIME_WIDTH = 24
_DATE_WIDTH = 10


def _decode_datetime_body(text: str) -> datetime:
    return datetime(
        int(text[0:4]),
        int(text[5:7]),
        int(text[8:10]),
        int(text[11:13]),
        int(text[13:15]),
        int(text[15:17]),
        int(text[18:24]),
    )


def _encode_part_body(part: Any) -> tuple[str, str]:
    """Return (tag, ascending body) for one non-Desc part."""
    if isinstance(part, bool):
        return "b", "1" if part else "0"
    if isinstance(part, int):
        return "i", _encode_int(part)
    if isinstance(part, str):
        return "s", escape_text(part) + _TERMINATOR
    if isinstance(part, bytes):
        return "x", escape_bytes(part) + _TERMINATOR
    if isinstance(part, datetime):
        if part.tzinfo is not None and part.utcoffset() is not None:
            part = part.astimezone(UTC)
        return "u", _encode_datetime_body(part)  # a naive datetime is UTC already
    if isinstance(part, date):
        return "d", f"{part.year:04d}-{part.month:02d}-{part.day:02d}"
    raise InvalidKeyError(
        f"key part {part!r} has unsupported type {type(part).__name__}; "
        "use str, int, bool, bytes, date, datetime or Desc(...) of one",
        part=part,
    )


def encode_part(part: Any) -> str:
    """Encode one key part (self-delimiting)."""
    if type(part) is str:  # the common case, first
        return "s" + escape_text(part) + _TERMINATOR
    if isinstance(part, Desc):
        if isinstance(part.value, Desc):
            raise InvalidKeyError("Desc(Desc(...)) is not a key part", part=part)
        tag, body = _encode_part_body(part.value)
        return tag.upper() + body.translate(_COMPLEMENT)
    tag, body = _encode_part_body(part)
    return tag + body


def encode_tuple(parts: KeyTuple) -> str:
    """Encode a tuple of key parts; see the module docstring for guarantees."""
    return "".join(
        ["s" + escape_text(p) + _TERMINATOR if type(p) is str else encode_part(p) for p in parts]
    )


def _scan_terminated(text: str, pos: int, terminator: str) -> int:
    """Index of the terminator of an escaped body starting at ``pos``."""
    while text[pos] != terminator:
        pos += 3 if text[pos] in _ESCAPES else 1
    return pos


def _decode_body(tag: str, text: str, pos: int) -> tuple[Any, int]:
    if tag == "b":
        return text[pos] == "1", pos + 1
    if tag == "i":
        return _decode_int(text, pos)
    if tag in "sx":
        end = _scan_terminated(text, pos, _TERMINATOR)
        raw = _unescape_to_bytes(text, pos, end)
        return (raw.decode("utf-8") if tag == "s" else raw), end + 1
    if tag in "tu":
        value = _decode_datetime_body(text[pos : pos + _DATETIME_WIDTH])
        if tag == "u":
            value = value.replace(tzinfo=UTC)
        return value, pos + _DATETIME_WIDTH
    if tag == "d":
        raw_date = text[pos : pos + _DATE_WIDTH]
        return date(int(raw_date[0:4]), int(raw_date[5:7]), int(raw_date[8:10])), pos + _DATE_WIDTH
    raise ValueError(f"unknown key tag {tag!r}")


_DESC_END_TERMINATOR = _TERMINATOR.translate(_COMPLEMENT)


def _desc_body_length(tag: str, text: str, pos: int) -> int:
    if tag in "sx":
        # Complemented escapes are not the plain ones: walk char by char, mapping back.
        cursor = pos
        while True:
            plain = text[cursor].translate(_COMPLEMENT)
            if plain == _TERMINATOR:
                return cursor + 1 - pos
            cursor += 3 if plain in _ESCAPES else 1
    if tag == "b":
        return 1
    if tag in "tu":
        return _DATETIME_WIDTH
    if tag == "d":
        return _DATE_WIDTH
    if tag == "i":
        plain = text[pos : pos + 7].translate(_COMPLEMENT)
        if plain[0] == "0":
            return 1
        negative = plain[0] == "-"
        head = plain[1:] if negative else plain
        if negative:
            head = head.translate(_DIGIT_COMPLEMENT)
        size_len, size = (5, int(head[1:5])) if head[0] == "9" else (1, int(head[0]))
        return int(negative) + size_len + size
    raise ValueError(f"unknown key tag {tag!r}")


def decode_tuple(text: str) -> KeyTuple:
    """Inverse of :func:`encode_tuple`.  Raises ``ValueError`` on malformed text."""
    parts: list[Any] = []
    pos = 0
    try:
        while pos < len(text):
            tag = text[pos]
            pos += 1
            if tag.isupper():
                lower = tag.lower()
                length = _desc_body_length(lower, text, pos)
                plain = text[pos : pos + length].translate(_COMPLEMENT)
                value, _ = _decode_body(lower, plain, 0)
                parts.append(Desc(value))
                pos += length
            else:
                value, pos = _decode_body(tag, text, pos)
                parts.append(value)
    except (IndexError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed encoded key {text!r}: {exc}") from None
    return tuple(parts)


def normalize_key(key: Any, *, collection: str) -> list[KeyTuple]:
    """Turn what ``Collection.key(item)`` returned into a list of key tuples.

    A single string or other part is one one-part key; a tuple is one key;
    a list, a set, a generator or any other iterable holds several keys
    (each a tuple, list or single part), as the original project's own
    collections yield them.  An empty one, ``None``, or a key with a ``None``
    part means "not in this collection" and yields nothing for that key.
    """
    if key is None:
        return []
    if type(key) is tuple and key:  # the common case: one key tuple
        for part in key:
            if part is None:
                return []
        return [key]
    if type(key) is str:
        return [(key,)]
    if isinstance(key, Mapping):
        raise InvalidKeyError(
            f"collection {collection!r}: key(item) returned a {type(key).__name__}; return a "
            "part, a tuple of parts, or an iterable of tuples",
            collection=collection,
            part=key,
        )
    several = isinstance(key, Iterable) and not isinstance(key, str | bytes | bytearray | tuple)
    candidates = [_as_tuple(k) for k in key] if several else [_as_tuple(key)]
    out: list[KeyTuple] = []
    for candidate in candidates:
        if candidate is None or any(p is None for p in candidate):
            continue
        if not candidate:
            raise InvalidKeyError(
                f"collection {collection!r} returned an empty key tuple; "
                "return [] or None to leave an item out",
                collection=collection,
                part=(),
            )
        if candidate not in out:
            out.append(candidate)
    return out


def _as_tuple(key: Any) -> KeyTuple | None:
    if key is None:
        return None
    if isinstance(key, tuple):
        return key
    if isinstance(key, list):
        return tuple(key)
    return (key,)
