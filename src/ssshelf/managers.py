"""CManager: an item manager plus collections, kept consistent on every write.

A manager is a declaration (an item manager and collections as class
attributes) over three objects it builds and holds: an
:class:`~ssshelf.reading.ItemReader` (reads, verified against each item's
header), a :class:`~ssshelf.writes.Writer` (the write protocol) and the
:class:`~ssshelf.known.KnownVersions` they share.  See ``docs/consistency.md``
for the protocol and what it guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, Self, TypeVar

from . import repair as maintenance
from ._concurrency import gather_bounded
from .collections import Collection
from .errors import (
    BulkWriteError,
    ConfigurationError,
    CorruptItemError,
    InvalidArgument,
    SSShelfError,
    StorageClosed,
)
from .items import IManager
from .items.base import T
from .known import KnownVersions
from .layout import Layout, check_name, normalize_pk
from .planning import Planner, WritePlan
from .reading import Entry, ItemReader, VerifiedPage
from .repair import CheckReport, ReindexReport, RepairReport
from .storages.base import Storage, capabilities_of
from .storages.url import open_storage
from .writes import BatchOutcomeUnknown, WritePolicy, Writer

if TYPE_CHECKING:
    from .blocking import SyncManager

log = logging.getLogger("ssshelf")

#: The default source of write ids and back-off jitter: seeded from the OS,
#: and seeded afresh in a forked child, so that no two processes share ids
#: (a system call per id, as ``SystemRandom`` makes, costs more than the id).
WRITE_ID_RNG = random.Random()
os.register_at_fork(after_in_child=WRITE_ID_RNG.seed)

#: ``progress(n)`` of a bulk or maintenance call: ``n`` items done so far.
ProgressCallback = Callable[[int], None]
#: What one step of a bulk operation takes: an item, or a pk.
_Step = TypeVar("_Step")


class Versioned(NamedTuple, Generic[T]):
    """An item with the version tag of the stored object it was read from."""

    item: T
    version: str


#: Names a collection may not take: they would hide a member of the manager.
_RESERVED = frozenset(
    {"storage", "layout", "collections", "clock", "rng", "reader", "writer", "known", "planner"}
)


class _ManagerMeta(type):
    """Collects Collection class attributes (inherited ones too) in declaration order."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> _ManagerMeta:
        declared: dict[str, Collection[Any]] = {}
        for base in reversed(bases):
            declared.update(getattr(base, "_declared_collections", {}))
        members = {n for b in bases for k in b.__mro__ for n in vars(k)}
        for attr, value in attrs.items():
            if isinstance(value, Collection):
                if attr in _RESERVED or (attr in members and attr not in declared):
                    raise ConfigurationError(
                        f"{name}.{attr}: a collection may not be named {attr!r}, which is a "
                        "member of CManager; choose another name"
                    )
                declared[attr] = value
        attrs["_declared_collections"] = declared
        return super().__new__(mcs, name, bases, attrs)


