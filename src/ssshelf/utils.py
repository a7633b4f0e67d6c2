"""Small helpers kept from the seed: datetime strings, seconds and a JSON dumper."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ._json import acyclic_encoder
from ._seed import datetime_to_secs

__all__ = ["convert_datetime_to_str", "datetime_to_secs", "json_dump"]


def convert_datetime_to_str(dt: datetime) -> str:
    """Format a datetime as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (second precision, as the seed did).

    An aware datetime is converted to UTC first; a naive one is taken as UTC
    already.  Strings of this form sort in time order, which is what makes
    them usable as collection keys.
    """
    if dt.tzinfo is not None and dt.utcoffset() is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:  # elements that do not compare: a fixed order all the same
            return sorted(value, key=lambda v: json.dumps(v, default=_default, sort_keys=True))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_dump(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that also writes datetime, date (ISO 8601), UUID, Decimal
    (as strings), bytes (base64) and sets (sorted lists)."""
    if not kwargs:
        return _ENCODER.encode(obj)  # what json.dumps(obj, default=...) does, made once
    kwargs.setdefault("default", _default)
    return json.dumps(obj, **kwargs)


_ENCODER = json.JSONEncoder(default=_default)
#: :func:`json_dump` without the cycle check, made once: the default item serialiser.
dump_acyclic = acyclic_encoder(separators=(", ", ": "), default=_default)
