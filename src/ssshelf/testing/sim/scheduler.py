"""The scheduler: every request of every actor, and its fate.

Each actor talks to the store through its own :class:`ScheduledClient` (a
:class:`~ssshelf.storages.base.Storage`), so every request is one call of
:meth:`Scheduler.send`, which knows who sent it (the actor, and through a
context variable the operation).  The scheduler owns the run's random
generator and picks each request's fate (:class:`Fate`): when it lands on the
store and what the caller hears back.

Landing is a timer on the virtual-time loop; the store applies the request
atomically at that instant.  A request whose caller gives up (cancelled,
timed out, killed) still lands at its time, but never later than
``Timing.max_late`` after the give-up.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ...errors import InvalidArgument, OutcomeUnknown, PreconditionFailed, StorageUnavailable
from ...storages.base import (
    MAX_KEY_BYTES,
    MAX_LIST_LIMIT,
    Capabilities,
    ListPage,
    PutRequest,
    StoredObject,
    check_batch,
    check_conditions,
    check_get_batch,
    check_key,
    check_limit,
)
from .clientqueue import RequestQueue
from .history import History, Op
from .schedule import FaultRates, Timing
from .store import Request, SimStore
from .trace import Trace

#: The operation whose code is running (set by the actor; tasks inherit it).
CURRENT_OP: contextvars.ContextVar[Op | None] = contextvars.ContextVar(
    "ssshelf_sim_current_op", default=None
)


class ActorKilled(BaseException):
    """The actor died here, as by SIGKILL.

    A ``BaseException`` (not an ``Exception``) so that no ``except Exception``
    in the library mistakes it for an error to handle; every later request
    of a killed actor raises it again without reaching the store, so clean-up
    code cannot act either.
    """


class Fate(enum.Enum):
    NOW = "now"
    LATER = "later"
    SLOW = "slow"
    LOSE = "lose"
    TIME_OUT = "timeout"
    REFUSE = "refuse"
    KILL = "kill"
    HOLD = "hold"


#: Fates whose answer is an error, whatever the store did.
_LOST = (Fate.LOSE, Fate.TIME_OUT, Fate.REFUSE, Fate.HOLD)
#: Fates that are no fault: the answer comes, in good time.
_ON_TIME = (Fate.NOW, Fate.LATER)


@dataclass(eq=False)
class ActorState:
    """What the scheduler knows of one actor."""

    name: str
    dead: bool = False
    task: asyncio.Task[Any] | None = None
    #: Requests sent and not yet answered.
    waiting: list[Flight] = field(default_factory=list)
    #: Its client's queue, when it bounds the requests in flight.
    queue: RequestQueue | None = None


@dataclass(eq=False)
class Flight:
    """One request on its way."""

    number: int
    actor: ActorState
    op: Op | None
    request: Request
    fate: Fate
    answer: asyncio.Future[Any]
    land_at: float | None
    answer_at: float
    land_handle: asyncio.TimerHandle | None = None
    landed: bool = False
    gave_up: bool = False


class Scheduler:
    """Decides and carries out the fate of every request of a run."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        store: SimStore,
        rng: random.Random,
        faults: FaultRates,
        timing: Timing,
        history: History,
        trace: Trace,
    ) -> None:
        self.loop = loop
        self.store = store
        self.rng = rng
        self.faults = faults
        self.timing = timing
        self.history = history
        self.trace = trace
        self._numbers = itertools.count(1)
        #: Landing flights not landed yet (for quiescing).
        self.in_flight = 0
        #: Conditional writes in flight per key (for 409 ConditionalRequestConflict).
        self._conditional: dict[str, int] = {}
        self.requests = 0

    def client(self, actor: ActorState, slots: int | None = None) -> ScheduledClient:
        """A storage for ``actor``: every request it makes goes through here
        (one that offers ``put_many`` when the store's quirks say so); with
        ``slots``, at most that many of its requests are in flight at once."""
        if slots is not None:
            actor.queue = RequestQueue(slots, self.loop, self.trace, actor.name, CURRENT_OP.get)
        if self.store.quirks.put_many:
            return BatchingClient(self, actor)
        return ScheduledClient(self, actor)

    # -- fates ---------------------------------------------------------------

    def _fate(self, now: float, write: bool) -> tuple[Fate, float | None, float]:
        """(fate, landing time or None, answer time).  Only a write's answer is
        held (a read drawn to be held runs now)."""
        rng, f, t = self.rng, self.faults, self.timing
        to_land = t.latency * rng.uniform(0.2, 1.0)
        to_answer = t.latency * rng.uniform(0.2, 1.0)
        r = rng.random()
        if r < f.kill:
            return Fate.KILL, None, now
        r -= f.kill
        if r < f.refuse:
            return Fate.REFUSE, None, now + to_land
        r -= f.refuse
        if r < f.lose_answer:
            return Fate.LOSE, now + to_land, now + to_land + to_answer
        r -= f.lose_answer
        if r < f.time_out:
            answer_at = now + t.client_timeout * rng.uniform(0.5, 1.0)
            return Fate.TIME_OUT, answer_at + rng.uniform(0, t.max_late), answer_at
        r -= f.time_out
        if r < f.slow:
            land_at = now + rng.uniform(t.reorder_max, max(t.reorder_max, t.slow_max))
            return Fate.SLOW, land_at, land_at + to_answer
        r -= f.slow
        if r < f.hold_answer:
            land_at = now + to_land
            if not write:
                return Fate.NOW, land_at, land_at + to_answer
            return Fate.HOLD, land_at, land_at + rng.uniform(to_answer, max(to_answer, t.hold_max))
        r -= f.hold_answer
        if r < f.reorder:
            land_at = now + rng.uniform(to_land, t.reorder_max)
            return Fate.LATER, land_at, land_at + to_answer
        return Fate.NOW, now + to_land, now + to_land + to_answer

    async def send(self, actor: ActorState, request: Request) -> Any:
        """Carry one request of ``actor`` to its fate; return or raise its answer."""
        if actor.dead:
            raise ActorKilled(f"{actor.name} is dead: request not sent")
        loop = self.loop
        now = loop.time()
        op = CURRENT_OP.get()
        self.requests += 1
        if op is not None and op.ended is not None:
            op.late_requests += 1
        fate, land_at, answer_at = self._fate(now, request.is_write)
        number = next(self._numbers)
        op_id = op.id if op is not None else "-"
        self.trace.record(
            now, actor.name, "send", number, op_id, request, fate.value, land_at, answer_at
        )
        if op is not None:
            self.history.request_ops[f"#{number}"] = op
            if fate not in _ON_TIME:
                op.faults.append(f"#{number} {fate.value}")
        if fate is Fate.KILL:
            self.kill(actor)
            raise ActorKilled(f"{actor.name} was killed at request #{number}")
        answer: asyncio.Future[Any] = loop.create_future()
        flight = Flight(number, actor, op, request, fate, answer, land_at, answer_at)
        actor.waiting.append(flight)
        if land_at is not None:
            self._schedule_landing(flight, land_at)
        if fate in _LOST:
            loop.call_at(answer_at, self._answer, flight, self._lost_answer(fate, request))
        try:
            return await answer
        except asyncio.CancelledError:
            if op is not None and not actor.dead:
                op.abandoned.append(f"#{number}")
            self._give_up(flight)
            raise

    def _lost_answer(self, fate: Fate, request: Request) -> BaseException:
        kind, key = request.kind, request.key or None
        if fate is Fate.REFUSE:
            return StorageUnavailable(
                "simulated: connection refused (not sent)", operation=kind, key=key
            )
        what = {Fate.LOSE: "connection reset", Fate.HOLD: "connection reset after a long wait"}.get(
            fate, "read timeout"
        )
        if request.is_write:
            return OutcomeUnknown(
                f"simulated: {what} after sending; the write may have taken effect",
                operation=kind,
                key=key,
            )
        return StorageUnavailable(f"simulated: {what}", operation=kind, key=key)

    # -- landing and answering -----------------------------------------------

    def _schedule_landing(self, flight: Flight, at: float) -> None:
        flight.land_at = at
        flight.land_handle = self.loop.call_at(at, self._land, flight)
        if not flight.gave_up:
            self.in_flight += 1
            if flight.op is not None:
                self.history.flight_sent(flight.op)
            if flight.request.is_conditional:
                key = flight.request.key
                self._conditional[key] = self._conditional.get(key, 0) + 1

    def _land(self, flight: Flight) -> None:
        now = self.loop.time()
        request = flight.request
        flight.landed = True
        result: Any
        if request.is_conditional:
            racing = self._conditional[request.key] > 1
            self._conditional[request.key] -= 1
            rate = self.store.quirks.conflict_rate
            if racing and rate and self.rng.random() < rate:
                if flight.op is not None:
                    flight.op.faults.append(f"#{flight.number} 409")
                result = StorageUnavailable(
                    "simulated: 409 ConditionalRequestConflict (not applied)",
                    operation=request.kind,
                    key=request.key,
                )
                self._after_landing(flight, now, result)
                return
        try:
            result = request.apply(self.store, by=f"#{flight.number}")
        except PreconditionFailed as exc:
            result = exc
        self._after_landing(flight, now, result)

    def _after_landing(self, flight: Flight, now: float, result: Any) -> None:
        self.trace.record(now, flight.actor.name, "applied", flight.number, result)
        self.in_flight -= 1
        if flight.op is not None:
            self.history.flight_done(flight.op, now)
        if flight.fate in (Fate.NOW, Fate.LATER, Fate.SLOW) and not flight.answer.done():
            self.loop.call_at(max(now, flight.answer_at), self._answer, flight, result)

    def _answer(self, flight: Flight, result: Any) -> None:
        if flight in flight.actor.waiting:
            flight.actor.waiting.remove(flight)
        if flight.answer.done():
            return
        if flight.fate in _LOST:
            self.trace.record(self.loop.time(), flight.actor.name, "answer", flight.number, result)
        if isinstance(result, BaseException):
            flight.answer.set_exception(result)
        else:
            flight.answer.set_result(result)

    def _give_up(self, flight: Flight) -> None:
        """The caller stopped waiting: bound the landing by ``max_late`` from now."""
        if flight in flight.actor.waiting:
            flight.actor.waiting.remove(flight)
        if flight.landed or flight.land_handle is None or flight.gave_up:
            return
        flight.gave_up = True
        now = self.loop.time()
        if not flight.request.is_write:
            flight.land_handle.cancel()  # a read nobody waits for changes nothing
            self._drop(flight, now)
            return
        latest = now + self.timing.max_late
        assert flight.land_at is not None
        if flight.land_at > latest:
            flight.land_handle.cancel()
            self.trace.add(
                now, flight.actor.name, f"#{flight.number} caller gave up: lands by {latest:.6f}"
            )
            self._schedule_landing(flight, latest)

    def _drop(self, flight: Flight, now: float) -> None:
        self.in_flight -= 1
        if flight.request.is_conditional:
            self._conditional[flight.request.key] -= 1
        if flight.op is not None:
            self.history.flight_done(flight.op, now)

    def kill(self, actor: ActorState) -> None:
        """SIGKILL: the actor's waiting requests answer ActorKilled, its task is cancelled."""
        actor.dead = True
        now = self.loop.time()
        self.trace.add(now, actor.name, "killed")
        for flight in list(actor.waiting):
            if not flight.answer.done():
                flight.answer.set_exception(ActorKilled(f"{actor.name} was killed"))
            self._give_up(flight)
        actor.waiting.clear()
        if actor.task is not None:
            self.loop.call_soon(actor.task.cancel)


