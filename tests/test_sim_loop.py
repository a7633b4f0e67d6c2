"""The virtual-time event loop: time jumps, timeouts work, hangs become errors."""

from __future__ import annotations

import asyncio

import pytest

from ssshelf.testing.sim.loop import TimeLimitExceeded, VirtualTimeLoop, WaitsForever


def run(loop: VirtualTimeLoop, coro: object) -> object:
    try:
        return loop.run_until_complete(coro)  # type: ignore[arg-type]
    finally:
        loop.close()


def test_sleep_jumps_to_the_next_timer() -> None:
    loop = VirtualTimeLoop()

    async def main() -> list[float]:
        seen = [loop.time()]
        await asyncio.sleep(1000)
        seen.append(loop.time())
        await asyncio.sleep(0.25)
        seen.append(loop.time())
        return seen

    assert run(loop, main()) == [0.0, 1000.0, 1000.25]


def test_timeouts_fire_in_virtual_time() -> None:
    loop = VirtualTimeLoop()

    async def main() -> tuple[float, float]:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(60), 2)
        first = loop.time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3):
                await asyncio.sleep(10)
        return first, loop.time()

    assert run(loop, main()) == (2.0, 5.0)


def test_concurrent_sleepers_wake_in_time_order() -> None:
    loop = VirtualTimeLoop()
    order: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        order.append(f"{name}@{loop.time():g}")

    async def main() -> None:
        await asyncio.gather(sleeper("b", 2), sleeper("a", 1), sleeper("c", 3))

    run(loop, main())
    assert order == ["a@1", "b@2", "c@3"]


def test_waiting_for_what_never_comes_is_reported() -> None:
    loop = VirtualTimeLoop()

    async def main() -> None:
        await asyncio.sleep(7)
        await loop.create_future()  # nobody will ever resolve it

    with pytest.raises(WaitsForever) as info:
        run(loop, main())
    assert info.value.at == 7.0


def test_running_past_the_time_limit_is_reported() -> None:
    loop = VirtualTimeLoop(time_limit=100)

    async def main() -> None:
        while True:  # noqa: ASYNC110 - a loop that never ends, on purpose
            await asyncio.sleep(30)

    with pytest.raises(TimeLimitExceeded) as info:
        run(loop, main())
    assert info.value.at == 90.0


def test_spinning_without_time_passing_hits_the_step_limit() -> None:
    loop = VirtualTimeLoop(step_limit=500)

    async def main() -> None:
        while True:  # noqa: ASYNC110 - a loop that never ends, on purpose
            await asyncio.sleep(0)

    with pytest.raises(TimeLimitExceeded, match="500 times"):
        run(loop, main())


def test_limits_can_be_lifted_to_wind_down() -> None:
    loop = VirtualTimeLoop(time_limit=10)
    loop.lift_limits()

    async def main() -> float:
        await asyncio.sleep(10_000)
        return loop.time()

    assert run(loop, main()) == 10_000.0
