"""CManager: an item manager plus collections, kept consistent on every write.

The write protocol (see ``docs/consistency.md``):

1. Everything is validated and serialised before the first request.
2. New index entries and unique reservations are written, in parallel
   (together with reading the current item when it is not known yet).
3. The item is written conditionally on the version it replaces: the commit.
4. Entries and reservations the item no longer holds are deleted.

Readers verify each index entry against the item, so a crash between any two
requests leaves the old state or the new one visible, never a mix.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self

from . import repair as repair_module
from ._concurrency import gather_all, gather_bounded
from .collections import Collection, Entry
from .envelope import Envelope, decode_envelope, decode_reservation
from .errors import (
    ConfigurationError,
    ConflictError,
    CorruptItemError,
    InvalidKeyError,
    PreconditionFailed,
    SSShelfError,
)
from .items import IManager
from .layout import Layout, check_name, normalize_pk
from .repair import CheckReport, ReindexReport, RepairReport
from .storages.base import Storage, StoredObject
from .storages.url import open_storage
from .writes import Current, WriteAttempt, WriteProtocol, new_write_id

if TYPE_CHECKING:
    from .blocking import SyncManager

log = logging.getLogger("ssshelf")

ProgressCallback = Callable[[int], None]


class Versioned(NamedTuple):
    """An item with the version tag of the stored object it was read from."""

    item: Any
    version: str


class _ManagerMeta(type):
    """Collects Collection class attributes (inherited ones too) in declaration order."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> _ManagerMeta:
        declared: dict[str, Collection] = {}
        for base in reversed(bases):
            declared.update(getattr(base, "_declared_collections", {}))
        for attr, value in attrs.items():
            if isinstance(value, Collection):
                declared[attr] = value
        attrs["_declared_collections"] = declared
        return super().__new__(mcs, name, bases, attrs)


