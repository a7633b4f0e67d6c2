"""The actors: writers, readers and maintenance, each with its own manager.

An actor is one simulated process: its own manager instance (so its own
remembered versions and, when its schedule says so, its own read cache) over
its own client of the store.  It runs a fixed number of operations drawn from
its own seed, with a random pause before each, and records each one in the
history.  A killed actor stops.

Writers choose among :data:`WRITER_OPS` (creates, replaces with moved or the
same keys, conditional replaces with a version they read, ``update_item``,
removes, unique-value changes through all of these, and bulk loads/removes),
readers among :data:`READER_OPS`, maintenance among :data:`MAINTENANCE_OPS`.
The program may peek at the store's ground truth to choose its arguments
(e.g. "replace p1 with the keys it has now"); that costs no request and
changes no manager's memory.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ...errors import ConflictError, InvalidArgument, UnsupportedOperation
from ...managers import CManager
from .history import History, Op, Outcome
from .schedule import ActorSpec
from .scheduler import CURRENT_OP, ActorKilled, ActorState
from .trace import Trace
from .workload import Workload

#: Writer operations and their default weights.
WRITER_OPS: dict[str, float] = {
    "create": 2,
    "add": 3,
    "add_same_keys": 1.5,
    "add_if_version": 1,
    "update": 1,
    "update_counter": 2,
    "remove": 1,
    "remove_if_version": 0.5,
    "add_items": 1,
    "remove_items": 0.5,
}
#: Writer operations only profiles ask for (not in the default mix):
#: ``add_many``, a bulk load of ``ScheduleParams.bulk_items`` items over the
#: workload's ``pks`` and ``bulk_pks``; ``burst``, that many concurrent
#: ``add_item``/``create_item`` calls of distinct pks (``ScheduleParams.burst``).
WIDE_WRITER_OPS = ("add_many", "burst")
#: Writer operations that need conditional writes (UnsupportedOperation otherwise).
NEEDS_CONDITIONAL = frozenset(
    {"create", "add_if_version", "update", "update_counter", "remove_if_version"}
)
READER_OPS: dict[str, float] = {"get": 2, "page": 2, "iterate": 2, "unique": 1}
MAINTENANCE_OPS: dict[str, float] = {"repair": 3, "reindex": 1, "check": 1}
#: Operations that may change what is stored for items they do not write.
MAINTAINS = frozenset({"repair", "reindex"})
#: Listings: with ``read_repair`` they delete the dangling entries they meet.
LISTINGS = frozenset({"get_items", "iter_items"})

Body = Callable[[Op], Awaitable[Any]]


#: Operations on several items: a failure says nothing about each item.
BULK = frozenset({"add_items", "remove_items"})


def classify(kind: str, error: BaseException) -> Outcome:
    """``failed`` when the error means "did not happen", else ``unknown``."""
    if kind in BULK:
        return Outcome.UNKNOWN
    if isinstance(error, ConflictError | KeyError | UnsupportedOperation | InvalidArgument):
        return Outcome.FAILED
    return Outcome.UNKNOWN


def _expect(pk: str, *, present: bool = True, unconditional: bool = False) -> dict[str, Any]:
    """Facts of a write of one pk: stored (or removed) once acknowledged."""
    facts: dict[str, Any] = {"expect": {pk: present}}
    if unconditional:
        facts["unconditional"] = True
    return facts


@dataclass
class Stage:
    """What every actor of a run shares."""

    loop: asyncio.AbstractEventLoop
    history: History
    trace: Trace
    workload: Workload
    #: The store enforces conditional writes.
    conditional: bool
    #: Writer op weights (already filtered for the store).
    writer_ops: dict[str, float]
    #: The pks writers choose from.
    pks: tuple[str, ...]
    #: The pks bulk loads and bursts choose from (``pks`` and the workload's ``bulk_pks``).
    bulk_pool: tuple[str, ...]
    #: Items of a bulk load, concurrent writes of a burst: (at least, at most).
    bulk_items: tuple[int, int]
    burst: tuple[int, int]
    #: The item stored under a pk right now (ground truth), or None.
    truth: Callable[[str], Any]
    #: Called when an operation ends (the checks look at it).
    on_end: Callable[[Op], None]


class Actor:
    """One simulated process running its program."""

    def __init__(self, spec: ActorSpec, stage: Stage, manager: CManager, state: ActorState) -> None:
        self.spec = spec
        self.stage = stage
        self.manager = manager
        self.state = state
        self._count = 0

    @property
    def name(self) -> str:
        return self.spec.name

    async def run(self) -> None:
        """The whole program; returns when done or killed."""
        rng = random.Random(f"{self.spec.seed}/program")
        menu = {
            "writer": self.stage.writer_ops,
            "reader": READER_OPS,
            "maintenance": MAINTENANCE_OPS,
        }[self.spec.role]
        kinds, weights = list(menu), list(menu.values())
        try:
            for _ in range(self.spec.ops):
                await asyncio.sleep(rng.expovariate(1 / self.spec.think))
                kind = rng.choices(kinds, weights)[0]
                await getattr(self, f"_{kind}")(rng)
        except (asyncio.CancelledError, ActorKilled):
            return

    # -- running one operation -------------------------------------------------

    async def _perform(
        self,
        rng: random.Random,
        kind: str,
        args: str,
        pks: tuple[str, ...],
        body: Body,
        facts: dict[str, Any] | None = None,
    ) -> Op:
        stage = self.stage
        timeout = None
        if self.spec.wait_for and rng.random() < self.spec.wait_for:
            timeout = rng.uniform(*self.spec.wait_for_timeout)
            args += f", wait_for={timeout:.6f}"
        op = Op(f"{self.name}.{self._count}", self.name, kind, args, pks, stage.loop.time())
        self._count += 1
        if facts:
            op.facts.update(facts)
        if timeout is not None:
            op.facts["wait_for"] = timeout
        if self.spec.stack.endswith("cached"):
            op.facts["cached"] = True
        if kind in MAINTAINS or (self.spec.read_repair and kind in LISTINGS):
            op.facts["maintains"] = True
        stage.history.begin(op)
        stage.trace.record(op.invoked, self.name, "invoke", op)
        token = CURRENT_OP.set(op)
        try:
            work = body(op)
            result = await (asyncio.wait_for(work, timeout) if timeout is not None else work)
        except BaseException as exc:
            self._ended(op, classify(kind, exc), None, exc)
            if isinstance(exc, asyncio.CancelledError | ActorKilled) or self.state.dead:
                raise
        else:
            self._ended(op, Outcome.OK, result, None)
        finally:
            CURRENT_OP.reset(token)
        return op

    def _ended(self, op: Op, outcome: Outcome, result: Any, error: BaseException | None) -> None:
        if self.state.dead:
            op.facts["killed"] = True
            if outcome is not Outcome.OK:
                outcome = Outcome.UNKNOWN
        stage = self.stage
        now = stage.loop.time()
        stage.history.end(op, now, outcome, result, error)
        stage.trace.record(now, self.name, "end", op)
        stage.on_end(op)

    # -- writers ---------------------------------------------------------------

    def _pk(self, rng: random.Random) -> str:
        return rng.choice(self.stage.pks)

    def _new(self, rng: random.Random, pk: str, op_id: str, *, bulk: bool = False) -> Any:
        wl, uniques = self.stage.workload, self.stage.conditional
        if bulk:
            return wl.new_bulk_item(rng, pk, op_id, uniques=uniques)
        return wl.new_item(rng, pk, op_id, uniques=uniques)

    async def _create(
        self, rng: random.Random, pk: str | None = None, *, bulk: bool = False
    ) -> None:
        pk = self._pk(rng) if pk is None else pk
        seed = rng.getrandbits(32)
        m = self.manager

        async def body(op: Op) -> Any:
            item = self._new(random.Random(seed), pk, op.id, bulk=bulk)
            op.facts["item"] = item
            return await m.create_item(item)

        await self._perform(rng, "create_item", pk, (pk,), body, {"expect": {pk: True}})

    async def _add(self, rng: random.Random, pk: str | None = None, *, bulk: bool = False) -> None:
        pk = self._pk(rng) if pk is None else pk
        seed = rng.getrandbits(32)
        m = self.manager

        async def body(op: Op) -> Any:
            item = self._new(random.Random(seed), pk, op.id, bulk=bulk)
            op.facts["item"] = item
            return await m.add_item(item)

        await self._perform(rng, "add_item", pk, (pk,), body, _expect(pk, unconditional=True))

    async def _add_same_keys(self, rng: random.Random) -> None:
        pk = self._pk(rng)
        current = self.stage.truth(pk)
        if current is None:
            await self._add(rng)
            return
        wl, m = self.stage.workload, self.manager

        async def body(op: Op) -> Any:
            item = wl.stamp(current, op.id)
            op.facts["item"] = item
            return await m.add_item(item)

        facts = _expect(pk, unconditional=True)
        await self._perform(rng, "add_item", f"{pk} same keys", (pk,), body, facts)

    async def _read_version(self, rng: random.Random, pk: str) -> Any:
        m = self.manager

        async def body(op: Op) -> Any:
            return await m.get_item_with_version(pk)

        op = await self._perform(rng, "get_item_with_version", pk, (), body, {"pk": pk})
        return op.result if op.outcome is Outcome.OK else None

    async def _add_if_version(self, rng: random.Random) -> None:
        pk = self._pk(rng)
        found = await self._read_version(rng, pk)
        if found is None:
            return
        wl, m = self.stage.workload, self.manager
        same_keys = rng.random() < 0.5
        seed = rng.getrandbits(32)

        async def body(op: Op) -> Any:
            if same_keys:
                item = wl.stamp(found.item, op.id)
            else:
                item = self._new(random.Random(seed), pk, op.id)
            op.facts["item"] = item
            return await m.add_item(item, if_version=found.version)

        args = f"{pk}, if_version={found.version}"
        facts = {"expect": {pk: True}, "if_version": found.version}
        await self._perform(rng, "add_item", args, (pk,), body, facts)

    async def _update(self, rng: random.Random) -> None:
        pk = self._pk(rng)
        wl, m = self.stage.workload, self.manager
        same_keys = rng.random() < 0.5
        seed = rng.getrandbits(32)

        async def body(op: Op) -> Any:
            def change(current: Any) -> Any:
                if same_keys:
                    return wl.stamp(current, op.id)
                return self._new(random.Random(seed), pk, op.id)

            return await m.update_item(pk, change)

        what = "same keys" if same_keys else "new keys"
        facts = _expect(pk, unconditional=True)
        await self._perform(rng, "update_item", f"{pk} {what}", (pk,), body, facts)

    async def _update_counter(self, rng: random.Random) -> None:
        wl, m = self.stage.workload, self.manager
        if not wl.counter_pks:
            await self._update(rng)
            return
        pk = rng.choice(list(wl.counter_pks))

        async def body(op: Op) -> Any:
            def append(current: Any) -> Any:
                return wl.add_nonce(wl.stamp(current, op.id), op.id)

            return await m.update_item(pk, append)

        facts = {**_expect(pk, unconditional=True), "counter": pk}
        await self._perform(rng, "update_item", f"{pk} append nonce", (pk,), body, facts)

    async def _remove(self, rng: random.Random) -> None:
        pk = self._pk(rng)
        m = self.manager

        async def body(op: Op) -> Any:
            return await m.remove_item(pk)

        facts = _expect(pk, present=False, unconditional=True)
        await self._perform(rng, "remove_item", pk, (pk,), body, facts)

    async def _remove_if_version(self, rng: random.Random) -> None:
        pk = self._pk(rng)
        found = await self._read_version(rng, pk)
        if found is None:
            return
        m = self.manager

        async def body(op: Op) -> Any:
            return await m.remove_item(pk, if_version=found.version)

        args = f"{pk}, if_version={found.version}"
        facts = {"expect": {pk: False}, "if_version": found.version}
        await self._perform(rng, "remove_item", args, (pk,), body, facts)

    def _some_pks(self, rng: random.Random) -> tuple[str, ...]:
        pool = self.stage.pks
        return tuple(sorted(rng.sample(pool, min(len(pool), rng.randint(2, 3)))))

    async def _add_items(self, rng: random.Random) -> None:
        pks = self._some_pks(rng)
        seed = rng.getrandbits(32)
        m = self.manager

        async def body(op: Op) -> Any:
            item_rng = random.Random(seed)
            items = [self._new(item_rng, pk, op.id) for pk in pks]
            op.facts["items"] = items
            return await m.add_items(items)

        facts = {"expect": dict.fromkeys(pks, True), "unconditional": True}
        await self._perform(rng, "add_items", ", ".join(pks), pks, body, facts)

    async def _remove_items(self, rng: random.Random) -> None:
        pks = self._some_pks(rng)
        m = self.manager

        async def body(op: Op) -> Any:
            return await m.remove_items(pks)

        facts = {"expect": dict.fromkeys(pks, False), "unconditional": True}
        await self._perform(rng, "remove_items", ", ".join(pks), pks, body, facts)

    async def _add_many(self, rng: random.Random) -> None:
        """A bulk load larger than one ``put_many`` request may take."""
        pool = self.stage.bulk_pool
        pks = tuple(rng.sample(pool, min(len(pool), rng.randint(*self.stage.bulk_items))))
        seed = rng.getrandbits(32)
        m = self.manager

        async def body(op: Op) -> Any:
            item_rng = random.Random(seed)
            items = [self._new(item_rng, pk, op.id, bulk=True) for pk in pks]
            op.facts["items"] = items
            return await m.add_items(items)

        facts = {"expect": dict.fromkeys(pks, True), "unconditional": True}
        args = f"{len(pks)} items: {', '.join(pks)}"
        await self._perform(rng, "add_items", args, pks, body, facts)

    async def _burst(self, rng: random.Random) -> None:
        """Many single writes at once (``asyncio.gather``), each its own operation."""
        pool = self.stage.bulk_pool
        pks = rng.sample(pool, min(len(pool), rng.randint(*self.stage.burst)))
        calls = []
        for pk in pks:
            call = random.Random(rng.getrandbits(32))
            if self.stage.conditional and call.random() < 0.3:
                calls.append(self._create(call, pk, bulk=True))
            else:
                calls.append(self._add(call, pk, bulk=True))
        for outcome in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome  # the actor was killed or cancelled

    # -- readers ---------------------------------------------------------------

    def _any_pk(self, rng: random.Random) -> str:
        wl = self.stage.workload
        return rng.choice([*wl.pks, *wl.counter_pks])

    async def _get(self, rng: random.Random) -> None:
        pk = self._any_pk(rng)
        m = self.manager

        async def body(op: Op) -> Any:
            return await m.get_item(pk)

        await self._perform(rng, "get_item", pk, (), body, {"pk": pk})

    def _listing(self, rng: random.Random) -> tuple[str, Any]:
        name = rng.choice(list(self.manager.collections))
        return name, rng.choice(list(self.stage.workload.ranges(name)))

    async def _page(self, rng: random.Random) -> None:
        name, part = self._listing(rng)
        size = rng.randint(1, 3)
        collection = self.manager.collections[name]

        async def body(op: Op) -> Any:
            items: list[Any] = op.facts["items"]
            after = None
            while True:
                page = await collection.get_items(size, after, **part.arguments())
                items.extend(page["items"])
                after = page.get("after")
                if after is None:
                    return len(items)

        facts = {"collection": name, "range": part, "items": []}
        args = f"{name} {part.describe()} pages of {size}"
        await self._perform(rng, "get_items", args, (), body, facts)

    async def _iterate(self, rng: random.Random) -> None:
        name, part = self._listing(rng)
        size = rng.randint(1, 4)
        collection = self.manager.collections[name]

        async def body(op: Op) -> Any:
            items: list[Any] = op.facts["items"]
            async for item in collection.iter_items(page_size=size, **part.arguments()):
                items.append(item)
            return len(items)

        facts = {"collection": name, "range": part, "items": []}
        args = f"{name} {part.describe()} page_size={size}"
        await self._perform(rng, "iter_items", args, (), body, facts)

    async def _unique(self, rng: random.Random) -> None:
        wl = self.stage.workload
        names = [n for n, c in self.manager.collections.items() if c.unique and wl.unique_values(n)]
        if not names:
            await self._get(rng)
            return
        name = rng.choice(names)
        value = rng.choice(list(wl.unique_values(name)))
        collection = self.manager.collections[name]

        async def body(op: Op) -> Any:
            return await collection.get_item(value)

        facts = {"collection": name, "value": value}
        await self._perform(rng, "unique_get", f"{name} {value!r}", (), body, facts)

    # -- maintenance -----------------------------------------------------------

    async def _repair(self, rng: random.Random) -> None:
        m = self.manager

        async def body(op: Op) -> Any:
            report = await m.repair()
            return {k: v for k, v in report.to_dict().items() if k != "check" and v}

        await self._perform(rng, "repair", "default grace", (), body)

    async def _reindex(self, rng: random.Random) -> None:
        name = rng.choice(list(self.manager.collections))
        m = self.manager

        async def body(op: Op) -> Any:
            report = await m.reindex(name)
            return {"reindexed": report.reindexed, "failed": report.failed}

        await self._perform(rng, "reindex", name, (), body)

    async def _check(self, rng: random.Random) -> None:
        m = self.manager

        async def body(op: Op) -> Any:
            return (await m.check()).ok

        await self._perform(rng, "check", "", (), body)
