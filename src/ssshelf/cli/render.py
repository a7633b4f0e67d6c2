"""How the CLI shows objects and items, and how it reads key parts.

* An item is shown as its *serialised form* (what the item manager's
  ``serialize_item`` writes), so ``export`` output can be fed back to
  ``import`` through ``deserialize_item``.  That form must be JSON for the
  JSON outputs; :class:`NotJSONError` says so otherwise.
* A raw object (``cat``) is shown as pretty JSON when it is JSON; an ssshelf
  item object (header line ``ssshelf:1 {...}`` then the payload) is shown as
  one JSON document ``{"ssshelf": <header>, "item": <payload>}``; an index
  entry or a unique reservation is described from its key (:func:`describe_key`).
* Key parts are shown as JSON (:func:`key_json`): dates in ISO 8601, bytes in
  hex, a descending part as ``{"desc": value}``.
* Key parts on the command line are strings unless tagged:
  ``int:42``, ``bool:true``, ``date:2024-05-01``, ``datetime:2024-05-01T12:00:00``,
  ``str:int:42`` (the literal string ``int:42``), and ``desc:`` before any of
  those for a descending part (``desc:int:5``).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from ..envelope import MAGIC
from ..errors import ConfigurationError, InvalidArgument, SSShelfError
from ..keys import Desc, decode_tuple
from ..layout import Layout


class NotJSONError(SSShelfError):
    """An item's serialised form is not JSON, so it cannot be shown as JSON."""


def payload_to_json(data: bytes, *, pk: str) -> Any:
    """Parse an item's serialised bytes as JSON, or raise :class:`NotJSONError`."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise NotJSONError(
            f"item {pk!r} does not serialise to JSON; the CLI shows and exports items "
            "through their item manager's serialize_item, which must produce JSON"
        ) from None


def dumps_line(value: Any) -> str:
    """Compact one-line JSON (non-ASCII kept readable)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dumps_pretty(value: Any) -> str:
    """Indented JSON for a person to read."""
    return json.dumps(value, ensure_ascii=False, indent=2)


def render_object(data: bytes) -> bytes:
    """What ``cat`` prints for an object's bytes (see the module docstring)."""
    if data.startswith(MAGIC):
        end = data.find(b"\n")
        if end > 0:
            try:
                header = json.loads(data[len(MAGIC) : end])
            except ValueError:
                return data
            payload = data[end + 1 :]
            document = {"ssshelf": header, "item": _json_or_text(payload)}
            return (dumps_pretty(document) + "\n").encode("utf-8")
        return data
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data
    return (dumps_pretty(value) + "\n").encode("utf-8")


def describe_key(key: str, data: bytes) -> dict[str, Any] | None:
    """What an index entry or a reservation is, read from its key; ``None`` otherwise.

    An entry ``<ns>/c/<collection>/<key>/<pk>!<write>`` must be empty; a
    reservation ``<ns>/u/<collection>/<key>`` holds its holder as JSON.
    """
    namespace, kind, collection, rest = [*key.split("/", 3), "", "", ""][:4]
    if kind not in {"c", "u"} or not collection or not rest:
        return None
    try:
        layout = Layout(namespace)
        if kind == "c":
            if data:
                return None
            encoded, pk, write_id = layout.parse_entry(collection, key)
            entry = {
                "namespace": namespace,
                "collection": collection,
                "key": key_json(decode_tuple(encoded)),
                "pk": pk,
                "write": write_id,
            }
            return {"index_entry": entry}
        holder = json.loads(data)
        reservation = {
            "namespace": namespace,
            "collection": collection,
            "value": key_json(decode_tuple(rest)),
        }
        return {"reservation": reservation, "holder": holder}
    except (ConfigurationError, ValueError, UnicodeDecodeError):
        return None


def key_json(key: tuple[Any, ...]) -> list[Any]:
    """A key tuple as JSON: dates ISO 8601, bytes hex, ``Desc(x)`` as ``{"desc": x}``."""
    return [_part_json(p) for p in key]


def _part_json(part: Any) -> Any:
    if isinstance(part, Desc):
        return {"desc": _part_json(part.value)}
    if isinstance(part, datetime | date):
        return part.isoformat()
    if isinstance(part, bytes):
        return part.hex()
    return part


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return payload.decode("utf-8", errors="backslashreplace")


_PLAIN_TAGS = ("str:", "int:", "bool:", "date:", "datetime:")


def parse_part(text: str) -> Any:
    """Turn one command-line key part into a key part (see the module docstring)."""
    if text.startswith("desc:"):
        return Desc(parse_part(text[len("desc:") :]))
    tag, sep, value = text.partition(":")
    if not sep or f"{tag}:" not in _PLAIN_TAGS:
        return text
    try:
        if tag == "int":
            return int(value)
        if tag == "bool":
            if value.lower() not in {"true", "false"}:
                raise ValueError("expected true or false")
            return value.lower() == "true"
        if tag == "date":
            return date.fromisoformat(value)
        if tag == "datetime":
            return datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidArgument(f"key part {text!r}: {exc}") from None
    return value  # str:
