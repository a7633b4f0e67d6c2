"""Each fate the scheduler hands out does what it says, in virtual time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from ssshelf.errors import InvalidArgument, OutcomeUnknown, PreconditionFailed, StorageUnavailable
from ssshelf.storages.base import PutRequest, SupportsPutMany
from ssshelf.testing.sim.history import History, Op, Outcome
from ssshelf.testing.sim.loop import VirtualTimeLoop
from ssshelf.testing.sim.schedule import FaultRates, Timing
from ssshelf.testing.sim.scheduler import (
    CURRENT_OP,
    ActorKilled,
    ActorState,
    ScheduledClient,
    Scheduler,
)
from ssshelf.testing.sim.store import Quirks, SimStore
from ssshelf.testing.sim.trace import Trace

TIMING = Timing(latency=0.01, reorder_max=0.1, slow_max=1000.0, client_timeout=0.5, max_late=5.0)


class World:
    """One loop, one store, one scheduler; ``run`` drives a coroutine to its end."""

    def __init__(self, faults: FaultRates, quirks: Quirks | None = None) -> None:
        self.loop = VirtualTimeLoop()
        self.store = SimStore(quirks or Quirks(), self.loop.time)
        self.quiet: list[str] = []
        self.history = History(on_quiet=lambda pk, now: self.quiet.append(pk))
        self.trace = Trace()
        self.scheduler = Scheduler(
            self.loop, self.store, random.Random(1), faults, TIMING, self.history, self.trace
        )

    def client(self, name: str = "a0") -> tuple[ActorState, ScheduledClient]:
        actor = ActorState(name)
        return actor, self.scheduler.client(actor)

    def run(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        async def main() -> Any:
            result = await make()
            while self.scheduler.in_flight:  # noqa: ASYNC110 - let late requests land
                await asyncio.sleep(1)
            return result

        try:
            return self.loop.run_until_complete(main())
        finally:
            self.loop.close()

    def landed_at(self, key: str) -> float:
        return next(change.at for change in self.store.log if change.key == key)


def test_a_lost_answer_was_applied_and_says_so_for_writes() -> None:
    world = World(FaultRates(lose_answer=1.0))
    _, client = world.client()

    async def main() -> tuple[BaseException, BaseException]:
        with pytest.raises(OutcomeUnknown) as write:
            await client.put("k", b"x")
        with pytest.raises(StorageUnavailable) as read:
            await client.get("k")
        return write.value, read.value

    _, read = world.run(main)
    assert not isinstance(read, OutcomeUnknown)  # a read changes nothing
    assert world.store.table.objects["k"].data == b"x"


def test_a_refused_request_never_reaches_the_store() -> None:
    world = World(FaultRates(refuse=1.0))
    _, client = world.client()

    async def main() -> BaseException:
        with pytest.raises(StorageUnavailable) as info:
            await client.put("k", b"x")
        return info.value

    error = world.run(main)
    assert not isinstance(error, OutcomeUnknown)
    assert world.store.log == []


def test_a_timed_out_write_lands_late_but_within_max_late() -> None:
    world = World(FaultRates(time_out=1.0))
    _, client = world.client()
    answered: list[float] = []

    async def main() -> None:
        with pytest.raises(OutcomeUnknown):
            await client.put("k", b"x")
        answered.append(world.loop.time())
        assert "k" not in world.store.table.objects  # not yet

    world.run(main)
    assert TIMING.client_timeout / 2 <= answered[0] <= TIMING.client_timeout
    assert answered[0] <= world.landed_at("k") <= answered[0] + TIMING.max_late


def test_a_slow_write_whose_caller_gave_up_lands_within_max_late() -> None:
    world = World(FaultRates(slow=1.0))
    _, client = world.client()

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.put("k", b"x"), 1.0)

    world.run(main)
    assert 1.0 < world.landed_at("k") <= 1.0 + TIMING.max_late


def test_a_read_nobody_waits_for_is_dropped() -> None:
    world = World(FaultRates(slow=1.0))
    _, client = world.client()

    async def main() -> int:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.get("k"), 1.0)
        return world.scheduler.in_flight

    assert world.run(main) == 0


def test_a_killed_actor_is_refused_but_what_it_sent_still_lands() -> None:
    world = World(FaultRates(slow=1.0))
    actor, client = world.client()

    async def main() -> None:
        pending = asyncio.ensure_future(client.put("k", b"x"))
        await asyncio.sleep(0.5)
        world.scheduler.kill(actor)
        with pytest.raises(ActorKilled):
            await pending
        with pytest.raises(ActorKilled):
            await client.put("other", b"y")

    world.run(main)
    assert actor.dead
    assert [change.key for change in world.store.log] == ["k"]
    assert world.landed_at("k") <= 0.5 + TIMING.max_late


def test_the_kill_fate_stops_the_actor_at_that_request() -> None:
    world = World(FaultRates(kill=1.0))
    actor, client = world.client()

    async def main() -> None:
        with pytest.raises(ActorKilled):
            await client.put("k", b"x")

    world.run(main)
    assert actor.dead and world.store.log == []


def test_409_fails_one_of_two_racing_conditional_writes_without_applying_it() -> None:
    world = World(FaultRates(), Quirks(conflict_rate=1.0))
    _, first = world.client("a0")
    _, second = world.client("a1")

    async def main() -> list[object]:
        return await asyncio.gather(
            first.put("k", b"1", if_absent=True),
            second.put("k", b"2", if_absent=True),
            return_exceptions=True,
        )

    results = world.run(main)
    conflicts = [r for r in results if isinstance(r, StorageUnavailable)]
    assert len(conflicts) == 1 and "409" in str(conflicts[0])
    assert not isinstance(conflicts[0], OutcomeUnknown)
    assert len(world.store.log) == 1


def test_requests_are_attributed_to_the_operation_that_sent_them() -> None:
    world = World(FaultRates(time_out=1.0))
    _, client = world.client()
    op = Op("a0.0", "a0", "add_item", "k", ("p",), 0.0)
    world.history.begin(op)

    async def main() -> None:
        token = CURRENT_OP.set(op)
        try:
            with pytest.raises(OutcomeUnknown):
                await client.put("k", b"x")
        finally:
            CURRENT_OP.reset(token)
        world.history.end(op, world.loop.time(), Outcome.UNKNOWN, None, None)
        assert op.flights == 1 and op.settled is None  # its write is still on its way
        assert not world.history.quiet("p")

    world.run(main)
    assert op.flights == 0 and op.settled == world.landed_at("k")
    assert world.quiet == ["p"]
    sends = [e for e in world.trace.events if e[2] == "send"]
    assert sends[0][4] == "a0.0"


def test_a_store_with_put_many_applies_each_write_on_its_condition_at_once() -> None:
    world = World(FaultRates(), Quirks(put_many=True))
    _, client = world.client()
    assert isinstance(client, SupportsPutMany) and client.max_put_batch == 5

    async def main() -> list[str | PreconditionFailed]:
        await client.put("taken", b"old")
        with pytest.raises(InvalidArgument, match="at most 5"):
            await client.put_many([PutRequest(f"k{i}", b"") for i in range(6)])
        with pytest.raises(InvalidArgument, match="distinct"):
            await client.put_many([PutRequest("a", b""), PutRequest("a", b"")])
        assert await client.put_many([]) == []
        return await client.put_many(
            [PutRequest("a", b"1"), PutRequest("taken", b"new", if_absent=True)]
        )

    answers = world.run(main)
    assert isinstance(answers[0], str) and isinstance(answers[1], PreconditionFailed)
    assert [c.key for c in world.store.log] == ["taken", "a"]
    assert world.store.table.objects["taken"].data == b"old"
    assert "put_many ['a', 'taken' if-absent]" in "\n".join(world.trace.lines())


def test_a_put_many_whose_answer_is_lost_may_have_been_applied() -> None:
    world = World(FaultRates(lose_answer=1.0), Quirks(put_many=True))
    _, client = world.client()

    async def main() -> None:
        with pytest.raises(OutcomeUnknown):
            await client.put_many([PutRequest("a", b"1"), PutRequest("b", b"2")])

    world.run(main)
    assert sorted(world.store.table.objects) == ["a", "b"]


# -- issue 17: held answers, the client's queue, put_many's limit -------------------


def test_a_held_answer_lands_at_once_and_is_lost_much_later() -> None:
    timing = Timing(latency=0.01, hold_max=3.0)
    world = World(FaultRates(hold_answer=1.0))
    world.scheduler.timing = timing
    _, client = world.client()

    async def held() -> tuple[float, float]:
        started = world.loop.time()
        with pytest.raises(OutcomeUnknown, match="long wait"):
            await client.put("k", b"x")
        answered = world.loop.time()
        assert await client.get("k") is not None  # a read is never held
        return started, answered

    started, answered = world.run(held)
    assert world.landed_at("k") - started <= 0.01
    assert answered - world.landed_at("k") > 0.01
    assert "fate=hold" in "\n".join(world.trace.lines())


def test_faults_are_noted_on_the_operation_whose_request_met_them() -> None:
    world = World(FaultRates(refuse=1.0))
    _, client = world.client()
    op = Op("a0.0", "a0", "add_item", "k", ("p",), 0.0)
    world.history.begin(op)

    async def main() -> None:
        token = CURRENT_OP.set(op)
        try:
            with pytest.raises(StorageUnavailable):
                await client.put("k", b"x")
        finally:
            CURRENT_OP.reset(token)

    world.run(main)
    assert op.faults == ["#1 refuse"]


def test_a_client_keeps_at_most_its_slots_in_flight_first_come_first_served() -> None:
    world = World(FaultRates())
    actor = ActorState("a0")
    client = world.scheduler.client(actor, slots=2)
    op = Op("a0.0", "a0", "add_items", "k", ("p",), 0.0)
    world.history.begin(op)

    async def main() -> None:
        token = CURRENT_OP.set(op)
        try:
            await asyncio.gather(*(client.put(f"k{i}", b"x") for i in range(6)))
        finally:
            CURRENT_OP.reset(token)

    world.run(main)
    assert [c.key for c in world.store.log[:2]] and actor.queue is not None
    sends = [e for e in world.trace.events if e[2] == "send"]
    assert [e[5].key for e in sends] == [f"k{i}" for i in range(6)]  # in order
    assert actor.queue.longest == 4 and actor.queue.busy == 0
    in_flight = 0
    peak = 0
    for event in sorted(world.trace.events, key=lambda e: e[0]):
        if event[2] == "send":
            in_flight += 1
        elif event[2] == "applied":
            in_flight -= 1
        peak = max(peak, in_flight)
    assert peak <= 2
    assert op.queued > 0 and not op.unsent


def test_a_request_given_up_in_the_queue_is_never_sent() -> None:
    world = World(FaultRates())
    actor = ActorState("a0")
    client = world.scheduler.client(actor, slots=1)
    op = Op("a0.0", "a0", "add_item", "k", ("p",), 0.0)
    world.history.begin(op)

    async def main() -> None:
        token = CURRENT_OP.set(op)
        try:
            first = asyncio.ensure_future(client.put("first", b"x"))
            await asyncio.sleep(0)  # "first" takes the one slot
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.001):
                    await client.put("second", b"x")
            await first
            await client.put("third", b"x")  # the slot is free again
        finally:
            CURRENT_OP.reset(token)

    world.run(main)
    assert sorted(world.store.table.objects) == ["first", "third"]
    assert len(op.unsent) == 1 and op.unsent[0].startswith("put 'second'")
    assert "never sent: put 'second'" in "\n".join(world.trace.lines())
    assert actor.queue is not None and actor.queue.busy == 0


def test_a_request_queue_needs_a_slot() -> None:
    world = World(FaultRates())
    with pytest.raises(ValueError, match="at least one"):
        world.scheduler.client(ActorState("a0"), slots=0)
    world.loop.close()


def test_put_many_takes_as_many_writes_as_the_store_quirk_says() -> None:
    world = World(FaultRates(), Quirks(put_many=True, max_put_batch=2))
    _, client = world.client()
    assert isinstance(client, SupportsPutMany) and client.max_put_batch == 2

    async def main() -> None:
        with pytest.raises(InvalidArgument, match="at most 2"):
            await client.put_many([PutRequest(f"k{i}", b"") for i in range(3)])
        await client.put_many([PutRequest("a", b""), PutRequest("b", b"")])

    world.run(main)
    assert sorted(world.store.table.objects) == ["a", "b"]
    assert "put-many<=2" in world.store.quirks.describe()
