"""The shortener's operations, independent of HTTP.

:class:`Links` creates links, resolves codes (counting the click), pages the
recent list and reads stats.  A *code* is what goes after the host in a
short link: the generated pk, or the custom alias when the link has one.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from ssshelf import AlreadyExistsError, Desc, UniqueViolation
from ssshelf.errors import InvalidArgument
from ssshelf.keys import decode_tuple

from .clicks import ClickCounter
from .manager import Link, LinkManager, alias_key
from .validation import Invalid, check_alias, check_cursor, check_not_own, check_url, is_code

#: Generated codes: no 0/O, 1/l/I look-alikes.
CODE_ALPHABET = "23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 7
PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
NOT_OURS = "That page cursor is not one of ours; use the one a previous page gave."


class AliasTaken(Exception):
    """The custom alias (or a code equal to it) is already in use."""

    def __init__(self, alias: str) -> None:
        super().__init__(f"The alias {alias!r} is already taken; choose another.")
        self.alias = alias


@dataclass(frozen=True)
class Page:
    """One page of the recent list; ``after`` is set when older links follow."""

    links: list[Link]
    after: str | None


def public_code(link: Link) -> str:
    """The code a short link uses: the alias if there is one, else the pk."""
    code: str = link.get("alias") or link["pk"]
    return code


class Links:
    """Link operations over one :class:`LinkManager`."""

    #: Aliases remembered (alias -> pk) to save two reads a redirect.
    alias_cache_size = 10_000

    def __init__(self, manager: LinkManager) -> None:
        self.manager = manager
        self.clicks = ClickCounter(manager)
        self._alias_pks: OrderedDict[str, str] = OrderedDict()

    async def create(self, url: object, alias: object = None, *, own: Iterable[str] = ()) -> Link:
        """Validate and store a new link (raises :class:`Invalid`, :class:`AliasTaken`).

        ``own``: the shortener's base URLs; a target on that site is refused
        (it would redirect to itself).  The alias is kept as given and held
        without case, so ``Mine`` and ``MINE`` are one alias.  A generated
        code is never an existing alias (in any case), and an alias is never
        an existing code, so a code always names one link.
        """
        target = check_url(url)
        check_not_own(target, own)
        wanted = check_alias(alias)
        if wanted is not None and await self.manager.get_item(wanted) is not None:
            raise AliasTaken(wanted)
        for _ in range(10):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if await self.manager.by_alias.get_item(alias_key(code)) is not None:
                continue
            link: Link = {
                "pk": code,
                "url": target,
                "alias": wanted,
                "created_at": datetime.now(UTC).isoformat(),
                "clicks": 0,
                "last_click_at": None,
            }
            try:
                await self.manager.create_item(link)
            except AlreadyExistsError:
                continue
            except UniqueViolation:
                raise AliasTaken(wanted or code) from None
            return link
        raise RuntimeError("could not find a free code in 10 tries")  # 57**7 codes: not expected

    async def find(self, code: str) -> Link | None:
        """The link a code names (pk first, then alias in any case), or ``None``.
        Counts nothing."""
        if not is_code(code):
            return None
        link: Link | None = await self.manager.get_item(code)
        if link is None:
            link = await self._by_alias(code)
        return link

    async def _by_alias(self, code: str) -> Link | None:
        """The link with alias ``code`` in any case; then, for a link stored
        while aliases kept their case (not yet reindexed), as spelled."""
        key = alias_key(code)
        link: Link | None = await self.manager.by_alias.get_item(key)
        if link is None and key != code:
            link = await self.manager.by_alias.get_item(code)
        return link

    async def follow(self, code: str) -> Link | None:
        """Count a click on the link ``code`` names and return it (``None``: no link).

        The click is committed before this returns.  Two requests (read,
        conditional write) for a generated code or a remembered alias; an
        alias seen for the first time costs three more (the pk miss, the
        reservation, the item).  An alias never moves to another link, so
        remembering alias -> pk is safe; a link gone meanwhile is a miss.
        """
        if not is_code(code):
            return None
        key = alias_key(code)
        known = self._alias_pks.get(key)
        if known is not None:
            self._alias_pks.move_to_end(key)
            return await self._record(known, alias=key)
        try:
            return await self.clicks.record(code)
        except KeyError:
            pass
        link: Link | None = await self._by_alias(code)
        if link is None:
            return None
        self._alias_pks[key] = link["pk"]
        while len(self._alias_pks) > self.alias_cache_size:
            self._alias_pks.popitem(last=False)
        return await self._record(link["pk"], alias=key)

    async def _record(self, pk: str, *, alias: str) -> Link | None:
        try:
            return await self.clicks.record(pk)
        except KeyError:  # removed meanwhile
            self._alias_pks.pop(alias, None)
            return None

    async def recent(self, after: str | None = None, limit: int = PAGE_SIZE) -> Page:
        """Links newest first, ``limit`` (1 … 100) a page, from cursor ``after``.

        A cursor that no page of ours printed is :class:`Invalid`, never an
        empty page.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
        cursor = self._check_ours(check_cursor(after))
        try:
            resp = await self.manager.by_created.get_items(max_keys=limit, after=cursor)
        except InvalidArgument:
            raise Invalid(NOT_OURS) from None
        return Page(list(resp["items"]), resp.get("after"))

    def _check_ours(self, cursor: str | None) -> str | None:
        """``cursor`` if it names a place in ``by_created`` (a creation time and a code)."""
        if cursor is None:
            return None
        layout = self.manager.layout
        try:
            encoded, _, _ = layout.parse_entry(
                "by_created", layout.entry_prefix("by_created") + cursor
            )
            key = decode_tuple(encoded)
        except ValueError:
            raise Invalid(NOT_OURS) from None
        if len(key) != 1 or not isinstance(key[0], Desc) or not isinstance(key[0].value, datetime):
            raise Invalid(NOT_OURS)
        return cursor
