"""Where each object of a manager lives in the storage's key space.

``<ns>/items/<pk>``                        the item (the commit point)
``<ns>/c/<collection>/<key>/<pk>!<write>``  an index entry (an empty object)
``<ns>/u/<collection>/<key>``               a unique-value reservation

``<key>`` is :func:`ssshelf.keys.encode_tuple` of the key tuple and ``<pk>``
is :func:`ssshelf.keys.escape_text` of the primary key, so a collection lists
in key order with ties broken by pk.  ``<write>`` is the id of the write that
created the entry: no two writes ever create the same entry object, so a
writer may delete what it created without asking whether someone else
re-created it, and a reader accepts an entry only when the item names that
exact write id for that key.
"""

from __future__ import annotations

import re

from .errors import ConfigurationError, InvalidKeyError
from .keys import SEPARATOR, escape_text, unescape_text

#: Ends the escaped pk in an entry key; sorts below every escaped character,
#: so entries of pk "a" come before those of pk "a" + anything.
WRITE_MARK = "!"
#: A write id is this many hex digits (64 random bits).
WRITE_ID_LENGTH = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def check_name(kind: str, name: str) -> str:
    """Namespaces and collection names: letters, digits, ``_`` and ``-``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"{kind} name {name!r} must be 1-100 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class Layout:
    """Key builders for one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = check_name("namespace", namespace)
        self.item_prefix = f"{namespace}/items/"

    def item_key(self, pk: str) -> str:
        return self.item_prefix + escape_pk(pk)

    def pk_from_item_key(self, key: str) -> str:
        return unescape_text(key[len(self.item_prefix) :])

    def entry_prefix(self, collection: str) -> str:
        return f"{self.namespace}/c/{collection}/"

    def entry_key(self, collection: str, encoded: str, pk: str, write_id: str) -> str:
        return self.entry_key_escaped(collection, encoded, escape_pk(pk), write_id)

    def entry_key_escaped(
        self, collection: str, encoded: str, escaped_pk: str, write_id: str
    ) -> str:
        """:meth:`entry_key` for a pk escaped already (the tail of its item key)."""
        pk_and_write = f"{escaped_pk}{WRITE_MARK}{write_id}"
        return f"{self.namespace}/c/{collection}/{encoded}{SEPARATOR}{pk_and_write}"

    def escaped_pk_of(self, item_key: str) -> str:
        """The escaped pk at the end of ``item_key``."""
        return item_key[len(self.item_prefix) :]

    def parse_entry(self, collection: str, key: str) -> tuple[str, str, str]:
        """Split an entry key into (encoded key tuple, pk, write id).

        Raises ``ValueError`` when the key is not an entry of this collection.
        """
        encoded, sep, tail = key[len(self.entry_prefix(collection)) :].rpartition(SEPARATOR)
        raw_pk, mark, write_id = tail.rpartition(WRITE_MARK)
        if not sep or not mark or not raw_pk or not write_id:
            raise ValueError(f"{key!r} is not an index entry of {collection!r}")
        return encoded, unescape_text(raw_pk), write_id

    def reservation_prefix(self, collection: str) -> str:
        return f"{self.namespace}/u/{collection}/"

    def reservation_key(self, collection: str, encoded: str) -> str:
        return self.reservation_prefix(collection) + encoded


def escape_pk(pk: str) -> str:
    if not isinstance(pk, str) or pk == "":
        raise InvalidKeyError(f"primary key must be a non-empty str, got {pk!r}", part=pk)
    return escape_text(pk)


def normalize_pk(pk: object) -> str:
    """Accept a ``str`` pk, or an ``int`` as its decimal string."""
    if isinstance(pk, bool) or not isinstance(pk, str | int):
        raise InvalidKeyError(
            f"primary key must be a str (or int), got {type(pk).__name__}: {pk!r}", part=pk
        )
    text = str(pk)
    if not text:
        raise InvalidKeyError("primary key must not be empty", part=pk)
    return text