class CManager(WriteProtocol, metaclass=_ManagerMeta):
    """Items of one kind plus their collections, over one storage.

    Subclass it, set ``item_manager`` to an :class:`~ssshelf.items.IManager`
    and add :class:`~ssshelf.collections.Collection` instances as class
    attributes.  ``namespace`` (default: the item manager's class name) is the
    key prefix all of this manager's objects live under: set it explicitly so
    that renaming a class never orphans data.
    """

    _declared_collections: ClassVar[dict[str, Collection]]
    item_manager: ClassVar[IManager]
    namespace: ClassVar[str | None] = None
    #: Most requests one operation keeps in flight at once (a default page
    #: of 200 items is fetched in one wave; the storage may bound it lower,
    #: e.g. S3Storage by its connection pool).
    max_concurrency: ClassVar[int] = 200
    #: Seconds a unique reservation protects a write that has not committed yet.
    unique_lease: ClassVar[float] = 30.0
    #: Attempts of a write that keeps losing races to concurrent writers.
    write_attempts: ClassVar[int] = 50
    #: Reads delete the dangling index entries they meet (older than the
    #: unique lease, so in-flight writes are never disturbed).
    read_repair: ClassVar[bool] = False
    #: Longest wait (seconds) between tries after losing a race.
    max_backoff: ClassVar[float] = 0.25
    #: How many (pk -> version, holdings) pairs are remembered to save reads.
    known_items_limit: ClassVar[int] = 10_000

    def __init__(
        self,
        storage: Storage | str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(getattr(type(self), "item_manager", None), IManager):
            raise ConfigurationError(
                f"{type(self).__name__}.item_manager must be an IManager instance"
            )
        self.storage: Storage = (
            open_storage(storage) if storage is None or isinstance(storage, str) else storage
        )
        namespace = self.namespace or type(self.item_manager).__name__
        self.layout = Layout(namespace)
        self.clock = clock
        #: Write ids and back-off jitter; inject a seeded one to replay a run.
        self.rng: random.Random = rng if rng is not None else random.SystemRandom()
        self.collections: dict[str, Collection] = {}
        for name, declared in self._declared_collections.items():
            check_name("collection", name)
            bound = declared.bind(self, name)
            self.collections[name] = bound
            setattr(self, name, bound)
        self._known: OrderedDict[str, tuple[str, Envelope]] = OrderedDict()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the storage."""
        await self.storage.close()

    # -- reading -------------------------------------------------------------

    def _remember(self, pk: str, version: str, envelope: Envelope) -> None:
        self._known[pk] = (version, envelope)
        self._known.move_to_end(pk)
        while len(self._known) > self.known_items_limit:
            self._known.popitem(last=False)

    async def _read(self, pk: str, *, for_write: bool = False) -> Current:
        """Read the stored item.  A corrupt one raises, except for writers,
        which see it as holding nothing (so it can be replaced or removed)."""
        key = self.layout.item_key(pk)
        obj = await self.storage.get(key)
        if obj is None:
            self._known.pop(pk, None)
            return Current(None, None)
        try:
            envelope = decode_envelope(obj.data, key=key)
        except CorruptItemError:
            if not for_write:
                raise
            envelope = Envelope(pk, "", 0.0, b"")
        self._remember(pk, obj.version, envelope)
        return Current(obj, envelope)

    def _deserialize(self, envelope: Envelope, key: str) -> Any:
        try:
            return self.item_manager.deserialize_item(envelope.payload)
        except Exception as exc:
            raise CorruptItemError(f"cannot deserialise item {key!r}: {exc!r}", key=key) from exc

    async def get_item_with_version(self, pk: Any) -> Versioned | None:
        """The item and its version tag, or ``None``: one request."""
        pk = normalize_pk(pk)
        base = await self._read(pk)
        if base.obj is None or base.envelope is None:
            return None
        return Versioned(self._deserialize(base.envelope, base.obj.key), base.obj.version)

    async def get_item(self, pk: Any) -> Any:
        """The item stored under ``pk`` (as ``get_pk`` returns it), or ``None``."""
        found = await self.get_item_with_version(pk)
        return found.item if found is not None else None

    async def get_items_by_pk(self, pks: Iterable[Any]) -> list[Any]:
        """Items for many pks, fetched concurrently; ``None`` where absent."""
        wanted = [normalize_pk(pk) for pk in pks]
        return await gather_all((self.get_item(pk) for pk in wanted), self.max_concurrency)

    async def verified_items(self, collection: str, entries: Sequence[Entry]) -> list[Any]:
        """Items behind listed entries, keeping only entries their item names.

        Each distinct pk is fetched once, all concurrently.
        """
        pks = list(dict.fromkeys(e.pk for e in entries))
        bases = await gather_all((self._read(pk) for pk in pks), self.max_concurrency)
        by_pk = {
            pk: base
            for pk, base in zip(pks, bases, strict=True)
            if base.obj is not None and base.envelope is not None
        }
        items: list[Any] = []
        decoded: dict[str, Any] = {}
        dangling: list[Entry] = []
        for entry in entries:
            found = by_pk.get(entry.pk)
            if (
                found is None
                or found.envelope is None
                or found.obj is None
                or found.envelope.entries.get(collection, {}).get(entry.encoded) != entry.write_id
            ):
                dangling.append(entry)
                continue
            if entry.pk not in decoded:
                decoded[entry.pk] = self._deserialize(found.envelope, found.obj.key)
            items.append(decoded[entry.pk])
        if dangling and self.read_repair:
            await self._repair_on_read(collection, dangling)
        return items

    async def _repair_on_read(self, collection: str, dangling: Sequence[Entry]) -> None:
        """Delete dangling entries older than the unique lease.

        A younger one may belong to a write that has not committed yet, which
        would then miss its entry; so each is read first for its age.
        """
        keys = [self.layout.entry_key(collection, e.encoded, e.pk, e.write_id) for e in dangling]
        objects = await gather_bounded((self.storage.get(k) for k in keys), self.max_concurrency)
        now = self.clock()
        old = [
            key
            for key, obj in zip(keys, objects, strict=True)
            if isinstance(obj, StoredObject)
            and obj.last_modified is not None
            and now - obj.last_modified.timestamp() > self.unique_lease
        ]
        if old:
            try:
                await self.storage.delete_many(old)
            except SSShelfError as exc:
                log.warning("ssshelf: read-repair of %d entries failed: %s", len(old), exc)

    async def item_by_unique(self, collection: str, encoded: str) -> Any:
        """The item holding ``encoded`` in unique ``collection``, or ``None``."""
        key = self.layout.reservation_key(collection, encoded)
        obj = await self.storage.get(key)
        if obj is None:
            return None
        owner = decode_reservation(obj.data, key=key)
        base = await self._read(owner.pk)
        if base.envelope is None or base.obj is None:
            return None
        if encoded not in base.envelope.uniques.get(collection, {}):
            return None
        return self._deserialize(base.envelope, base.obj.key)

    # -- writing -------------------------------------------------------------

    async def add_item(self, item: Any, *, if_version: str | None = None) -> str:
        """Store ``item`` (create or replace) and keep every collection right.

        Returns the new version tag.  With ``if_version`` the write happens
        only if the stored item is still at that version (else
        :class:`ConflictError`; ``None`` as the stored state is never "at a
        version").  Without it, a concurrent writer of the same pk never makes
        this fail: the write is retried on the newer state (last writer wins).
        """
        plan = self._plan(item)
        if if_version is not None or plan.uniques:
            self._require_conditional("add_item with if_version or unique collections")
        return await self._write(plan, expect=if_version, create_only=False)

    async def create_item(self, item: Any) -> str:
        """Store a new item; :class:`AlreadyExistsError` if its pk is taken."""
        plan = self._plan(item)
        self._require_conditional("create_item")
        return await self._write(plan, expect=None, create_only=True)

    async def update_item(self, pk: Any, fn: Callable[[Any], Any], *, retries: int = 10) -> Any:
        """Read the item, apply ``fn`` and write the result if nobody wrote meanwhile.

        ``fn(item)`` returns the new item (or ``None`` after changing it in
        place); it may be a coroutine function.  On a conflict the item is
        read again and ``fn`` applied again, up to ``retries`` more times, then
        :class:`ConflictError`.  A missing item raises ``KeyError``.  Returns
        the item as written.
        """
        pk = normalize_pk(pk)
        self._require_conditional("update_item")
        attempt = WriteAttempt(new_write_id(self.rng))
        try:
            for tries in range(retries + 1):
                base = await self._read(pk)
                if base.obj is None or base.envelope is None:
                    raise KeyError(f"no item with pk {pk!r}")
                current = self._deserialize(base.envelope, base.obj.key)
                result = fn(current)
                if inspect.isawaitable(result):
                    result = await result
                new_item = current if result is None else result
                plan = self._plan(new_item)
                if plan.pk != pk:
                    raise InvalidKeyError(
                        f"update_item's fn changed the pk from {pk!r} to {plan.pk!r}"
                    )
                if await self._attempt(plan, base, attempt, expect=base.version, create_only=False):
                    return new_item
                attempt = await self._abandon(attempt, pk)
                await self._back_off(tries)
            raise ConflictError(
                f"update_item({pk!r}) lost to concurrent writers {retries + 1} times", pk=pk
            )
        except BaseException:
            await self._cleanup(attempt, pk)
            raise

    async def remove_item(self, item_or_pk: Any, *, if_version: str | None = None) -> bool:
        """Remove an item and its entries.  Returns False if it was not there.

        Two dependent round trips when this manager knows the item's version
        (it read or wrote it), three otherwise.  With ``if_version`` it
        removes only that version (else :class:`ConflictError`).
        """
        if isinstance(item_or_pk, str | int) and not isinstance(item_or_pk, bool):
            pk = normalize_pk(item_or_pk)
        else:
            pk = self._plan(item_or_pk).pk
        if if_version is not None:
            self._require_conditional("remove_item with if_version")
        key = self.layout.item_key(pk)
        for _ in range(self.write_attempts):
            known = self._known.get(pk)
            if known is not None and (if_version is None or known[0] == if_version):
                base = Current(StoredObject(key, b"", known[0]), known[1])
            else:
                base = await self._read(pk, for_write=True)
            if base.obj is None or base.envelope is None:
                if if_version is not None:
                    raise ConflictError(f"item {pk!r} does not exist", pk=pk)
                return False
            if if_version is not None and base.obj.version != if_version:
                raise ConflictError(
                    f"item {pk!r} is at version {base.obj.version!r}, not {if_version!r}", pk=pk
                )
            try:
                if self.storage.supports_conditional_delete:
                    await self.storage.delete(key, if_version=base.obj.version)
                else:
                    await self.storage.delete(key)
            except PreconditionFailed:
                self._known.pop(pk, None)
                continue
            self._known.pop(pk, None)
            await self._release(pk, base.envelope, None)
            return True
        raise ConflictError(f"removing item {pk!r} lost to concurrent writers", pk=pk)

    async def reindex_item(self, pk: str, collection: str) -> bool:
        """Bring one item's entries in ``collection`` in line with ``key(item)``.

        Returns True if the item was rewritten, False if it was already right
        or is gone.  Other collections are kept as stored.
        """
        base = await self._read(pk)
        if base.obj is None or base.envelope is None:
            return False
        item = self._deserialize(base.envelope, base.obj.key)
        plan = self._plan(item, keep=base.envelope, only=collection)
        same_entries = set(plan.entries.get(collection, [])) == set(
            base.envelope.entries.get(collection, {})
        )
        same_uniques = set(plan.uniques.get(collection, [])) == set(
            base.envelope.uniques.get(collection, {})
        )
        if same_entries and same_uniques:
            return False
        attempt = WriteAttempt(new_write_id(self.rng))
        try:
            if await self._attempt(plan, base, attempt, expect=base.version, create_only=False):
                return True
        except BaseException:
            await self._cleanup(attempt, pk)
            raise
        await self._cleanup(attempt, pk)
        raise ConflictError(f"item {pk!r} changed while it was reindexed; run again", pk=pk)

    # -- maintenance ---------------------------------------------------------

    async def check(self, *, progress: ProgressCallback | None = None) -> CheckReport:
        """Find dangling/missing entries, stale/missing reservations and
        unreadable items (see :mod:`ssshelf.repair`).  Changes nothing."""
        return await repair_module.check(self, progress=progress)

    async def repair(
        self, *, grace: float | None = None, progress: ProgressCallback | None = None
    ) -> RepairReport:
        """Fix what :meth:`check` finds; objects younger than ``grace`` seconds
        (default: the unique lease) are left for in-flight writes."""
        return await repair_module.repair(self, grace=grace, progress=progress)

    async def reindex(
        self, collection: str, *, progress: ProgressCallback | None = None
    ) -> ReindexReport:
        """Rebuild one collection from the stored items."""
        return await repair_module.reindex(self, collection, progress=progress)

    # -- bulk ----------------------------------------------------------------

    async def add_items(
        self, items: Iterable[Any], *, progress: ProgressCallback | None = None
    ) -> int:
        """Store many items, pipelined with bounded concurrency, in bounded memory.

        Each item is written as by :meth:`add_item`, but tried first as a
        create (no read of the current item): new items cost one round trip
        less, existing ones one more.

        Every item is validated as it is reached; the first failure stops the
        load after the writes already started finish, and is raised.  Returns
        how many items were written.  ``progress(n)`` is called with the
        running count.
        """
        return await self._bulk(items, self._add_probably_new, progress)

    async def _add_probably_new(self, item: Any) -> str:
        """``add_item`` tried first as a create: bulk loads are mostly new items,
        and a create skips the read (an existing item costs one more round trip)."""
        plan = self._plan(item)
        if plan.uniques:
            self._require_conditional("unique collections")
        assume_new = self.storage.supports_conditional_put
        return await self._write(plan, expect=None, create_only=False, assume_new=assume_new)

    async def remove_items(
        self, items_or_pks: Iterable[Any], *, progress: ProgressCallback | None = None
    ) -> int:
        """Remove many items (as :meth:`remove_item`); returns how many existed."""
        removed = 0

        async def one(x: Any) -> None:
            nonlocal removed
            existed = await self.remove_item(x)
            removed += existed

        await self._bulk(items_or_pks, one, progress)
        return removed

    async def _bulk(
        self,
        items: Iterable[Any],
        op: Callable[[Any], Awaitable[Any]],
        progress: ProgressCallback | None,
    ) -> int:
        window = max(1, self.max_concurrency // 4)
        done = 0
        pending: set[asyncio.Task[Any]] = set()
        failure: BaseException | None = None
        iterator = iter(items)
        while True:
            while failure is None and len(pending) < window:
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                pending.add(asyncio.ensure_future(op(item)))
            if not pending:
                break
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task.exception() is not None:
                    failure = failure or task.exception()
                else:
                    done += 1
            if progress is not None:
                progress(done)
        if failure is not None:
            raise failure
        return done

    # -- the blocking twin ------------------------------------------------------

    @classmethod
    def sync(
        cls, storage_or_url: Storage | str | None = None, **manager_kwargs: Any
    ) -> SyncManager[Self]:
        """This manager without ``await``, for scripts and WSGI apps: see
        :mod:`ssshelf.blocking`.  Close it (or use it in a ``with`` block)."""
        from .blocking import open_sync

        return open_sync(cls, storage_or_url, **manager_kwargs)
