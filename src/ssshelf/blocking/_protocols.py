"""How a type checker derives each blocking method from its async original.

One protocol per method name: "has an attribute ``add_item`` that is an
async callable taking ``P`` and giving ``R``".  A blocking method declared
as ``def add_item(self: SyncManager[AddItem[P, R]], *args: P.args,
**kwargs: P.kwargs) -> R`` then takes exactly the parameters of the
manager's own ``add_item`` and returns what it awaits to: the signatures
follow the async API (a subclass's overrides, a generic item type) with
nothing copied by hand.  Only the names are listed, and
``tests/test_blocking.py`` fails when the async API gains one that is
missing here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R_co = TypeVar("R_co", covariant=True)

# -- CManager ----------------------------------------------------------------


class AddItem(Protocol[P, R_co]):
    @property
    def add_item(self) -> Callable[P, Awaitable[R_co]]: ...


class CreateItem(Protocol[P, R_co]):
    @property
    def create_item(self) -> Callable[P, Awaitable[R_co]]: ...


class GetItem(Protocol[P, R_co]):
    """Also a unique collection's ``get_item``."""

    @property
    def get_item(self) -> Callable[P, Awaitable[R_co]]: ...


class GetItemWithVersion(Protocol[P, R_co]):
    @property
    def get_item_with_version(self) -> Callable[P, Awaitable[R_co]]: ...


class GetItemsByPk(Protocol[P, R_co]):
    @property
    def get_items_by_pk(self) -> Callable[P, Awaitable[R_co]]: ...


class UpdateItem(Protocol[P, R_co]):
    @property
    def update_item(self) -> Callable[P, Awaitable[R_co]]: ...


class RemoveItem(Protocol[P, R_co]):
    @property
    def remove_item(self) -> Callable[P, Awaitable[R_co]]: ...


class AddItems(Protocol[P, R_co]):
    @property
    def add_items(self) -> Callable[P, Awaitable[R_co]]: ...


class RemoveItems(Protocol[P, R_co]):
    @property
    def remove_items(self) -> Callable[P, Awaitable[R_co]]: ...


class ReindexItem(Protocol[P, R_co]):
    @property
    def reindex_item(self) -> Callable[P, Awaitable[R_co]]: ...


class Check(Protocol[P, R_co]):
    @property
    def check(self) -> Callable[P, Awaitable[R_co]]: ...


class Repair(Protocol[P, R_co]):
    @property
    def repair(self) -> Callable[P, Awaitable[R_co]]: ...


class Reindex(Protocol[P, R_co]):
    @property
    def reindex(self) -> Callable[P, Awaitable[R_co]]: ...


class UpdateItemWithVersion(Protocol[P, R_co]):
    @property
    def update_item_with_version(self) -> Callable[P, Awaitable[R_co]]: ...


class VerifiedPage(Protocol[P, R_co]):
    @property
    def verified_page(self) -> Callable[P, Awaitable[R_co]]: ...


class VerifiedItems(Protocol[P, R_co]):
    @property
    def verified_items(self) -> Callable[P, Awaitable[R_co]]: ...


class ItemByUnique(Protocol[P, R_co]):
    @property
    def item_by_unique(self) -> Callable[P, Awaitable[R_co]]: ...


class CountVerified(Protocol[P, R_co]):
    @property
    def count_verified(self) -> Callable[P, Awaitable[R_co]]: ...


# -- Collection ----------------------------------------------------------------


class ListEntries(Protocol[P, R_co]):
    @property
    def list_entries(self) -> Callable[P, Awaitable[R_co]]: ...


class GetKeys(Protocol[P, R_co]):
    @property
    def get_keys(self) -> Callable[P, Awaitable[R_co]]: ...


class GetItems(Protocol[P, R_co]):
    @property
    def get_items(self) -> Callable[P, Awaitable[R_co]]: ...


class IterItems(Protocol[P, R_co]):
    @property
    def iter_items(self) -> Callable[P, AsyncIterator[R_co]]: ...


class IterKeys(Protocol[P, R_co]):
    @property
    def iter_keys(self) -> Callable[P, AsyncIterator[R_co]]: ...


class Count(Protocol[P, R_co]):
    @property
    def count(self) -> Callable[P, Awaitable[R_co]]: ...


class CountEntries(Protocol[P, R_co]):
    @property
    def count_entries(self) -> Callable[P, Awaitable[R_co]]: ...
