"""DataclassItems: dataclass instances stored as JSON, types kept on the way back."""

from __future__ import annotations

import dataclasses
import json
import typing

from ..errors import ConfigurationError, SerializationError
from .base import T
from .fields import FieldItems, unknown_pk_field
from .json_types import UnsupportedType, ValueMismatch, converter_for


class DataclassItems(FieldItems[T]):
    """Items of dataclass ``cls``, identified by its field ``pk``, stored as JSON.

    ``DataclassItems(Bookmark, pk="id")``.  The field types decide the JSON
    form and make the round trip exact: a ``datetime`` (naive or aware),
    ``date``, ``Decimal``, ``UUID``, ``bytes``, ``set``, ``tuple``, nested
    dataclass, ``list``, ``dict`` or ``X | None`` field reads back as the same
    type and value (the table is in :mod:`ssshelf.items.json_types`).

    * A type that cannot round-trip is refused here, with
      :class:`~ssshelf.errors.ConfigurationError`, not at the first write.
    * ``serialize_item`` checks every field against its declared type and
      raises :class:`~ssshelf.errors.SerializationError` naming the field
      (``author.born: expected int, got str '1929'``) — before any request,
      when a manager calls it.
    * A field missing from a stored item takes its default, so adding a field
      with a default needs no migration; a stored field the class no longer has
      is ignored.  A stored value that does not fit raises ``ValueError``,
      which a manager reports as :class:`~ssshelf.errors.CorruptItemError`
      naming the key.
    * Fields declared with ``init=False`` are not stored (``__post_init__``
      computes them again).
    """

    def __init__(self, cls: type[T], *, pk: str) -> None:
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ConfigurationError(f"DataclassItems needs a dataclass, got {cls!r}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        if pk not in fields:
            raise unknown_pk_field(cls, pk, list(fields))
        try:
            self._converter = converter_for(cls)
        except UnsupportedType as exc:
            raise ConfigurationError(str(exc)) from None
        hint = typing.get_type_hints(cls)[pk]
        super().__init__(cls, pk, hint)

    def serialize_item(self, item: T) -> bytes:
        self.check_item(item)
        try:
            data = self._converter.encode(item)
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            return text.encode("utf-8")
        except (ValueMismatch, TypeError, ValueError) as exc:
            # TypeError, ValueError: an ``Any`` field holding what JSON cannot.
            raise SerializationError(f"cannot store this {self.cls.__qualname__}: {exc}") from None

    def deserialize_item(self, data: bytes) -> T:
        try:
            item: T = self._converter.decode(json.loads(data))
        except ValueMismatch as exc:
            raise ValueError(f"stored {self.cls.__qualname__} does not fit: {exc}") from None
        return item
