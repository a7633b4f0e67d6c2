"""SyncManager: a CManager's blocking twin, and how one is opened."""

from __future__ import annotations

import functools
import weakref
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar

from ..collections import Collection
from ..errors import ConfigurationError, InvalidArgument
from ..managers import CManager
from ..storages.base import Storage
from . import _protocols as api
from ._collection import SyncCollection, blocking_member, no_twin_message
from ._loop_thread import LoopThread
from ._pages import GatedStorage, iterate

P = ParamSpec("P")
R = TypeVar("R")
Y = TypeVar("Y")
#: The item type of a manager, read off ``SyncManager[CManager[Item]]``.
Item = TypeVar("Item")
M = TypeVar("M", bound=CManager)
M_co = TypeVar("M_co", covariant=True)

#: Longest wait, at garbage collection or interpreter exit, for a blocking
#: manager nobody closed to close its storage.
ABANDONED_CLOSE_TIMEOUT = 5.0


def open_sync(
    manager_class: type[M], storage_or_url: Storage | str | None = None, /, **manager_kwargs: Any
) -> SyncManager[M]:
    """Start a loop thread and build ``manager_class(storage, **manager_kwargs)`` on it.

    ``storage_or_url`` is what the manager itself takes: a storage, a URL
    (``open_storage``) or ``None`` (``SSSHELF_URL`` or the embedded
    default).  A storage opened here is closed by the twin's ``close()``.
    """
    if not (storage_or_url is None or isinstance(storage_or_url, str | Storage)):
        raise InvalidArgument(
            f"{manager_class.__name__}.sync() takes a storage, a storage URL "
            f"(e.g. 'sqlite:///path/to.db') or None, got {storage_or_url!r}"
        )
    loop_thread = LoopThread(f"ssshelf-blocking:{manager_class.__name__}")
    try:
        manager, owned = loop_thread.call(
            _build_manager, manager_class, storage_or_url, manager_kwargs
        )
    except BaseException:
        loop_thread.close()
        raise
    return SyncManager(manager, loop_thread, functools.partial(_close, manager, owned))


async def _build_manager(
    manager_class: type[M], storage_or_url: Storage | str | None, manager_kwargs: dict[str, Any]
) -> tuple[M, Storage | None]:
    # Built on the loop thread, so whatever binds to a loop binds to this one.
    # The twin owns its storage, given or opened: a caller of blocking code
    # could not await its close() anyway.
    if isinstance(storage_or_url, Storage):
        storage = owned = storage_or_url
    else:
        # The manager's own rule: a URL, else SSSHELF_URL, else the embedded default.
        storage = owned = manager_class._open(storage_or_url)
    try:
        manager = manager_class(GatedStorage(storage), **manager_kwargs)
        _refuse_hidden_collections(manager)
    except BaseException:
        await owned.close()
        raise
    return manager, owned


def _refuse_hidden_collections(manager: CManager) -> None:
    for name in manager.collections:
        if name in _OWN_MEMBERS:
            raise ConfigurationError(
                f"{type(manager).__name__}'s collection {name!r} has the name of a "
                f"SyncManager member, so m.{name} could not reach it; rename the "
                "collection (its name is part of its keys: reindex after renaming)"
            )


