"""IManager: how one kind of item is identified and turned into bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic

from ..errors import InvalidKeyError
from ..utils import dump_acyclic

if TYPE_CHECKING:
    # A default, so that ``IManager()`` and a subclass written without a type
    # parameter (the seed's way) mean ``IManager[Any]``.
    from typing_extensions import TypeVar

    T = TypeVar("T", default=Any)
else:
    from typing import TypeVar

    T = TypeVar("T")


class IManager(Generic[T]):
    """Describes items of type ``T``: their primary key and their serialised form.

    Three methods make an item manager; a manager calls ``get_pk`` and
    ``serialize_item`` before any request of a write (an exception there
    means nothing was written) and ``deserialize_item`` on every item read:

    * ``get_pk(item)`` returns the item's primary key: a non-empty ``str``
      (an ``int`` is accepted and used as its decimal string);
    * ``serialize_item(item)`` returns ``bytes``;
    * ``deserialize_item(data)`` turns those bytes back into an item.

    Subclass and override what differs, as the seed's example does (a
    subclass without a type parameter is an ``IManager[Any]``), or use a
    ready-made one: :class:`~ssshelf.items.DataclassItems`,
    :class:`~ssshelf.items.PydanticItems`, :class:`~ssshelf.items.MsgspecItems`.

    **The defaults** suit dict items with a ``"pk"`` key (or objects with a
    ``pk`` attribute), stored as JSON:

    * the pk must be a non-empty ``str`` or an ``int`` (not a ``bool``): anything
      else — ``None``, a float, a tuple, a missing key — raises
      :class:`~ssshelf.errors.InvalidKeyError` before any request;
    * items are written with :func:`ssshelf.utils.json_dump` and read back
      with :func:`json.loads`, so what JSON cannot hold comes back changed:

      ============================  ==============================================
      stored                        read back as
      ============================  ==============================================
      ``datetime``, ``date``        ISO 8601 ``str`` (an aware datetime keeps its
                                    offset: ``"2024-05-01T12:00:00+02:00"``)
      ``tuple``                     ``list``
      ``set``, ``frozenset``        sorted ``list``
      ``Decimal``                   ``str`` with the same digits (``"9.90"``)
      ``UUID``                      ``str`` (``"1b4e28ba-2fa1-…"``)
      ``bytes``                     base64 ``str``
      ``int`` dict keys             ``str`` keys (``{1: "a"}`` → ``{"1": "a"}``)
      ``float('nan')``, ``inf``     ``nan``, ``inf`` again (written as the
                                    non-standard ``NaN`` / ``Infinity``)
      ============================  ==============================================

      Any other type is a :class:`~ssshelf.errors.SerializationError` before
      any request.  To get the types back, use a typed item manager.
    """

    def get_pk(self, item: T) -> str:
        if isinstance(item, Mapping):
            if "pk" not in item:
                raise InvalidKeyError(
                    f"item has no 'pk' key (keys: {', '.join(map(repr, item))[:200]}); "
                    "the default IManager reads item['pk'] — override get_pk to use another",
                )
            pk = item["pk"]
        else:
            pk = getattr(item, "pk", _MISSING)
            if pk is _MISSING:
                raise InvalidKeyError(
                    f"a {type(item).__name__} item has no 'pk' attribute; the default "
                    "IManager reads item['pk'] or item.pk — override get_pk to use another",
                )
        return pk_text(pk)

    def serialize_item(self, item: T) -> bytes:
        return dump_acyclic(item).encode("utf-8")

    def deserialize_item(self, data: bytes) -> T:
        item: T = json.loads(data)
        return item


_MISSING = object()


def pk_text(pk: object, *, what: str = "item pk") -> str:
    """``pk`` as the string a manager stores it under; :class:`InvalidKeyError` unless
    it is a non-empty ``str`` or an ``int`` (``bool`` is refused)."""
    if isinstance(pk, bool) or not isinstance(pk, str | int):
        raise InvalidKeyError(
            f"{what} must be a non-empty str or an int, got {type(pk).__name__}: {pk!r}",
            part=pk,
        )
    text = str(pk)
    if not text:
        raise InvalidKeyError(f"{what} must not be empty", part=pk)
    return text
