"""Collections: ordered secondary indexes over a manager's items.

Declare one by subclassing :class:`Collection` and defining ``key(item)``;
put an instance on a :class:`ssshelf.managers.CManager` subclass.  Each
manager instance gets its own bound copy, reachable as ``manager.<name>``.
``Collection[Bookmark]`` tells a type checker what the items are.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Never,
    NotRequired,
    Protocol,
    Self,
    TypedDict,
    TypeVar,
    overload,
)

from .errors import ConfigurationError, InvalidArgument, InvalidKeyError
from .items import IManager
from .items.base import T
from .keys import Desc, KeyTuple, decode_tuple, encode_tuple
from .layout import Layout
from .reading import Entry, VerifiedPage
from .storages.base import MAX_LIST_LIMIT, Storage

if TYPE_CHECKING:
    from .managers import CManager

__all__ = ["Collection", "Entry", "IndexHost", "ItemsPage", "KeysPage"]

#: The item type of the manager a collection is read through.
U = TypeVar("U")


class ItemsPage(TypedDict, Generic[T]):
    """What :meth:`Collection.get_items` returns (a plain ``dict``)."""

    #: The page's items, in index order.
    items: list[T]
    #: Storage keys of items that exist but cannot be read back (only when any).
    unreadable: NotRequired[list[str]]
    #: The cursor for the next page; ``None`` on the last page.
    after: str | None


class KeysPage(TypedDict):
    """What :meth:`Collection.get_keys` returns (a plain ``dict``)."""

    #: The pks, in index order.
    keys: list[str]
    #: The ``(key tuple, pk)`` pairs, in index order.
    entries: list[tuple[KeyTuple, str]]
    #: The cursor for the next page; ``None`` on the last page.
    after: str | None


class IndexHost(Protocol[T]):
    """What a bound collection needs from the manager it belongs to."""

    @property
    def storage(self) -> Storage: ...

    @property
    def layout(self) -> Layout: ...

    @property
    def item_manager(self) -> IManager[T]: ...

    def ensure_open(self) -> None:
        """Raise :class:`~ssshelf.errors.StorageClosed` once the host is closed."""
        ...

    async def verified_page(self, collection: str, entries: Sequence[Entry]) -> VerifiedPage[T]:
        """The items behind ``entries`` that name them, in order."""
        ...

    async def item_by_unique(self, collection: str, encoded: str) -> T | None:
        """The item holding ``encoded`` in unique ``collection``, or ``None``."""
        ...

    async def count_verified(self, collection: str, entries: Sequence[Entry]) -> int:
        """How many of ``entries`` their item names."""
        ...


class Collection(Generic[T]):
    """An ordered index of items, by the key(s) ``key(item)`` returns.

    ``key(item)`` may return a single part (``str``, ``int``, ``bool``,
    ``bytes``, ``date``, ``datetime`` or :class:`ssshelf.keys.Desc`), a
    tuple of parts, or a list of tuples/lists (one entry each, e.g. tags).
    An empty list, ``None``, or a ``None`` part means "not in this collection".

    Items list in Python tuple order of their keys, ties broken by pk.  Set
    ``unique = True`` to admit at most one item per key value.

    ``class Newest(Collection[Bookmark])`` makes the collection's items
    ``Bookmark`` for a type checker (``key``'s argument, what ``get_items``,
    ``iter_items`` and ``get_item`` give), and makes reading it through a
    manager whose items are of another type an error.  A subclass without
    a type parameter (the seed's way) is a ``Collection[Any]``.
    """

    #: At most one item per key value; enforced with a reservation object.
    unique: bool = False

    def __init__(self) -> None:
        self.name: str | None = None
        self._manager: IndexHost[T] | None = None

    def key(self, item: T) -> Any:
        """The key (or keys) of ``item`` in this collection.  Override this."""
        raise NotImplementedError(f"{type(self).__name__} must define key(item)")

    def get_pk(self, item: T) -> str:
        """Kept for the seed's API; the manager's ``item_manager.get_pk`` decides pks."""
        return self.manager.item_manager.get_pk(item)

    # -- binding ------------------------------------------------------------

    if TYPE_CHECKING:
        # For type checkers only (at run time a manager instance holds its
        # bound copy as an instance attribute): ``Manager.every`` is the
        # declared collection.  Through a manager, a collection declared
        # without a type parameter (the seed's way, a ``Collection[Any]``,
        # which matches ``Collection[Never]`` only because it is ``Any``)
        # takes the manager's item type; one declared as ``Collection[Item]``
        # is its own class, with its own methods, readable only through a
        # manager of the same item type.
        @overload
        def __get__(self, instance: None, owner: type[object], /) -> Self: ...

        @overload
        def __get__(
            self: Collection[Never], instance: CManager[U], owner: type[object], /
        ) -> Collection[U]: ...

        @overload
        def __get__(self, instance: CManager[T], owner: type[object], /) -> Self: ...

        def __get__(self, instance: CManager[Any] | None, owner: type[object], /) -> Any: ...

    def bind(self, manager: IndexHost[T], name: str) -> Collection[T]:
        """A copy of this collection attached to ``manager`` under ``name``."""
        bound = copy.copy(self)
        bound.name = name
        bound._manager = manager
        return bound

    @property
    def manager(self) -> IndexHost[T]:
        if self._manager is None:
            raise ConfigurationError(
                f"{type(self).__name__} is not attached to a manager; "
                "use it through a CManager instance (manager.<collection>)"
            )
        return self._manager

    @property
    def bound_name(self) -> str:
        self.manager  # noqa: B018 - raises when unbound
        assert self.name is not None
        return self.name

    # -- reading ------------------------------------------------------------

    async def list_entries(
        self,
        max_keys: int = 200,
        after: str | None = None,
        prefix_parts: list[Any] | tuple[Any, ...] | None = None,
        *,
        start: tuple[Any, ...] | None = None,
        end: tuple[Any, ...] | None = None,
    ) -> tuple[list[Entry], str | None]:
        """One page of raw index entries (one list request), unverified.

        Returns the entries and the cursor for the next page (``None`` when
        this page is the last).  ``prefix_parts`` selects keys starting with
        those whole parts; ``start`` (inclusive) and ``end`` (exclusive) bound
        the key range; ``after`` is a cursor from a previous page.
        """
        if not isinstance(max_keys, int) or not 1 <= max_keys <= MAX_LIST_LIMIT:
            raise InvalidArgument(
                f"max_keys must be between 1 and {MAX_LIST_LIMIT}, got {max_keys!r}"
            )
        manager = self.manager
        manager.ensure_open()
        name = self.bound_name
        base = manager.layout.entry_prefix(name)
        prefix = base + self._encode_bound("prefix_parts", prefix_parts)
        start_key = base + self._encode_bound("start", start) if start is not None else None
        end_key = base + self._encode_bound("end", end) if end is not None else None
        if start_key is not None and end_key is not None and start_key >= end_key:
            raise InvalidArgument(
                f"collection {name!r}: start={start!r} does not sort before end={end!r}, so "
                "the range is empty; for a Desc key the newest value comes first "
                "(start=(Desc(newest),), end=(Desc(oldest),))"
            )
        list_after = start_key
        if after is not None:
            list_after = base + self._check_cursor(after)
        page = await manager.storage.list(prefix, after=list_after, limit=max_keys)
        entries: list[Entry] = []
        finished = page.next_after is None
        for raw_key in page.keys:
            if end_key is not None and raw_key >= end_key:
                finished = True
                break
            try:
                encoded, pk, write_id = manager.layout.parse_entry(name, raw_key)
                key = decode_tuple(encoded)
            except ValueError:
                continue  # not an entry (a stray object under the prefix): never an item
            entries.append(Entry(key, pk, write_id, encoded))
        if after is None and not (prefix_parts is None and start is None and end is None):
            sample = entries[0].key if entries else await self._sample_key()
            if sample is not None:
                self._check_bounds(sample, prefix_parts, start, end)
        cursor = None if finished or not page.keys else page.keys[-1][len(base) :]
        return entries, cursor

    def _check_cursor(self, after: Any) -> str:
        """A cursor is the tail of an entry key this collection returned."""
        manager = self.manager
        name = self.bound_name
        if isinstance(after, str) and after:
            try:
                encoded, _, _ = manager.layout.parse_entry(
                    name, manager.layout.entry_prefix(name) + after
                )
                decode_tuple(encoded)
                return after
            except ValueError:
                pass
        raise InvalidArgument(
            f"after={after!r} is not a cursor of collection {name!r}; pass the 'after' value "
            "of a previous page of this collection, or None for the first page"
        )

    async def _sample_key(self) -> KeyTuple | None:
        """The first key of this collection (one list request), or ``None``."""
        manager = self.manager
        sample_page = await manager.storage.list(
            manager.layout.entry_prefix(self.bound_name), limit=1
        )
        if not sample_page.keys:
            return None
        try:
            encoded, _, _ = manager.layout.parse_entry(self.bound_name, sample_page.keys[0])
            return decode_tuple(encoded)
        except ValueError:
            return None

    def _check_bounds(
        self,
        sample: KeyTuple,
        prefix_parts: Any,
        start: tuple[Any, ...] | None,
        end: tuple[Any, ...] | None,
    ) -> None:
        """Refuse bounds that cannot match this collection's keys (``sample`` is
        one of them): too many parts, a part of another type, or ascending
        where the keys are descending (or the reverse).  A first page checks
        its bounds against its first entry, or, when it is empty, against the
        collection's first key (one more list request, only then): a mistaken
        bound never comes back as an empty or unbounded page without a word."""
        for what, bound in zip(
            ("prefix_parts", "start", "end"), (prefix_parts, start, end), strict=False
        ):
            if bound is None:
                continue
            parts = _as_parts(bound)
            if len(parts) > len(sample):
                raise InvalidArgument(
                    f"{what} for collection {self.bound_name!r} has {len(parts)} parts but its "
                    f"keys have {len(sample)} (e.g. {sample!r})"
                )
            for i, (given, stored) in enumerate(zip(parts, sample, strict=False)):
                expected, got = _kind(stored), _kind(given)
                if expected != got:
                    raise InvalidArgument(
                        f"{what} for collection {self.bound_name!r}: part {i} of its keys is "
                        f"of type {expected} (e.g. {stored!r}), but {given!r} is of type {got}; "
                        f"pass a {expected} there, as key(item) returns it"
                    )
                if isinstance(stored, Desc) and not isinstance(given, Desc):
                    raise InvalidArgument(
                        f"{what} for collection {self.bound_name!r}: part {i} of its keys is "
                        f"descending; write Desc({given!r}), not {given!r}"
                    )
                if not isinstance(stored, Desc) and isinstance(given, Desc):
                    raise InvalidArgument(
                        f"{what} for collection {self.bound_name!r}: part {i} of its keys is "
                        f"ascending; write {given.value!r}, not {given!r}"
                    )

    def _encode_bound(self, what: str, parts: Any) -> str:
        if parts is None:
            return ""
        try:
            return encode_tuple(_as_parts(parts))
        except InvalidKeyError as exc:
            raise InvalidKeyError(
                f"{what} for collection {self.name!r}: {exc}", collection=self.name, part=exc.part
            ) from None

    async def get_keys(
        self,
        max_keys: int = 200,
        after: str | None = None,
        prefix_parts: list[Any] | tuple[Any, ...] | None = None,
        *,
        start: tuple[Any, ...] | None = None,
        end: tuple[Any, ...] | None = None,
    ) -> KeysPage:
        """One page of the index without fetching items (one request).

        ``resp['keys']`` holds pks in index order, ``resp['entries']`` the
        ``(key tuple, pk)`` pairs, and ``resp['after']`` the cursor for the
        next page (``None`` on the last page).  This is an index-only
        scan: an entry whose write has not committed (or was abandoned by a
        crash) can appear here; :meth:`get_items` verifies every entry.
        """
        entries, cursor = await self.list_entries(
            max_keys, after, prefix_parts, start=start, end=end
        )
        return {
            "keys": [e.pk for e in entries],
            "entries": [(e.key, e.pk) for e in entries],
            "after": cursor,
        }

    async def get_items(
        self,
        max_keys: int = 200,
        after: str | None = None,
        prefix_parts: list[Any] | tuple[Any, ...] | None = None,
        *,
        start: tuple[Any, ...] | None = None,
        end: tuple[Any, ...] | None = None,
    ) -> ItemsPage[T]:
        """One page of items in index order: two dependent round trips.

        The page is listed (one request), then every item is fetched at once
        (bounded concurrency).  An entry counts only if its item exists and
        names that exact entry, so a page never shows an item under a key it
        does not hold; such entries (left by in-flight or crashed writes) are
        skipped, which can make a page shorter than ``max_keys``.
        ``resp['after']`` is the cursor for the next page, ``None`` on the
        last one: ``get_items(after=resp['after'])`` while it is not ``None``.
        """
        entries, cursor = await self.list_entries(
            max_keys, after, prefix_parts, start=start, end=end
        )
        page = await self.manager.verified_page(self.bound_name, entries)
        resp: ItemsPage[T] = {"items": page.items, "after": cursor}
        if page.unreadable:
            resp["unreadable"] = page.unreadable
        return resp

    async def iter_items(
        self,
        prefix_parts: list[Any] | tuple[Any, ...] | None = None,
        *,
        start: tuple[Any, ...] | None = None,
        end: tuple[Any, ...] | None = None,
        max_keys: int = 200,
        after: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[T]:
        """Every item in index order, ``max_keys`` a page, in bounded memory.

        (``page_size`` is the former name of ``max_keys``.)"""
        max_keys = page_size if page_size is not None else max_keys
        while True:
            resp = await self.get_items(max_keys, after, prefix_parts, start=start, end=end)
            for item in resp["items"]:
                yield item
            after = resp["after"]
            if after is None:
                return

    async def iter_keys(
        self,
        prefix_parts: list[Any] | tuple[Any, ...] | None = None,
        *,
        start: tuple[Any, ...] | None = None,
        end: tuple[Any, ...] | None = None,
        max_keys: int = 1000,
        after: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[tuple[KeyTuple, str]]:
        """Every ``(key tuple, pk)`` of the index in order (unverified, see get_keys),
        ``max_keys`` a page.  (``page_size`` is the former name of ``max_keys``.)"""
        max_keys = page_size if page_size is not None else max_keys
        while True:
            entries, after = await self.list_entries(
                max_keys, after, prefix_parts, start=start, end=end
            )
            for entry in entries:
                yield entry.key, entry.pk
            if after is None:
                return

    async def count(
        self,
        prefix_parts: list[Any] | tuple[Any, ...] | None = None,
        *,
        start: tuple[Any, ...] | None = None,
        end: tuple[Any, ...] | None = None,
    ) -> int:
        """How many items :meth:`iter_items` would give for the same bounds:
        live items, each counted once per key of it in range (an item with
        two tags counts twice in a tag collection without a prefix).

        Exact on a store without writes in flight; with writes in flight it
        counts each item as its commit stands when it is read, as a page
        would.  Entries left by crashed or in-flight writes are not counted.
        Cost: one list request per 1,000 entries in range, and a read of each
        distinct item behind them (on S3 a GET each, concurrently, bounded by
        ``max_concurrency``); no item is deserialised.  :meth:`count_entries`
        costs the list requests only.
        """
        total = 0
        after: str | None = None
        while True:
            entries, after = await self.list_entries(
                MAX_LIST_LIMIT, after, prefix_parts, start=start, end=end
            )
            total += await self.manager.count_verified(self.bound_name, entries)
            if after is None:
                return total

    async def count_entries(
        self,
        prefix_parts: list[Any] | tuple[Any, ...] | None = None,
        *,
        start: tuple[Any, ...] | None = None,
        end: tuple[Any, ...] | None = None,
    ) -> int:
        """How many index entries lie in range, unverified: an upper bound of
        :meth:`count` (entries of writes in flight, and garbage that
        ``repair`` has not yet removed, count too) for one list request per
        1,000 entries and no item reads."""
        total = 0
        after: str | None = None
        while True:
            entries, after = await self.list_entries(
                MAX_LIST_LIMIT, after, prefix_parts, start=start, end=end
            )
            total += len(entries)
            if after is None:
                return total

    async def get_item(self, value: Any) -> T | None:
        """The item holding ``value`` in this unique collection, or ``None``.

        ``value`` is a bare part for a one-part key or a tuple.  Two dependent
        requests: the reservation, then the item (verified to hold the value).
        """
        if not self.unique:
            raise InvalidArgument(
                f"collection {self.name!r} is not unique; use get_items(prefix_parts=[...])"
            )
        key = value if isinstance(value, tuple) else (value,)
        return await self.manager.item_by_unique(self.bound_name, self._encode_bound("value", key))


def _kind(part: Any) -> str:
    """The name of a key part's type, as the key encoding tells types apart
    (``bool`` is not an ``int``, a ``datetime`` not a ``date``; ``Desc`` aside)."""
    value = part.value if isinstance(part, Desc) else part
    for kind in (bool, int, str, bytes, datetime, date):
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


def _as_parts(parts: Any) -> KeyTuple:
    """A bound as a tuple of parts: a bare part (a str included) is one part."""
    if isinstance(parts, list | tuple):
        return tuple(parts)
    return (parts,)
