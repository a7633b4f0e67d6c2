"""MsgspecItems: msgspec Structs stored as JSON (``pip install 'ssshelf[msgspec]'``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ..errors import ConfigurationError
from .fields import FieldItems, unknown_pk_field

if TYPE_CHECKING:
    from msgspec import Struct

S = TypeVar("S", bound="Struct")


class MsgspecItems(FieldItems[S]):
    """Items of msgspec Struct ``struct``, identified by its field ``pk``.

    ``MsgspecItems(Bookmark, pk="id")``.  Items are written with
    ``msgspec.json.encode`` and read with a ``msgspec.json.Decoder`` for the
    Struct, which validates as it reads: datetime (naive and aware), date,
    Decimal, UUID, bytes (base64), sets, tuples, nested Structs and Optional
    fields come back as the declared types.  A stored item that no longer
    fits raises ``msgspec.ValidationError``, which a manager reports as
    :class:`~ssshelf.errors.CorruptItemError`.

    msgspec writes a float NaN or infinity as ``null``, which the Struct then
    refuses on the way back: keep such values out of float fields.

    Needs msgspec (the ``msgspec`` extra); importing ssshelf does not.
    """

    def __init__(self, struct: type[S], *, pk: str) -> None:
        try:
            import msgspec
        except ImportError:
            raise ConfigurationError(
                "MsgspecItems needs msgspec: pip install 'ssshelf[msgspec]'"
            ) from None
        if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
            raise ConfigurationError(f"MsgspecItems needs a msgspec Struct class, got {struct!r}")
        fields = {f.name: f.type for f in msgspec.structs.fields(struct)}
        if pk not in fields:
            raise unknown_pk_field(struct, pk, list(fields))
        super().__init__(struct, pk, fields[pk])
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(struct)

    def serialize_item(self, item: S) -> bytes:
        self.check_item(item)
        return self._encoder.encode(item)

    def deserialize_item(self, data: bytes) -> S:
        item: S = self._decoder.decode(data)
        return item