class ScheduledClient:
    """One actor's connection to the simulated store (a Storage).

    Arguments are checked as a real client checks them, before anything is
    sent; then the request goes to the scheduler.
    """

    max_key_length = MAX_KEY_BYTES

    def __init__(self, scheduler: Scheduler, actor: ActorState) -> None:
        self._scheduler = scheduler
        self._actor = actor

    @property
    def max_in_flight(self) -> int | None:
        """The client's bound on requests in flight, when it has a queue."""
        queue = self._actor.queue
        return queue.limit if queue is not None else None

    async def _send(self, request: Request) -> Any:
        queue = self._actor.queue
        if queue is None:
            return await self._scheduler.send(self._actor, request)
        return await queue.send(lambda: self._scheduler.send(self._actor, request), request)

    @property
    def supports_conditional_put(self) -> bool:
        return self._scheduler.store.supports_conditional_put

    @property
    def supports_conditional_delete(self) -> bool:
        return self._scheduler.store.supports_conditional_delete

    async def get(self, key: str) -> StoredObject | None:
        check_key(key)
        found = await self._send(Request("get", key))
        return cast(StoredObject | None, found)

    async def put(
        self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        check_key(key)
        check_conditions(if_absent, if_version)
        request = Request("put", key, bytes(data), if_absent, if_version)
        return cast(str, await self._send(request))

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        check_key(key)
        await self._send(Request("delete", key, if_version=if_version))

    async def delete_many(self, keys: Sequence[str]) -> None:
        check_batch(keys)
        for key in keys:
            check_key(key)
        if keys:
            await self._send(Request("delete_many", keys=tuple(keys)))

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        check_limit(limit)
        request = Request("list", prefix, after=after, limit=limit)
        return cast(ListPage, await self._send(request))

    async def close(self) -> None:
        """Nothing to release: the store outlives its clients."""


class BatchingClient(ScheduledClient):
    """A :class:`ScheduledClient` that also applies many writes a request
    (``put_many``) and reads many keys a request (``get_many``), as SQLite
    does: one request, one fate, every write applied (every key read) at its
    landing; at most ``Quirks.max_put_batch`` writes a request (small, so that
    a bulk load of a few items takes several requests)."""

    #: Small, so that a page of a few items takes several requests.
    max_get_batch = 5

    @property
    def max_put_batch(self) -> int:
        return self._scheduler.store.quirks.max_put_batch

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            conditional_put=self.supports_conditional_put,
            conditional_delete=self.supports_conditional_delete,
            put_many=self.max_put_batch,
            get_many=self.max_get_batch,
            get_many_in_one_request=True,
        )

    async def get_many(self, keys: Sequence[str]) -> list[StoredObject | None]:
        check_get_batch(keys, self.max_get_batch)
        for key in keys:
            check_key(key)
        if not keys:
            return []
        request = Request("get_many", keys=tuple(keys))
        return cast(list[StoredObject | None], await self._scheduler.send(self._actor, request))

    async def put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
        if len(puts) > self.max_put_batch:
            raise InvalidArgument(f"put_many takes at most {self.max_put_batch} writes")
        if len({p.key for p in puts}) != len(puts):
            raise InvalidArgument("put_many needs distinct keys")
        for put in puts:
            check_key(put.key)
            check_conditions(put.if_absent, put.if_version)
        if not puts:
            return []
        request = Request("put_many", puts=tuple(PutRequest(*p) for p in puts))
        answers = await self._send(request)
        return cast(list[str | PreconditionFailed], answers)