class CManager(Generic[T], metaclass=_ManagerMeta):
    """Items of one kind plus their collections, over one storage.

    Subclass it, set ``item_manager`` to an :class:`~ssshelf.items.IManager`
    and add :class:`~ssshelf.collections.Collection` instances as class
    attributes.  ``namespace`` (default: the item manager's class name) is the
    key prefix all of this manager's objects live under: set it explicitly so
    that renaming a class never orphans data.

    ``class Bookmarks(CManager[Bookmark])`` tells a type checker what the
    items are: what ``get_item`` and the other reads return, what
    ``add_item`` and the other writes accept, and that ``item_manager`` is an
    ``IManager[Bookmark]``.  Collections declared as ``Collection[Bookmark]``
    give ``Bookmark`` items too.  A subclass without a type parameter (the
    seed's way) is a ``CManager[Any]``.

    ``storage`` is a storage, a storage URL, or ``None`` for the default:
    ``SSSHELF_URL`` if set, else the embedded SQLite file ``ssshelf.db`` in
    the current directory (created on first use).  A storage the manager
    opened itself (from a URL or the default) is closed by :meth:`close`; a
    storage it was given is left open for its owner.
    """

    _declared_collections: ClassVar[dict[str, Collection[Any]]]
    #: Set on the subclass (a class attribute, shared by its instances).
    item_manager: IManager[T]
    namespace: ClassVar[str | None] = None
    #: Most requests one operation keeps in flight at once (a default page
    #: of 200 items is fetched in one wave; the storage may bound it lower,
    #: e.g. S3Storage by its connection pool).
    max_concurrency: ClassVar[int] = 200
    #: Seconds a claim of a write in flight (a unique reservation, a new index
    #: entry) is protected from take-over and repair, by the store's clock.
    #: A write's commit must be answered within half of it.
    unique_lease: ClassVar[float] = 30.0
    #: Tries of a write that keeps losing races to concurrent writers.
    write_attempts: ClassVar[int] = 50
    #: Reads delete the dangling index entries they meet (once older than the
    #: lease by the store's clock, so in-flight writes are never disturbed).
    read_repair: ClassVar[bool] = False
    #: Longest wait (seconds) between tries after losing a race, unless the
    #: tries themselves take longer on this store.
    max_backoff: ClassVar[float] = 0.25
    #: How many items' versions are remembered to save reads.
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
        if not (storage is None or isinstance(storage, str | Storage)):
            raise InvalidArgument(
                f"{type(self).__name__}() takes a storage (SQLiteStorage('app.db'), "
                "S3Storage(...), InMemoryStorage()), a storage URL such as "
                f"'sqlite:///app.db', or None for the default; got {storage!r}"
            )
        self._owns_storage = storage is None or isinstance(storage, str)
        self._closed = False
        self.storage: Storage = self._open(storage)
        self.layout = Layout(self.namespace or type(self.item_manager).__name__)
        #: Wall-clock seconds written into objects for people to read; no
        #: decision depends on it (ages are judged by the store's clock).
        self.clock = clock
        #: Write ids and back-off jitter; inject a seeded one to replay a run.
        self.rng: random.Random = rng if rng is not None else WRITE_ID_RNG
        self.known = KnownVersions(
            self.known_items_limit, enabled=self.storage.supports_conditional_put
        )
        self.collections: dict[str, Collection[T]] = {}
        for name, declared in self._declared_collections.items():
            check_name("collection", name)
            bound = declared.bind(self, name)
            self.collections[name] = bound
            setattr(self, name, bound)
        self.reader: ItemReader[T] = ItemReader(
            self.storage,
            self.layout,
            self.item_manager,
            self.known,
            concurrency=self.max_concurrency,
            read_repair=self.read_repair,
            grace=self.unique_lease,
        )
        self.planner: Planner[T] = Planner(
            self.item_manager, self.collections, self.layout, self.storage.max_key_length
        )
        self.writer = Writer(
            self.storage,
            self.layout,
            self.planner,
            self.reader,
            self.known,
            WritePolicy(
                self.write_attempts, self.unique_lease, self.max_backoff, self.max_concurrency
            ),
            clock=clock,
            rng=self.rng,
        )

    @staticmethod
    def _open(storage: Storage | str | None) -> Storage:
        """The storage a manager runs on: the one given, the one a URL names,
        or — given nothing — the default (:func:`~ssshelf.storages.url.default_url`:
        ``SSSHELF_URL``, else the embedded ``sqlite:///ssshelf.db``)."""
        if storage is not None and not isinstance(storage, str):
            return storage
        return open_storage(storage)

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
        """Close the manager, and its storage if it opened it (from a URL or
        the default).  Idempotent.  Every later call raises
        :class:`~ssshelf.errors.StorageClosed` before making any request."""
        if self._closed:
            return
        self._closed = True
        if self._owns_storage:
            await self.storage.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def ensure_open(self) -> None:
        """Raise :class:`~ssshelf.errors.StorageClosed` if the manager is closed."""
        if self._closed:
            raise StorageClosed(
                f"{type(self).__name__} was closed; open a new manager to go on",
                operation="closed",
            )

    # -- reading -------------------------------------------------------------

    async def get_item_with_version(self, pk: Any) -> Versioned[T] | None:
        """The item and its version tag, or ``None``: one request."""
        self.ensure_open()
        stored = await self.reader.read_live(normalize_pk(pk))
        if stored is None:
            return None
        return Versioned(self.reader.deserialize(stored), stored.version)

    async def get_item(self, pk: Any) -> T | None:
        """The item stored under ``pk`` (as ``get_pk`` returns it), or ``None``."""
        found = await self.get_item_with_version(pk)
        return found.item if found is not None else None

    async def get_items_by_pk(self, pks: Iterable[Any]) -> list[T | None]:
        """Items for many pks, in order, ``None`` where absent: read in as few
        requests as the storage allows (one a thousand pks on memory and
        SQLite, concurrent GETs on S3).  A corrupt item raises
        :class:`~ssshelf.errors.CorruptItemError`."""
        self.ensure_open()
        found = await self.reader.read_many([normalize_pk(pk) for pk in pks])
        items: list[T | None] = []
        for stored in found:
            if isinstance(stored, CorruptItemError):
                raise stored
            live = stored if stored is not None and stored.live else None
            items.append(self.reader.deserialize(live) if live is not None else None)
        return items

    async def verified_page(self, collection: str, entries: Sequence[Entry]) -> VerifiedPage[T]:
        """Items behind listed entries, keeping only entries their item names."""
        self.ensure_open()
        return await self.reader.verified(collection, entries)

    async def verified_items(self, collection: str, entries: Sequence[Entry]) -> list[T]:
        """As :meth:`verified_page`, the items only."""
        return (await self.verified_page(collection, entries)).items

    async def count_verified(self, collection: str, entries: Sequence[Entry]) -> int:
        """How many of listed ``entries`` their item names (what a collection counts)."""
        self.ensure_open()
        return await self.reader.count_verified(collection, entries)

    async def item_by_unique(self, collection: str, encoded: str) -> T | None:
        """The item holding ``encoded`` in unique ``collection``, or ``None``."""
        self.ensure_open()
        stored = await self.reader.by_unique(collection, encoded)
        return self.reader.deserialize(stored) if stored is not None else None

    # -- writing -------------------------------------------------------------

    async def add_item(self, item: T, *, if_version: str | None = None) -> str:
        """Store ``item`` (create or replace) and keep every collection right.

        Returns the new version tag.  With ``if_version`` the write happens
        only if the stored item is still at that version (else
        :class:`~ssshelf.errors.ConflictError`).  Without it, a concurrent
        writer of the same pk never makes this fail: the write is retried on
        the newer state (last writer wins).  When the answer to the commit is
        lost and cannot be recovered, :class:`~ssshelf.errors.OutcomeUnknown`
        says the write may or may not have taken effect.
        """
        self.ensure_open()
        _check_version("add_item", if_version)
        return await self.writer.put(self.planner.plan(item), expect=if_version)

    async def create_item(self, item: T) -> str:
        """Store a new item; :class:`~ssshelf.errors.AlreadyExistsError` if its pk is taken."""
        self.ensure_open()
        return await self.writer.put(self.planner.plan(item), create_only=True)

    async def update_item(
        self,
        pk: Any,
        fn: Callable[[T], T | Awaitable[T | None] | None],
        *,
        retries: int | None = None,
    ) -> T:
        """Read the item, apply ``fn`` and write the result if nobody wrote meanwhile.

        ``fn(item)`` returns the new item (or ``None`` after changing it in
        place); it may be a coroutine function.  On a lost race the item is
        read again and ``fn`` applied again (``retries`` more times, default
        ``write_attempts - 1``), then :class:`~ssshelf.errors.ConflictError`.
        ``fn``'s result is never written twice.  A missing item raises
        :class:`~ssshelf.errors.ItemNotFound` (also a ``KeyError``).  Returns
        the item as written.
        """
        return (await self.update_item_with_version(pk, fn, retries=retries)).item

    async def update_item_with_version(
        self,
        pk: Any,
        fn: Callable[[T], T | Awaitable[T | None] | None],
        *,
        retries: int | None = None,
    ) -> Versioned[T]:
        """As :meth:`update_item`, returning the item as written and its new version."""
        self.ensure_open()
        if not callable(fn):
            raise InvalidArgument(
                f"update_item takes a function of the item as its second argument, got {fn!r}"
            )
        if retries is not None and (
            not isinstance(retries, int) or isinstance(retries, bool) or retries < 0
        ):
            raise InvalidArgument(f"update_item's retries must be an int >= 0, got {retries!r}")
        attempts = (self.write_attempts if retries is None else retries + 1) or 1
        item, version = await self.writer.update(normalize_pk(pk), fn, attempts=attempts)
        return Versioned(item, version)

    async def remove_item(self, item_or_pk: Any, *, if_version: str | None = None) -> bool:
        """Remove an item and its entries.  Returns False if it was not there.

        Two dependent round trips when this manager knows the item's version
        (it read or wrote it), three otherwise.  With ``if_version`` it
        removes only that version (else :class:`~ssshelf.errors.ConflictError`).
        """
        self.ensure_open()
        _check_version("remove_item", if_version)
        return await self.writer.remove(self._pk_to_remove(item_or_pk), expect=if_version)

    def _pk_to_remove(self, item_or_pk: Any) -> str:
        if isinstance(item_or_pk, str | int) and not isinstance(item_or_pk, bool):
            return normalize_pk(item_or_pk)
        return self.planner.pk_of(item_or_pk)

    async def reindex_item(self, pk: str, collection: str) -> bool:
        """Bring one item's entries in ``collection`` in line with ``key(item)``.

        Returns True if the item was rewritten, False if it was already right
        or is gone.  Other collections are kept as stored.
        """
        self.ensure_open()
        if collection not in self.collections:
            raise InvalidArgument(
                f"{type(self).__name__} has no collection {collection!r}; "
                f"it has {sorted(self.collections)}"
            )
        return bool(await self.writer.reindex(normalize_pk(pk), collection))

    # -- maintenance ---------------------------------------------------------

    async def check(
        self, *, grace: float | None = None, progress: ProgressCallback | None = None
    ) -> CheckReport:
        """Find dangling/missing entries, stale/missing reservations and
        unreadable items (see :mod:`ssshelf.repair`).  Changes nothing.

        Garbage younger than ``grace`` seconds (default: the unique lease, by
        the store's clock) is counted as in flight, not as a problem: it is
        exactly what :meth:`repair` with the same ``grace`` leaves alone."""
        return await maintenance.check(self._maintained(), grace=grace, progress=progress)

    async def repair(
        self, *, grace: float | None = None, progress: ProgressCallback | None = None
    ) -> RepairReport:
        """Fix what :meth:`check` finds; objects younger than ``grace`` seconds
        (default: the unique lease, by the store's clock) are left for writes
        that may still be in flight."""
        return await maintenance.repair(self._maintained(), grace=grace, progress=progress)

    async def reindex(
        self, collection: str, *, progress: ProgressCallback | None = None
    ) -> ReindexReport:
        """Rebuild one collection from the stored items."""
        return await maintenance.reindex(self._maintained(), collection, progress=progress)

    def _maintained(self) -> maintenance.Maintained:
        self.ensure_open()
        return maintenance.Maintained(
            self.storage,
            self.layout,
            self.collections,
            self.reader,
            self.writer,
            lease=self.unique_lease,
            concurrency=self.max_concurrency,
            clock=self.clock,
        )

    # -- bulk ----------------------------------------------------------------

    async def add_items(
        self, items: Iterable[T], *, progress: ProgressCallback | None = None
    ) -> int:
        """Store many items, pipelined with bounded concurrency, in bounded memory.

        Each item is written as by :meth:`add_item`, but tried first as a
        create (no read of the current item): new items cost one round trip
        less, existing ones one more.  Every item is validated as it is
        reached; the first failure stops the load once the writes already
        started have finished, and raises :class:`~ssshelf.errors.BulkWriteError`
        saying how many items were written and which one failed.  Returns how
        many items were written.  ``progress(n)`` gets the running count.
        """
        self.ensure_open()

        batched = capabilities_of(self.storage).put_many is not None
        if batched and self.storage.supports_conditional_put:
            return await self._add_in_batches(items, progress)

        async def stored(write: Awaitable[str]) -> bool:
            await write
            return True

        def start(item: T) -> Awaitable[bool]:
            return stored(self.writer.put(self.planner.plan(item), assume_new=True))

        return await self._bulk("add_items", items, start, progress)

    #: Items a batch of a bulk load holds on a store with ``put_many`` (with
    #: three collections, about a thousand objects a request).
    bulk_batch: ClassVar[int] = 500

    async def _add_in_batches(self, items: Iterable[T], progress: ProgressCallback | None) -> int:
        """``add_items`` on a store that applies many writes a request.

        Batches of items go through :meth:`Writer.create_batch` (each round
        one request per thousand objects), a few batches in flight; what a
        batch cannot create (an item that exists, a taken value) is then
        written one by one.  An item that shares its pk or a unique value with
        an earlier item of its batch is written after the batch, in input
        order, so that it gets the answer it would get one by one."""

        async def store(plans: list[_Planned], again: list[_Planned]) -> bool:
            try:
                leftovers = await self.writer.create_batch([p.plan for p in plans]) if plans else []
            except BatchOutcomeUnknown as unknown:  # blame the first item it is about
                about = [p for p in plans if p.plan.pk in set(unknown.unknown)]
                first = min(about, key=lambda p: p.index)
                raise _ItemFailed(first.index, first.item, unknown, unknown.committed) from unknown
            written = len(plans) - len(leftovers)
            by_plan = {id(p.plan): p for p in plans}
            retried = [by_plan[id(plan)] for plan in leftovers]
            results = await gather_bounded(
                (self.writer.put(p.plan) for p in retried), self.max_concurrency
            )
            failed = [(p, r) for p, r in zip(retried, results, strict=True) if _failed(r)]
            written += len(retried) - len(failed)
            if failed:
                first, error = min(failed, key=lambda f: f[0].index)
                assert isinstance(error, BaseException)
                raise _ItemFailed(first.index, first.item, error, written)
            for planned in again:  # after the batch, one by one, in input order
                try:
                    await self.writer.put(planned.plan)
                except SSShelfError as exc:
                    raise _ItemFailed(planned.index, planned.item, exc, written) from exc
                written += 1
            return True

        def batches() -> Iterator[_Job]:
            numbered = enumerate(items)
            while True:
                plans: list[_Planned] = []
                again: list[_Planned] = []
                seen: set[str] = set()
                values: set[tuple[str, str]] = set()
                first: tuple[int, Any] | None = None
                failed: _Job | None = None
                for index, item in numbered:
                    try:
                        plan = self.planner.plan(item)
                    except SSShelfError as exc:
                        failed = _Job(index, item, 0, None, exc)
                        break
                    first = first or (index, item)
                    claims = plan.values()
                    shares = plan.pk in seen or any(v in values for v in claims)
                    (again if shares else plans).append(_Planned(index, item, plan))
                    seen.add(plan.pk)
                    values.update(claims)
                    if len(plans) + len(again) == self.bulk_batch:
                        break
                if first is not None:
                    yield _Job(*first, len(plans) + len(again), store(plans, again))
                if failed is not None:
                    yield failed
                if failed is not None or first is None or len(plans) + len(again) < self.bulk_batch:
                    return

        return await _windowed("add_items", batches(), 8, progress)

    async def remove_items(
        self, items_or_pks: Iterable[Any], *, progress: ProgressCallback | None = None
    ) -> int:
        """Remove many items (as :meth:`remove_item`); returns how many existed."""
        self.ensure_open()

        def start(item_or_pk: Any) -> Awaitable[bool]:
            return self.writer.remove(self._pk_to_remove(item_or_pk))

        return await self._bulk("remove_items", items_or_pks, start, progress)

    async def _bulk(
        self,
        what: str,
        items: Iterable[Any],
        start: Callable[[Any], Awaitable[bool]],
        progress: ProgressCallback | None,
    ) -> int:
        """Run ``start(item)`` for each item with a bounded window of tasks.
        ``start`` validates synchronously, so a bad item stops the launching at
        once."""

        def jobs() -> Iterator[_Job]:
            for index, item in enumerate(items):
                try:
                    yield _Job(index, item, 1, start(item))
                except SSShelfError as exc:
                    yield _Job(index, item, 0, None, exc)
                    return

        return await _windowed(what, jobs(), max(1, self.max_concurrency // 4), progress)

    # -- the blocking twin ------------------------------------------------------

    @classmethod
    def sync(cls, storage: Storage | str | None = None, **manager_kwargs: Any) -> SyncManager[Self]:
        """This manager without ``await``, for scripts and WSGI apps: see
        :mod:`ssshelf.blocking`.  ``storage`` is what the manager itself takes
        (positionally or as ``storage=``); close the twin (or use it in a
        ``with`` block)."""
        from .blocking import open_sync

        return open_sync(cls, storage, **manager_kwargs)


@dataclass(frozen=True, slots=True)
class _Planned:
    """An item of a bulk load, planned, and where it was in the input."""

    index: int
    item: Any
    plan: WritePlan


class _ItemFailed(Exception):
    """One item of a batch failed: ``written`` items of the batch were stored."""

    def __init__(self, index: int, item: Any, error: BaseException, written: int) -> None:
        super().__init__(index, error)
        self.index = index
        self.item = item
        self.error = error
        self.written = written


def _failed(result: object) -> bool:
    if isinstance(result, BaseException) and not isinstance(result, Exception):
        raise result  # cancelled: not an item's failure
    return isinstance(result, BaseException)


@dataclass(slots=True)
class _Job:
    """One piece of a bulk operation: ``count`` items from input position ``index``."""

    index: int
    item: Any
    count: int
    run: Awaitable[bool] | None
    error: BaseException | None = None


async def _windowed(
    what: str, jobs: Iterator[_Job], window: int, progress: ProgressCallback | None
) -> int:
    """Run ``jobs`` (made lazily) at most ``window`` at a time; the count of the
    jobs that answered True.  The first failure (by input position) stops the
    making of new jobs, waits for the started ones, and is raised as a
    :class:`BulkWriteError`.  Cancelling cancels every job before returning."""
    failure: tuple[int, Any, BaseException] | None = None
    pending: dict[asyncio.Future[bool], _Job] = {}
    done = counted = 0
    try:
        while True:
            while failure is None and len(pending) < window:
                job = next(jobs, None)
                if job is None:
                    break
                if job.run is None:
                    assert job.error is not None
                    failure = (job.index, job.item, job.error)
                    break
                pending[asyncio.ensure_future(job.run)] = job
            if not pending:
                break
            finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                job = pending.pop(task)
                error = task.exception()
                if isinstance(error, _ItemFailed):  # one item of a batch: blame it
                    done += error.written
                    counted += error.written
                    if failure is None or error.index < failure[0]:
                        failure = (error.index, error.item, error.error)
                    continue
                if error is not None:
                    if failure is None or job.index < failure[0]:
                        failure = (job.index, job.item, error)
                    continue
                done += job.count
                counted += job.count if task.result() else 0
            if progress is not None:
                progress(done)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    if failure is not None:
        raise _stopped(what, failure, done)
    return counted


def _check_version(what: str, version: object) -> None:
    """A version tag is a ``str`` that a read or write returned, or ``None``."""
    if version is not None and not isinstance(version, str):
        raise InvalidArgument(
            f"{what}'s if_version must be a version tag (a str, as add_item and "
            f"get_item_with_version return it) or None, got {version!r}"
        )


def _stopped(what: str, failure: tuple[int, Any, BaseException], written: int) -> BulkWriteError:
    index, item, error = failure
    stopped = BulkWriteError(
        f"{what} stopped at item #{index} ({error}); {written} items were written",
        written=written,
        index=index,
        item=item,
        error=error,
    )
    stopped.__cause__ = error
    return stopped


__all__ = ["CManager", "ProgressCallback", "SSShelfError", "Versioned"]
