"""How links are stored: one item per link, two collections.

A link is a dict::

    {"pk": "k7Qx2mZ", "url": "https://…", "alias": "docs" | None,
     "created_at": "2024-05-01T10:00:00.123456+00:00",
     "clicks": 0, "last_click_at": None | "<ISO 8601>"}

``pk`` is the generated code.  ``by_created`` lists links newest first;
``by_alias`` holds custom aliases and is unique, so the store itself refuses
a second link with a taken alias, even from another process or machine.
Aliases ignore case: ``by_alias`` holds each one lower-cased
(:func:`alias_key`), while the link keeps it as the user spelled it.

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


def alias_key(alias: str) -> str:
    """The form an alias is held and looked up in: ``Mine`` and ``MINE`` are one alias."""
    return alias.lower()


class Alias(Collection):
    """Custom aliases, lower-cased; links without one are not in this collection.

    Links stored while aliases kept their case hold them as spelled, and are
    still found by that spelling; ``ssshelf reindex by_alias`` moves them
    to the lower-cased form (see ``docs/shortener.md``)."""

    unique = True

    def key(self, item: Link) -> str | None:
        alias: str | None = item.get("alias")
        return alias_key(alias) if alias else None


class LinkManager(CManager):
    """Links by code (the pk), by creation time and by alias."""

    item_manager = IManager()
    namespace = "links"
    by_created = NewestFirst()
    by_alias = Alias()
