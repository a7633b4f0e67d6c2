"""The shared part of the ready-made item managers: items of one class, pk named by field."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from ..errors import ConfigurationError, InvalidKeyError
from .base import IManager, T, pk_text

#: Types a pk field may be declared with (a UUID is stored as its string).
PK_TYPES = (str, int, UUID)


class FieldItems(IManager[T]):
    """Items that are instances of ``cls``, identified by the field named ``pk``.

    ``get_pk`` refuses, with :class:`~ssshelf.errors.InvalidKeyError` and
    before any request, an item of another class and a pk field that does
    not hold a non-empty ``str``, an ``int`` or a ``UUID``.
    """

    def __init__(self, cls: type[T], pk: str, pk_type: Any) -> None:
        if pk_type not in PK_TYPES:
            shown = getattr(pk_type, "__name__", None) or repr(pk_type)
            raise ConfigurationError(
                f"{cls.__qualname__}.{pk} is declared as {shown}; a pk field must be "
                "str, int or UUID"
            )
        self.cls = cls
        #: The name of the field that holds the pk.
        self.pk = pk

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cls.__qualname__}, pk={self.pk!r})"

    def get_pk(self, item: T) -> str:
        self.check_item(item)
        value = getattr(item, self.pk)
        if isinstance(value, UUID):
            return str(value)
        return pk_text(value, what=f"{self.cls.__qualname__}.{self.pk}")

    def to_json(self, item: T) -> Any:
        """``item`` as the JSON data it is stored as (checked as ``serialize_item`` does)."""
        return json.loads(self.serialize_item(item))

    def check_item(self, item: object) -> None:
        """:class:`.InvalidKeyError` unless ``item`` is an instance of ``cls``."""
        if not isinstance(item, self.cls):
            raise InvalidKeyError(
                f"{self!r} stores {self.cls.__qualname__} items, got {type(item).__name__}"
            )


def unknown_pk_field(cls: type, pk: str, fields: list[str]) -> ConfigurationError:
    """The error for a ``pk=`` that names no field of ``cls``."""
    return ConfigurationError(
        f"{cls.__qualname__} has no field {pk!r} to use as the pk "
        f"(its fields: {', '.join(fields) or 'none'})"
    )
