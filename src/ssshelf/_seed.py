"""Helpers of the original project, kept so that collections written for it load and
order their keys as they did.

New code needs none of them: a collection's ``key(item)`` may return ints of any
size and sign, datetimes and ``Desc(...)`` for newest-first order, and ssshelf
encodes them in order (:mod:`ssshelf.keys`).  They are exported from where the
original had them: :func:`datetime_to_secs` from :mod:`ssshelf.utils`, the others
from :mod:`ssshelf.keys`.
"""

from __future__ import annotations

import string
import time
from datetime import datetime

from .errors import InvalidArgument

#: The digits of :func:`encode_int_as_str`, in the order they count: ``A`` is 0, ``z`` is 51.
ALPHABET = string.ascii_uppercase + string.ascii_lowercase
_VALUES = {char: value for value, char in enumerate(ALPHABET)}
_BASE = len(ALPHABET)
_MIRROR = str.maketrans(ALPHABET, ALPHABET[::-1])


def encode_int_as_str(n: int) -> str:
    """``n`` (>= 0) written in base 52 with the digits ``A-Z a-z``, most significant
    first, without padding (``0`` is ``"A"``, ``52`` is ``"BA"``).

    Strings of one length sort as their numbers do; pad them to one length
    (``.rjust(width, "A")``) before using them as keys.  Native ``int`` key
    parts need none of this.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise InvalidArgument(f"encode_int_as_str takes an int >= 0, got {n!r}")
    digits: list[str] = []
    while True:
        n, digit = divmod(n, _BASE)
        digits.append(ALPHABET[digit])
        if n == 0:
            return "".join(reversed(digits))


def decode_str_as_int(s: str) -> int:
    """The inverse of :func:`encode_int_as_str` (leading ``A`` digits are zeros)."""
    n = 0
    for char in s:
        try:
            n = n * _BASE + _VALUES[char]
        except KeyError:
            raise InvalidArgument(
                f"decode_str_as_int: {char!r} in {s!r} is not a digit of A-Z a-z"
            ) from None
    return n


def reverse(s: str) -> str:
    """Each digit of ``s`` mirrored in the alphabet (``A`` <-> ``z``): for strings of
    one length, the reversed ones sort in the opposite order — newest first, as
    ``Desc(...)`` does for any key part."""
    bad = set(s) - _VALUES.keys()
    if bad:
        raise InvalidArgument(f"reverse: {s!r} holds characters outside A-Z a-z: {sorted(bad)}")
    return s.translate(_MIRROR)


def datetime_to_secs(dt: datetime) -> int:
    """Whole seconds since the epoch, as the original computed them: the
    datetime's fields read as local time (``time.mktime``), its time zone
    ignored.  ``int(dt.timestamp())`` is the instant of an aware datetime."""
    return int(time.mktime(dt.timetuple()))