class SyncManager(Generic[M_co]):
    """The blocking twin of a :class:`~ssshelf.managers.CManager`.

    Open one with ``MyManager.sync(storage_or_url, **manager_kwargs)``.  It
    has the manager's methods and collections without ``await``: the same
    parameters, results and exceptions, computed by the async manager on one
    event loop that runs on a background thread.  What a caller may rely on:

    * any number of threads may use it at once; it works in a thread that
      runs an event loop of its own (a notebook cell, async code calling
      sync code), blocking that thread for the duration of each call;
    * ``iter_items``/``iter_keys`` return plain iterators, one page in
      memory, making exactly the requests the async loop would make, when it
      would make them;
    * functions the async manager calls back (``update_item``'s function,
      ``progress``, an iterable given to ``add_items``) run on the loop
      thread: keep them short, and do not call blocking methods from them
      (that raises :class:`~ssshelf.errors.ReentrantCallError`); an async
      function given to ``update_item`` may await the async manager;
    * Ctrl-C while waiting cancels the operation, then raises
      ``KeyboardInterrupt``;
    * ``close()`` (or leaving a ``with`` block) lets calls in flight finish,
      closes the manager and the storage opened for it, and stops the
      thread.  A twin never closed is closed when it is garbage or at
      interpreter exit, waiting at most :data:`ABANDONED_CLOSE_TIMEOUT`.

    Type checkers see each method with the async method's own signature and
    result (so a ``CManager[Bookmark]``'s twin gives ``Bookmark``), and any
    other attribute as a collection of the manager's items, a
    ``SyncCollection[Collection[Bookmark]]``; async methods a subclass (or
    a collection class) adds work at run time as ``m.<name>(...)`` too, and
    are typed through :meth:`call` and :meth:`iterate`.
    """

    def __init__(
        self,
        manager: M_co,
        loop_thread: LoopThread,
        close_manager: Callable[[], Awaitable[None]],
    ) -> None:
        """Use ``MyManager.sync(...)`` rather than this.  ``close_manager()``
        runs on the loop when the twin closes."""
        self._manager = manager
        self._loop_thread = loop_thread
        self._close_manager = close_manager
        # Holds no reference to self: a twin nobody closed can still be collected.
        self._finalizer = weakref.finalize(
            self, loop_thread.close_soon, close_manager, ABANDONED_CLOSE_TIMEOUT
        )

    @property
    def manager(self) -> M_co:
        """The async manager.  It runs on this twin's loop: await it only from
        code running there (an async function passed to :meth:`call`)."""
        return self._manager

    @property
    def closed(self) -> bool:
        return self._loop_thread.closed

    @property
    def collections(
        self: SyncManager[CManager[Item]],
    ) -> Mapping[str, SyncCollection[Collection[Item]]]:
        """Every collection's blocking twin, by name."""
        bound: Mapping[str, Collection[Item]] = getattr(self._manager, "collections", {})
        return {name: SyncCollection(c, self._loop_thread, self) for name, c in bound.items()}

    def call(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` on this twin's loop and return its
        result: the typed way to reach an async method a subclass adds
        (``m.call(m.manager.method, ...)``) or to run an async function of
        your own against ``m.manager``.  A plain function runs on the loop
        thread as it is."""
        return self._loop_thread.call(fn, *args, **kwargs)

    def iterate(
        self, fn: Callable[P, AsyncIterable[Y]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[Y]:
        """A plain iterator over the async iterable ``fn(*args, **kwargs)``
        run on this twin's loop, as ``iter_items`` does."""

        def opened() -> AsyncIterable[Y]:
            return fn(*args, **kwargs)

        return iterate(self._loop_thread, opened, self)

    def close(self) -> None:
        """Wait for calls in flight, close the manager (and a storage opened
        for it), stop the loop thread.  Idempotent."""
        self._finalizer.detach()
        self._loop_thread.close(self._close_manager)

    def __enter__(self) -> SyncManager[M_co]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<SyncManager of {type(self._manager).__name__} ({state})>"

    # -- the async API, blocking ------------------------------------------------

    def add_item(self: SyncManager[api.AddItem[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.manager.add_item, *args, **kwargs)

    def create_item(
        self: SyncManager[api.CreateItem[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.create_item, *args, **kwargs)

    def get_item(self: SyncManager[api.GetItem[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.manager.get_item, *args, **kwargs)

    def get_item_with_version(
        self: SyncManager[api.GetItemWithVersion[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.get_item_with_version, *args, **kwargs)

    def get_items_by_pk(
        self: SyncManager[api.GetItemsByPk[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.get_items_by_pk, *args, **kwargs)

    def update_item(
        self: SyncManager[api.UpdateItem[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.update_item, *args, **kwargs)

    def remove_item(
        self: SyncManager[api.RemoveItem[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.remove_item, *args, **kwargs)

    def add_items(self: SyncManager[api.AddItems[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.manager.add_items, *args, **kwargs)

    def remove_items(
        self: SyncManager[api.RemoveItems[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.remove_items, *args, **kwargs)

    def reindex_item(
        self: SyncManager[api.ReindexItem[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.reindex_item, *args, **kwargs)

    def check(self: SyncManager[api.Check[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.manager.check, *args, **kwargs)

    def repair(self: SyncManager[api.Repair[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.manager.repair, *args, **kwargs)

    def reindex(self: SyncManager[api.Reindex[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.manager.reindex, *args, **kwargs)

    def update_item_with_version(
        self: SyncManager[api.UpdateItemWithVersion[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.update_item_with_version, *args, **kwargs)

    def verified_page(
        self: SyncManager[api.VerifiedPage[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.verified_page, *args, **kwargs)

    def verified_items(
        self: SyncManager[api.VerifiedItems[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.verified_items, *args, **kwargs)

    def item_by_unique(
        self: SyncManager[api.ItemByUnique[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.item_by_unique, *args, **kwargs)

    def count_verified(
        self: SyncManager[api.CountVerified[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.manager.count_verified, *args, **kwargs)

    # -- collections, and what a subclass adds ------------------------------------

    def __getattr__(
        self: SyncManager[CManager[Item]], name: str
    ) -> SyncCollection[Collection[Item]]:
        """A collection's blocking twin (typed with the manager's item type,
        which is the type of the items any of its collections reads)."""
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._manager, name, None)
        member = blocking_member(value, self._loop_thread, self)
        if member is None:
            raise AttributeError(no_twin_message(self._manager, name, "m.manager"))
        result: SyncCollection[Collection[Item]] = member
        return result


#: Names a collection cannot have on a blocking manager (they are its own).
_OWN_MEMBERS = frozenset(name for name in vars(SyncManager) if not name.startswith("_"))


async def _close(manager: CManager, owned: Storage | None) -> None:
    try:
        await manager.close()
    finally:
        if owned is not None:  # closing twice is harmless; never closing is not
            await owned.close()
