"""The seed's helpers: datetime strings and the JSON dumper."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from ssshelf._concurrency import gather_bounded
from ssshelf.utils import convert_datetime_to_str, json_dump


def test_convert_datetime_to_str_sorts_like_time() -> None:
    early, late = datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 10, 0, 0, 0)
    assert convert_datetime_to_str(early) == "2024-01-02T03:04:05Z"
    assert convert_datetime_to_str(early) < convert_datetime_to_str(late)


def test_json_dump_handles_the_usual_types() -> None:
    value = {
        "at": datetime(2024, 1, 2, 3, 4, 5),
        "day": date(2024, 1, 2),
        "id": UUID("12345678-1234-5678-1234-567812345678"),
        "price": Decimal("1.10"),
        "raw": b"\x00\xff",
        "tags": {"b", "a"},
    }
    assert json.loads(json_dump(value, sort_keys=True)) == {
        "at": "2024-01-02T03:04:05",
        "day": "2024-01-02",
        "id": "12345678-1234-5678-1234-567812345678",
        "price": "1.10",
        "raw": "AP8=",
        "tags": ["a", "b"],
    }
    with pytest.raises(TypeError, match="object"):
        json_dump({"x": object()})


async def test_gather_bounded_keeps_order_and_exceptions() -> None:
    async def one(i: int) -> int:
        if i == 2:
            raise ValueError(i)
        return i

    assert await gather_bounded([], 3) == []
    results = await gather_bounded((one(i) for i in range(4)), 2)
    assert results[:2] == [0, 1] and isinstance(results[2], ValueError) and results[3] == 3


async def test_cancelled_gather_leaves_nothing_running_and_nothing_unawaited() -> None:
    import inspect

    started: list[int] = []
    release = asyncio.Event()

    async def slow(i: int) -> int:
        started.append(i)
        await release.wait()
        return i

    made = [slow(i) for i in range(10)]
    task = asyncio.create_task(gather_bounded(made, 2))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert started == [0, 1]  # the others never started ...
    # ... and none is left "never awaited": every one ran to its end or was closed
    assert {inspect.getcoroutinestate(c) for c in made} == {inspect.CORO_CLOSED}
    assert len(asyncio.all_tasks()) == 1  # nothing of it runs on


def test_acyclic_encoders_write_what_json_dumps_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    from json import encoder

    from ssshelf._json import acyclic_encoder, compact_json
    from ssshelf.utils import dump_acyclic

    values: list[object] = [{"a": [1, 2.5, "é\n", None, True]}, 'q"', 7, [float("inf")], {1: 2}]
    for value in values:
        assert compact_json(value) == json.dumps(value, separators=(",", ":"))
        assert dump_acyclic(value) == json_dump(value)
    assert dump_acyclic({"at": date(2024, 1, 2), "ids": {3, 1}}) == json_dump(
        {"at": date(2024, 1, 2), "ids": {3, 1}}
    )
    with pytest.raises(TypeError, match="not JSON serializable"):
        compact_json({"x": object()})
    monkeypatch.setattr(encoder, "c_make_encoder", None)  # an interpreter without the C part
    pure = acyclic_encoder(separators=(",", ":"))
    assert pure({"a": [1, "b"]}) == '{"a":[1,"b"]}'
