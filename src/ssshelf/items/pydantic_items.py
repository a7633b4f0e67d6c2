"""PydanticItems: pydantic v2 models stored as their own JSON.

Needs the extra: ``pip install 'ssshelf[pydantic]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ..errors import ConfigurationError
from .fields import FieldItems, unknown_pk_field

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


class PydanticItems(FieldItems[M]):
    """Items of pydantic v2 model ``model``, identified by its field ``pk``.

    ``PydanticItems(Bookmark, pk="id")``.  Items are written with
    ``model_dump_json(by_alias=True, round_trip=True)`` and read with
    ``model_validate_json``, so the model's own configuration, validators and
    serializers decide the JSON form, and reading validates: a stored item
    that no longer fits the model raises ``ValidationError``, which a manager
    reports as :class:`~ssshelf.errors.CorruptItemError`.

    What pydantic's defaults change on the way (set in the model's
    ``model_config`` to keep every value):

    * ``bytes`` are written as UTF-8 text, so bytes that are not UTF-8 cannot
      be written (a :class:`~ssshelf.errors.SerializationError` before any
      request): set ``ser_json_bytes="base64", val_json_bytes="base64"``;
    * a float NaN or infinity is written as ``null`` and then fails
      validation on the way back: set ``ser_json_inf_nan="constants"``.

    Needs pydantic v2 (the ``pydantic`` extra); importing ssshelf does not.
    """

    def __init__(self, model: type[M], *, pk: str) -> None:
        try:
            import pydantic
        except ImportError:
            raise ConfigurationError(
                "PydanticItems needs pydantic v2: pip install 'ssshelf[pydantic]'"
            ) from None
        if not pydantic.VERSION.startswith("2."):
            raise ConfigurationError(
                f"PydanticItems needs pydantic v2, this is pydantic {pydantic.VERSION}"
            )
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            raise ConfigurationError(f"PydanticItems needs a pydantic model class, got {model!r}")
        fields = model.model_fields
        if pk not in fields:
            raise unknown_pk_field(model, pk, list(fields))
        super().__init__(model, pk, fields[pk].annotation)

    def serialize_item(self, item: M) -> bytes:
        self.check_item(item)
        return item.model_dump_json(by_alias=True, round_trip=True).encode("utf-8")

    def deserialize_item(self, data: bytes) -> M:
        item: M = self.cls.model_validate_json(data)
        return item
