"""How links are stored: one item per link, two collections.

A link is a dict::

    {"pk": "k7Qx2mZ", "url": "https://…", "alias": "docs" | None,
     "created_at": "2024-05-01T10:00:00.123456+00:00",
     "clicks": 0, "last_click_at": None | "<ISO 8601>"}

``pk`` is the generated code.  ``by_created`` lists links newest first;
``by_alias`` holds custom aliases and is unique, so the store itself refuses
a second link with a taken alias, even from another process or machine.

Inspect a store with the CLI::

    ssshelf list by_created --manager examples.url_shortener.manager:LinkManager
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ssshelf import CManager, Collection, Desc, IManager

Link = dict[str, Any]


class NewestFirst(Collection):
    """Every link, newest first (ties: by code)."""

    def key(self, item: Link) -> tuple[Desc]:
        return (Desc(datetime.fromisoformat(item["created_at"])),)


class Alias(Collection):
    """Custom aliases; links without one are not in this collection."""

    unique = True

    def key(self, item: Link) -> str | None:
        alias: str | None = item.get("alias")
        return alias


class LinkManager(CManager):
    """Links by code (the pk), by creation time and by alias."""

    item_manager = IManager()
    namespace = "links"
    by_created = NewestFirst()
    by_alias = Alias()
