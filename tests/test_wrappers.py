"""Storage wrappers: counting, latency, faults and retries stand in front of any backend."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from ssshelf.errors import OutcomeUnknown, PreconditionFailed, StorageUnavailable
from ssshelf.storages.base import PutRequest, Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.retrying import RetryingStorage
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.wrapper import StorageWrapper
from ssshelf.testing import CountingStorage, FaultyStorage, LatencyStorage, SimulatedCrash
from ssshelf.testing.sim.loop import VirtualTimeLoop


async def test_counting_counts_kinds_and_round_trips(local_storage: Storage) -> None:
    counting = CountingStorage(LatencyStorage(local_storage, 0.002))
    await asyncio.gather(*(counting.put(f"k{i}", b"") for i in range(5)))
    assert counting.round_trips == 1 and counting.counts == {"put": 5}
    await counting.get("k1")
    await counting.list("k")
    await counting.delete("k1")
    await counting.delete_many(["k2", "k3"])
    assert counting.round_trips == 5 and counting.total == 9
    assert counting.counts["delete_many"] == 1
    with pytest.raises(PreconditionFailed):
        await counting.put("k4", b"", if_absent=True)
    await counting.get("k4")  # a failed request still ended its round trip
    assert counting.round_trips == 7
    counting.reset()
    assert counting.total == 0 and counting.round_trips == 0
    assert counting.max_key_length == local_storage.max_key_length
    assert counting.supports_conditional_put and counting.supports_conditional_delete


def test_latency_is_added_to_every_request() -> None:
    """On virtual time, so that how busy the machine is changes nothing."""
    loop = VirtualTimeLoop()
    slow = LatencyStorage(InMemoryStorage(), 0.05)

    async def main() -> tuple[float, float]:
        started = loop.time()
        await slow.put("a", b"")
        await slow.get("a")
        sequential = loop.time() - started
        started = loop.time()
        await asyncio.gather(*(slow.get("a") for _ in range(20)))
        return sequential, loop.time() - started

    try:
        sequential, concurrent = loop.run_until_complete(main())
    finally:
        loop.close()
    assert sequential == pytest.approx(0.1)  # two sequential requests
    assert concurrent == pytest.approx(0.05)  # concurrent ones overlap


async def test_crash_after_refuses_everything_from_then_on() -> None:
    inner = InMemoryStorage()
    faulty = FaultyStorage(inner, crash_after=2)
    await faulty.put("a", b"1")
    await faulty.put("b", b"2")
    assert not faulty.crashed
    with pytest.raises(SimulatedCrash):
        await faulty.put("c", b"3")
    with pytest.raises(SimulatedCrash):
        await faulty.get("a")
    assert faulty.crashed
    assert sorted((await inner.list()).keys) == ["a", "b"]


async def test_transient_failures_are_seeded_and_some_land() -> None:
    inner = InMemoryStorage()
    faulty = FaultyStorage(inner, failure_rate=0.5, seed=11)
    outcomes = []
    for i in range(40):
        try:
            await faulty.put(f"k{i:02d}", b"")
            outcomes.append("ok")
        except StorageUnavailable as exc:
            outcomes.append("landed" if "landed" in str(exc) else "lost")
    assert {"ok", "landed", "lost"} <= set(outcomes)
    stored = set((await inner.list()).keys)
    for i, outcome in enumerate(outcomes):
        assert (f"k{i:02d}" in stored) == (outcome != "lost")
    assert faulty.failures == outcomes.count("landed") + outcomes.count("lost")


async def test_retrying_recovers_and_recognises_its_own_landed_write() -> None:
    inner = InMemoryStorage()
    retrying = RetryingStorage(
        FaultyStorage(inner, failure_rate=0.6, seed=5), attempts=50, base_delay=0.0001
    )
    for i in range(30):
        await retrying.put(f"k{i}", f"v{i}".encode(), if_absent=True)
    assert len(inner) == 30
    for i in range(10):
        current = await retrying.get("k0")
        assert current is not None
        await retrying.put("k0", f"n{i}".encode(), if_version=current.version)
    final = await inner.get("k0")
    assert final is not None and final.data == b"n9"
    for i in range(30):
        obj = await retrying.get(f"k{i}")
        assert obj is not None
        await retrying.delete(f"k{i}", if_version=obj.version)
    assert len(inner) == 0


async def test_retrying_still_reports_real_conflicts_and_gives_up() -> None:
    inner = InMemoryStorage()
    await inner.put("k", b"theirs")
    retrying = RetryingStorage(inner, attempts=3, base_delay=0.0001)
    with pytest.raises(PreconditionFailed):
        await retrying.put("k", b"mine", if_absent=True)
    with pytest.raises(PreconditionFailed):
        await retrying.delete("k", if_version="stale")

    class AlwaysDown(StorageWrapper):
        async def get(self, key: str) -> None:
            raise StorageUnavailable("down", operation="get", key=key)

    down = RetryingStorage(AlwaysDown(inner), attempts=3, base_delay=0.0001)
    with pytest.raises(StorageUnavailable):
        await down.get("k")


async def test_retrying_tells_a_lost_answer_from_a_real_conflict() -> None:
    inner = InMemoryStorage()

    class LoseFirstAnswer(StorageWrapper):
        """The first put lands but its answer is lost; then someone else writes."""

        calls = 0

        async def put(self, key: str, data: bytes, **kwargs: object) -> str:
            self.calls += 1
            version = await self.inner.put(key, data, **kwargs)  # type: ignore[arg-type]
            if self.calls == 1:
                raise StorageUnavailable("answer lost", operation="put", key=key)
            return version

    retrying = RetryingStorage(LoseFirstAnswer(inner), attempts=3, base_delay=0.0001)
    version = await retrying.put("k", b"mine", if_absent=True)
    obj = await inner.get("k")
    assert obj is not None and obj.version == version and obj.data == b"mine"

    class LoseAndRace(LoseFirstAnswer):
        async def put(self, key: str, data: bytes, **kwargs: object) -> str:
            try:
                return await super().put(key, data, **kwargs)
            finally:
                if self.calls == 1:
                    await self.inner.put(key, b"someone else")

    racing = RetryingStorage(LoseAndRace(InMemoryStorage()), attempts=3, base_delay=0.0001)
    with pytest.raises(OutcomeUnknown):  # never PreconditionFailed: the first put landed
        await racing.put("k", b"mine", if_absent=True)


async def test_retrying_a_put_many_recognises_its_own_landed_writes(tmp_path: Path) -> None:
    class LoseFirstBatchAnswer(StorageWrapper):
        """The first put_many lands but its answer is lost."""

        calls = 0

        async def _put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
            self.calls += 1
            answers = await super()._put_many(puts)
            if self.calls == 1:
                raise StorageUnavailable("answer lost", operation="put_many")
            return answers

    store = SQLiteStorage(tmp_path / "retry.db")
    retrying = RetryingStorage(LoseFirstBatchAnswer(store), attempts=3, base_delay=0.0001)
    answers = await retrying.put_many(
        [PutRequest("a", b"1", if_absent=True), PutRequest("b", b"2")]
    )
    a, b = await store.get_many(["a", "b"])
    assert a is not None and b is not None and answers == [a.version, b.version]
    refused = await retrying.put_many([PutRequest("a", b"other", if_absent=True)])
    assert isinstance(refused[0], PreconditionFailed)  # a real conflict stays one

    class LoseAndRace(LoseFirstBatchAnswer):
        async def _put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
            try:
                return await super()._put_many(puts)
            finally:
                if self.calls == 1:
                    await self.inner.put("c", b"someone else")

    racing = RetryingStorage(LoseAndRace(store), attempts=3, base_delay=0.0001)
    with pytest.raises(OutcomeUnknown, match="put_many"):  # never a refusal: it landed
        await racing.put_many([PutRequest("c", b"mine", if_absent=True)])
    await store.close()
