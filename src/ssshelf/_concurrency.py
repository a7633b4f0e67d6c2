"""Bounded concurrency for independent requests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def gather_bounded(awaitables: Iterable[Awaitable[T]], limit: int) -> list[T | BaseException]:
    """Run awaitables concurrently, at most ``limit`` at once.

    Returns results in input order; an awaitable that raised leaves its
    exception in its place (every one runs to the end, so a caller always
    learns what happened to each request).  Cancelled, it cancels them all and
    returns only once they have finished; a coroutine whose turn never came is
    closed, not left "never awaited".
    """
    items = list(awaitables)
    if not items:
        return []
    semaphore = asyncio.Semaphore(max(1, limit))
    started = [False] * len(items)

    async def run(index: int, awaitable: Awaitable[T]) -> T:
        async with semaphore:
            started[index] = True
            return await awaitable

    try:
        return await asyncio.gather(
            *(run(i, a) for i, a in enumerate(items)), return_exceptions=True
        )
    finally:
        for index, awaitable in enumerate(items):
            if not started[index] and inspect.iscoroutine(awaitable):
                awaitable.close()


async def gather_all(awaitables: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """As :func:`gather_bounded`, then raise the first exception, if any."""
    results = await gather_bounded(awaitables, limit)
    raise_first(results)
    return results  # type: ignore[return-value]  # no exceptions left


def raise_first(results: Iterable[object]) -> None:
    """Raise the first exception found among ``gather_bounded`` results."""
    for result in results:
        if isinstance(result, BaseException):
            raise result
