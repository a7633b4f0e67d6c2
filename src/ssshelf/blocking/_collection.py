"""SyncCollection: a bound collection's blocking twin, and the rule that
turns any async member into a blocking one."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from ..collections import Collection
from . import _protocols as api
from ._loop_thread import LoopThread
from ._pages import iterate

P = ParamSpec("P")
R = TypeVar("R")
C_co = TypeVar("C_co", covariant=True)


def blocking_member(value: object, loop_thread: LoopThread, keep_alive: object) -> Any:
    """The blocking twin of one attribute of an async object, or ``None``.

    A collection becomes a :class:`SyncCollection`, a coroutine function a
    function that runs it on the loop and returns its result, an async
    generator function one that returns a plain iterator.  Anything else has
    no twin.  ``keep_alive`` lives as long as what is returned.
    """
    if isinstance(value, Collection):
        return SyncCollection(value, loop_thread, keep_alive)
    if inspect.iscoroutinefunction(value):
        coroutine_function: Callable[..., Any] = value

        @functools.wraps(coroutine_function)
        def blocking(*args: Any, **kwargs: Any) -> Any:
            return loop_thread.call(coroutine_function, *args, **kwargs)

        return blocking
    if inspect.isasyncgenfunction(value):
        generator_function: Callable[..., Any] = value

        @functools.wraps(generator_function)
        def blocking_iterator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            opened = functools.partial(generator_function, *args, **kwargs)
            return iterate(loop_thread, opened, keep_alive)

        return blocking_iterator
    return None


def no_twin_message(owner: object, name: str, via: str) -> str:
    """Why ``name`` has no blocking twin, and where to find it instead."""
    kind = type(owner).__name__
    if not hasattr(owner, name):
        return f"{kind} has no attribute {name!r}"
    return (
        f"{kind}.{name} is neither a collection nor an async method, so it has no "
        f"blocking twin; read it on the async object: {via}.{name}"
    )


class SyncCollection(Generic[C_co]):
    """The blocking twin of a bound collection (``m.<name>`` of a blocking
    manager): ``get_items``, ``get_keys``, ``list_entries``, ``get_item``,
    ``count`` and ``count_entries`` return what their async originals return; ``iter_items`` and
    ``iter_keys`` return plain iterators that fetch one page at a time.

    Every parameter and return type is the async method's own.  Async
    methods a subclass adds are reachable the same way at run time; for a
    type checker, call them through the manager's ``call``/``iterate``.
    """

    def __init__(self, collection: C_co, loop_thread: LoopThread, keep_alive: object) -> None:
        self._collection = collection
        self._loop_thread = loop_thread
        self._keep_alive = keep_alive

    @property
    def collection(self) -> C_co:
        """The async collection: use it only from code running on the
        blocking manager's loop (see ``SyncManager.call``)."""
        return self._collection

    def __repr__(self) -> str:
        return f"<SyncCollection {getattr(self._collection, 'name', None)!r}>"

    def list_entries(
        self: SyncCollection[api.ListEntries[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.collection.list_entries, *args, **kwargs)

    def get_keys(self: SyncCollection[api.GetKeys[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.collection.get_keys, *args, **kwargs)

    def get_items(self: SyncCollection[api.GetItems[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.collection.get_items, *args, **kwargs)

    def get_item(self: SyncCollection[api.GetItem[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.collection.get_item, *args, **kwargs)

    def count(self: SyncCollection[api.Count[P, R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.call(self.collection.count, *args, **kwargs)

    def count_entries(
        self: SyncCollection[api.CountEntries[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return self._loop_thread.call(self.collection.count_entries, *args, **kwargs)

    def iter_items(
        self: SyncCollection[api.IterItems[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[R]:
        opened = functools.partial(self.collection.iter_items, *args, **kwargs)
        return iterate(self._loop_thread, opened, self._keep_alive)

    def iter_keys(
        self: SyncCollection[api.IterKeys[P, R]], *args: P.args, **kwargs: P.kwargs
    ) -> Iterator[R]:
        opened = functools.partial(self.collection.iter_keys, *args, **kwargs)
        return iterate(self._loop_thread, opened, self._keep_alive)

    if not TYPE_CHECKING:  # at run time only: type checkers see the methods above

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):
                raise AttributeError(name)
            value = getattr(self._collection, name, None)
            member = blocking_member(value, self._loop_thread, self._keep_alive)
            if member is None:
                via = f"m.{getattr(self._collection, 'name', '<collection>')}.collection"
                raise AttributeError(no_twin_message(self._collection, name, via))
            return member
