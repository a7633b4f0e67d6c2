"""JSON encoders made once, for values that hold no cycle.

``json.JSONEncoder.encode`` builds a new C encoder on every call, which costs
more than encoding a small header.  An encoder without the cycle check keeps
no state between calls, so one serves every call, from any thread.  A value
that does contain a cycle fails with ``RecursionError`` instead of
``ValueError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any


def acyclic_encoder(
    *, separators: tuple[str, str], default: Callable[[Any], Any] | None = None
) -> Callable[[Any], str]:
    """``json.dumps(obj, separators=..., default=...)`` as a function made once."""
    item_separator, key_separator = separators
    make = getattr(_encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        encoder = json.JSONEncoder(separators=separators, default=default, check_circular=False)
        return encoder.encode
    chunks = make(
        None,  # no cycle check
        default or json.JSONEncoder().default,
        _encoder.encode_basestring_ascii,
        None,  # no indent
        key_separator,
        item_separator,
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )

    def encode(obj: Any) -> str:
        if isinstance(obj, str):  # as JSONEncoder.encode: a bare string in one piece
            return _encoder.encode_basestring_ascii(obj)
        return "".join(chunks(obj, 0))

    return encode


#: ``json.dumps(obj, separators=(",", ":"))`` for ssshelf's own headers.
compact_json: Callable[[Any], str] = acyclic_encoder(separators=(",", ":"))


#: A string as JSON (ASCII, as ``json.dumps`` writes it).
json_str: Callable[[str], str] = _encoder.encode_basestring_ascii
