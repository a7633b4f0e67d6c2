"""Item managers: how items are identified (their pk) and stored (their bytes).

* :class:`IManager` — the base, and the default for dict items with a
  ``"pk"`` key stored as JSON (its docstring lists what JSON changes on the
  way back).  Subclass it to store items your own way.
* :class:`DataclassItems` — dataclass instances, types kept (no extra needed).
* :class:`PydanticItems` — pydantic v2 models (``ssshelf[pydantic]``).
* :class:`MsgspecItems` — msgspec Structs (``ssshelf[msgspec]``).

Each is generic in its item type: ``DataclassItems(Bookmark, pk="id")`` is an
``IManager[Bookmark]``.  See ``docs/items.md``.
"""

from .base import IManager
from .dataclass_items import DataclassItems
from .fields import FieldItems
from .msgspec_items import MsgspecItems
from .pydantic_items import PydanticItems

__all__ = ["DataclassItems", "FieldItems", "IManager", "MsgspecItems", "PydanticItems"]
