"""What the simulated actors store and ask for: pluggable.

A :class:`Workload` names the manager class under test and says how to make
its items, how to stamp an item with the operation that writes it (so the
checks can tell from a stored payload which write produced it), and what
readers ask for.  :class:`DefaultWorkload` is a small manager with one of each
kind of collection (multi-valued, ordered single-key, unique) over a key
space small enough for actors to collide.  To simulate your own manager,
subclass :class:`Workload` (see ``docs/simulation.md``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...collections import Collection
from ...items import IManager
from ...keys import KeyTuple, normalize_key
from ...managers import CManager


def collection_keys(manager: CManager, name: str, item: Any) -> list[KeyTuple]:
    """The key tuples ``item`` has in ``manager``'s collection ``name``."""
    return normalize_key(manager.collections[name].key(item), collection=name)


@dataclass(frozen=True, slots=True)
class Range:
    """A part of a collection a reader asks for: the ``prefix_parts``, ``start``
    (inclusive) and ``end`` (exclusive) arguments of ``get_items``/``iter_items``."""

    prefix: tuple[Any, ...] | None = None
    start: tuple[Any, ...] | None = None
    end: tuple[Any, ...] | None = None

    def contains(self, key: KeyTuple) -> bool:
        """Whether an item listed under ``key`` belongs in this range."""
        if self.prefix is not None and key[: len(self.prefix)] != self.prefix:
            return False
        if self.start is not None and key < self.start:
            return False
        return not (self.end is not None and key >= self.end)

    def arguments(self) -> dict[str, Any]:
        return {
            "prefix_parts": list(self.prefix) if self.prefix is not None else None,
            "start": self.start,
            "end": self.end,
        }

    def describe(self) -> str:
        parts = [
            f"{name}={value!r}"
            for name, value in (("prefix", self.prefix), ("start", self.start), ("end", self.end))
            if value is not None
        ]
        return " ".join(parts) or "all"


class Workload:
    """The manager under test and the data the actors use.  Override the
    methods marked "override"; the defaults of the others suit dict items."""

    #: The CManager subclass under test (each actor gets its own instance).
    manager: type[CManager]
    #: Primary keys writers choose from: few, so that writers collide.
    pks: Sequence[str] = ()
    #: Pks of counter items: created at set-up, then written only by
    #: ``update_item`` appending a nonce (empty: no counter checks).
    counter_pks: Sequence[str] = ()
    #: More pks for bulk loads and bursts larger than ``pks`` (``add_many``,
    #: ``burst``): each such write takes its items from ``pks`` and these.
    bulk_pks: Sequence[str] = ()

    def new_item(self, rng: random.Random, pk: str, op_id: str, *, uniques: bool) -> Any:
        """Override: a random item for ``pk``, stamped with ``op_id``.  With
        ``uniques`` False it must hold no value of a unique collection (the
        store has no conditional writes)."""
        raise NotImplementedError

    def new_bulk_item(self, rng: random.Random, pk: str, op_id: str, *, uniques: bool) -> Any:
        """An item of a bulk load or burst (default: :meth:`new_item`).  Mostly
        distinct unique values make large loads that mostly succeed."""
        return self.new_item(rng, pk, op_id, uniques=uniques)

    def stamp(self, item: Any, op_id: str) -> Any:
        """A copy of ``item`` with the same keys, stamped with ``op_id``."""
        return {**item, "op": op_id}

    def op_id(self, item: Any) -> str | None:
        """The op id ``item`` was stamped with."""
        value = item.get("op") if isinstance(item, dict) else getattr(item, "op", None)
        return value if isinstance(value, str) else None

    def new_counter(self, pk: str, op_id: str) -> Any:
        """Override when ``counter_pks`` is set: the counter item as created."""
        raise NotImplementedError

    def add_nonce(self, item: Any, nonce: str) -> Any:
        """A copy of the counter ``item`` with ``nonce`` appended to its list."""
        return {**item, "nonces": [*item.get("nonces", []), nonce]}

    def nonces(self, item: Any) -> Sequence[str]:
        """The nonces a counter item holds, in order."""
        return list(item.get("nonces", []))

    def ranges(self, collection: str) -> Sequence[Range]:
        """What readers ask for in ``collection`` (default: all of it)."""
        return (Range(),)

    def unique_values(self, collection: str) -> Sequence[Any]:
        """Values readers look up in unique ``collection``."""
        return ()


# -- the default workload -------------------------------------------------------

TAGS = ("red", "blue", "green")
RANKS = (0, 1, 2)
NAMES = ("ann", "bob", "cy")


class TagIndex(Collection):
    """Multi-valued: one entry per tag."""

    def key(self, item: Any) -> Any:
        return [(tag,) for tag in item["tags"]]


class RankIndex(Collection):
    """Ordered, one key per item."""

    def key(self, item: Any) -> Any:
        return (item["rank"],)


class NameIndex(Collection):
    """Unique: at most one item per name; items without a name are not in it."""

    unique = True

    def key(self, item: Any) -> Any:
        return item["name"]


class SimManager(CManager):
    """The default workload's manager: dict items as JSON, three collections."""

    namespace = "sim"
    item_manager = IManager()
    by_tag = TagIndex()
    by_rank = RankIndex()
    by_name = NameIndex()


class DefaultWorkload(Workload):
    """4 items and 2 counters; 3 tags, 3 ranks, 3 names; 48 more pks for bulk
    loads and bursts, whose items mostly have a name of their own."""

    manager = SimManager
    pks = ("p0", "p1", "p2", "p3")
    counter_pks = ("c0", "c1")
    bulk_pks = tuple(f"b{i:02d}" for i in range(48))

    def new_item(self, rng: random.Random, pk: str, op_id: str, *, uniques: bool) -> Any:
        tags = sorted(t for t in TAGS if rng.random() < 0.4)
        name = rng.choice((*NAMES, None)) if uniques else None
        return {"pk": pk, "tags": tags, "rank": rng.choice(RANKS), "name": name, "op": op_id}

    def new_bulk_item(self, rng: random.Random, pk: str, op_id: str, *, uniques: bool) -> Any:
        item = self.new_item(rng, pk, op_id, uniques=uniques)
        if uniques and rng.random() < 0.8:
            item["name"] = f"n-{pk}"
        return item

    def new_counter(self, pk: str, op_id: str) -> Any:
        return {"pk": pk, "tags": [], "rank": 9, "name": None, "op": op_id, "nonces": []}

    def ranges(self, collection: str) -> Sequence[Range]:
        if collection == "by_tag":
            return (Range(), Range(prefix=("red",)), Range(prefix=("green",)))
        if collection == "by_rank":
            return (Range(), Range(start=(1,), end=(2,)), Range(start=(1,)))
        return (Range(), Range(start=("b",)))

    def unique_values(self, collection: str) -> Sequence[Any]:
        return NAMES if collection == "by_name" else ()
