"""I2 by the public read API: expectations checked on snapshots of the store.

When an expectation becomes due (a write acknowledged, a pk gone quiet, a
repair done) the store is copied (a dict copy: cheap) and the expectation
recorded.  At the end of the run each is checked through a clean manager (no
memory, no faults) over its snapshot: ``get_item``, each collection's page at
each of the item's keys, and its unique look-ups must return the item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...managers import CManager
from ...storages.base import MAX_LIST_LIMIT, ListPage, StoredObject
from .store import DirectStorage, ObjectTable, Record
from .workload import collection_keys

if TYPE_CHECKING:
    from .checks import Checker


@dataclass(frozen=True, slots=True)
class _Expectation:
    at: float
    reason: str
    pk: str
    #: op id the stored item must carry; "" = anything (only visible); None = absent.
    stamp: str | None
    snapshot: int


class _Log:
    """Every answer a check was given: what it depends on."""

    def __init__(self) -> None:
        self.gets: dict[str, Record | None] = {}
        self.lists: dict[tuple[str, str | None, int], ListPage] = {}

    def merge(self, other: _Log) -> None:
        self.gets.update(other.gets)
        self.lists.update(other.lists)

    def same_answers(self, table: ObjectTable) -> bool:
        """Whether ``table`` answers every recorded read as before."""
        objects = table.objects
        if any(objects.get(key) is not record for key, record in self.gets.items()):
            return False
        return all(
            table.list(prefix, after, limit) == page
            for (prefix, after, limit), page in self.lists.items()
        )


class _Reads:
    """A storage over a snapshot that writes every answer it gives into ``log``."""

    def __init__(self, inner: DirectStorage) -> None:
        self.inner = inner
        self.log = _Log()
        self.max_key_length = inner.max_key_length
        self.supports_conditional_put = inner.supports_conditional_put
        self.supports_conditional_delete = inner.supports_conditional_delete

    async def get(self, key: str) -> StoredObject | None:
        found = await self.inner.get(key)
        self.log.gets[key] = self.inner.record(key)
        return found

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        page = await self.inner.list(prefix, after=after, limit=limit)
        self.log.lists[(prefix, after, limit)] = page
        return page

    async def put(
        self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        raise AssertionError("checks only read")

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        raise AssertionError("checks only read")

    async def delete_many(self, keys: Sequence[str]) -> None:
        raise AssertionError("checks only read")

    async def close(self) -> None:
        """Nothing to release."""


class _Snapshot:
    """A clean manager over one snapshot, and the answers of the reads many
    pks share (a collection's page at a key, a unique look-up), each with the
    log of what it read."""

    def __init__(self, reads: _Reads, manager: CManager) -> None:
        self.reads = reads
        self.manager = manager
        self.shared: dict[tuple[str, str, str], tuple[Any, _Log]] = {}

    async def read(self, kind: str, name: str, key: Any, into: _Log) -> Any:
        """``get_items`` (kind "page") or ``get_item`` (kind "unique") of
        collection ``name`` at ``key``, read once per snapshot; its log goes
        ``into`` the caller's."""
        shared = (kind, name, repr(key))
        found = self.shared.get(shared)
        if found is None:
            own = self.reads.log
            self.reads.log = log = _Log()
            try:
                answer = await self._ask(kind, name, key)
            finally:
                self.reads.log = own
            found = self.shared[shared] = (answer, log)
        into.merge(found[1])
        return found[0]

    async def _ask(self, kind: str, name: str, key: Any) -> Any:
        collection = self.manager.collections[name]
        if kind == "page":
            return (await collection.get_items(1000, prefix_parts=list(key)))["items"]
        return await collection.get_item(key)


@dataclass(slots=True)
class _Checked:
    """One pk checked on one snapshot: what it read, the item, what was wrong."""

    log: _Log
    item: Any
    problems: list[str]
    #: The problems were reported (a later snapshot with the same answers
    #: shows the same state, not a new violation).
    reported: bool = False


class Visibility:
    """The expectations of one run and the snapshots they are judged on."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self._snapshots: list[ObjectTable] = []
        self._snapshot_at_mutation = -1
        self._expectations: list[_Expectation] = []

    def expect(self, at: float, reason: str, pk: str, stamp: str | None) -> None:
        """Record that, now, ``pk`` must be visible; with ``stamp`` "" any item
        will do, with an op id it must be that write's, with None it must be gone."""
        store = self.checker.store
        if self._snapshot_at_mutation != store.mutations:
            self._snapshots.append(store.snapshot())
            self._snapshot_at_mutation = store.mutations
        self._expectations.append(_Expectation(at, reason, pk, stamp, len(self._snapshots) - 1))

    async def check_all(self) -> None:
        """Evaluate every expectation on its snapshot.

        Checking one pk through the public API costs a few dozen requests; a
        pk whose objects did not change since its last check would read the
        same answers, so each check records what it read (``_Reads``) and is
        reused while a new snapshot gives the same answers to those reads.
        """
        last: dict[str, _Checked] = {}
        # An acknowledgement names the write to blame: judge it before "quiet" at the same time.
        ordered = sorted(self._expectations, key=lambda e: (e.at, e.stamp == ""))
        snapshots: dict[int, _Snapshot] = {}
        for expectation in ordered:
            index = expectation.snapshot
            table = self._snapshots[index]
            checked = last.get(expectation.pk)
            if checked is None or not checked.log.same_answers(table):
                snapshot = snapshots.get(index)
                if snapshot is None:
                    for old in [i for i in snapshots if i < index - 1]:
                        del snapshots[old]
                    reads = _Reads(DirectStorage(self.checker.store, table))
                    snapshot = snapshots[index] = _Snapshot(
                        reads, self.checker.clean_manager(reads)
                    )
                checked = last[expectation.pk] = await self._check_pk(snapshot, expectation.pk)
            self._judge(expectation, checked)

    async def _check_pk(self, snapshot: _Snapshot, pk: str) -> _Checked:
        log = snapshot.reads.log = _Log()
        item = await snapshot.manager.get_item(pk)
        problems = await self._invisible(snapshot, pk, item, log) if item is not None else []
        return _Checked(log, item, problems)

    def _judge(self, expectation: _Expectation, checked: _Checked) -> None:
        pk, at, item = expectation.pk, expectation.at, checked.item
        invariant = "I2-ack" if expectation.stamp != "" else "I2-settled"
        if expectation.stamp is None:
            if item is not None:
                self.checker.violation(
                    at, invariant, f"{expectation.reason}: {pk} is still stored: {item}"
                )
            return
        if expectation.stamp:
            stored = self.checker.workload.op_id(item) if item is not None else None
            if stored != expectation.stamp:
                held = "nothing" if item is None else f"the write of {stored}"
                self.checker.violation(at, invariant, f"{expectation.reason}: {pk} holds {held}")
                return
        if checked.reported:
            return
        checked.reported = bool(checked.problems)
        for problem in checked.problems:
            self.checker.violation(at, invariant, f"{expectation.reason}: {pk} {problem}")

    async def _invisible(self, snapshot: _Snapshot, pk: str, item: Any, log: _Log) -> list[str]:
        problems: list[str] = []
        manager = snapshot.manager
        get_pk = manager.item_manager.get_pk
        for name, collection in manager.collections.items():
            for key in collection_keys(manager, name, item):
                page = await snapshot.read("page", name, key, log)
                if not any(get_pk(found) == pk and found == item for found in page):
                    problems.append(f"is missing from {name} at {key!r}")
                if collection.unique:
                    found = await snapshot.read("unique", name, key, log)
                    if found != item:
                        problems.append(f"is not what {name}.get_item({key!r}) returns: {found}")
        return problems
