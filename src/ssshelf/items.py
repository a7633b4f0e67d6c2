"""IManager: how one kind of item is identified and turned into bytes."""

from __future__ import annotations

import json
from typing import Any

from .utils import json_dump


class IManager:
    """Describes items: their primary key and their serialised form.

    Subclass and override what differs from the defaults, which suit dict
    items with a ``"pk"`` key (or objects with a ``pk`` attribute) stored as
    JSON.  ``get_pk`` must return a non-empty ``str`` (an ``int`` is accepted
    and used as its decimal string); ``serialize_item`` must return ``bytes``.
    """

    def get_pk(self, item: Any) -> str:
        if isinstance(item, dict):
            return str(item["pk"])
        return str(item.pk)

    def serialize_item(self, item: Any) -> bytes:
        return json_dump(item).encode("utf-8")

    def deserialize_item(self, data: bytes) -> Any:
        return json.loads(data)
