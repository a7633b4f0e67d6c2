"""Requests made concurrently, a bounded number at once, and cancellable cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

A = TypeVar("A")
T = TypeVar("T")


async def map_bounded(
    request: Callable[[A], Awaitable[T]], args: Sequence[A], limit: int
) -> list[T | Exception]:
    """``request(arg)`` for every arg, at most ``limit`` at once, results in order.

    A request that raised leaves its exception in its place.  Each coroutine
    is made only when its turn comes, so cancelling (Ctrl-C) leaves none
    behind un-awaited (no "coroutine … was never awaited" warning).
    """
    results: list[T | Exception] = []
    results.extend(Exception("not run") for _ in args)
    turns = iter(range(len(args)))

    async def worker() -> None:
        for index in turns:
            try:
                results[index] = await request(args[index])
            except Exception as exc:
                results[index] = exc

    await asyncio.gather(*(worker() for _ in range(min(max(1, limit), len(args)))))
    return results
