"""Forced interleavings: stop one chosen request and decide its fate by hand.

``Gate(inner)`` is a storage wrapper.  ``gate.hold(kind, key_part)`` returns a
:class:`Held` for the next request of that kind whose key contains
``key_part``: the request stops before it reaches the store (``await
held.reached``) until the test says what happens to it:

* ``held.send()``         it goes through, the caller gets its answer;
* ``held.fail()``         it never reaches the store: StorageUnavailable;
* ``held.lose()``         it is applied, and the caller gets OutcomeUnknown;
* ``held.apply()`` then ``held.lose()`` / ``held.answer()``: applied first,
  answered later (so other requests can run in between);
* ``held.late()``         the caller gets OutcomeUnknown now, the request is
  applied when the test calls ``await held.land()`` (a request that lands
  after its caller gave up).

A caller cancelled while its request is held leaves the request in flight:
``await held.land()`` applies it anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from ssshelf.errors import OutcomeUnknown, StorageUnavailable
from ssshelf.storages.base import Storage, StoredObject, SupportsGetMany
from ssshelf.storages.wrapper import StorageWrapper

T = TypeVar("T")


class Held:
    def __init__(self, kind: str, key_part: str) -> None:
        self.kind = kind
        self.key_part = key_part
        self.key: str | None = None
        self.reached = asyncio.Event()
        self.used = False
        self._decision: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._request: Callable[[], Awaitable[Any]] | None = None
        self._applied: asyncio.Future[Any] | None = None
        self.result: Any = None

    def matches(self, kind: str, key: str | None) -> bool:
        return not self.used and kind == self.kind and self.key_part in (key or "")

    # -- the test's side ---------------------------------------------------

    def send(self) -> None:
        self._decision.set_result("send")

    def fail(self) -> None:
        self._decision.set_result("fail")

    def late(self) -> None:
        self._decision.set_result("late")

    async def apply(self) -> Any:
        """Apply the request now; its caller keeps waiting for an answer."""
        assert self._request is not None
        self.result = await self._request()
        self._applied = asyncio.get_running_loop().create_future()
        self._applied.set_result(self.result)
        return self.result

    def lose(self) -> None:
        """The caller gets OutcomeUnknown (applying first if not applied yet)."""
        self._decision.set_result("lose")

    def answer(self) -> None:
        """The caller gets the answer of the request applied with :meth:`apply`."""
        assert self._applied is not None
        self._decision.set_result("answer")

    async def land(self) -> Any:
        """Apply a request whose caller gave up (or was told the outcome is unknown)."""
        assert self._request is not None
        self.result = await self._request()
        return self.result

    # -- the caller's side -------------------------------------------------

    async def run(self, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        self.used = True
        self.key = key
        self._request = request
        self.reached.set()
        decision = await asyncio.shield(self._decision)
        if decision == "send":
            return await request()
        if decision == "fail":
            raise StorageUnavailable("held request failed before sending", key=key)
        if decision == "late":
            raise OutcomeUnknown("held request: answer lost, it may land later", key=key)
        if decision == "answer":
            return self.result  # type: ignore[no-any-return]
        if self._applied is None:
            await self.apply()
        raise OutcomeUnknown("held request: applied, answer lost", key=key)


class Gate(StorageWrapper):
    """Holds chosen requests (see the module docstring)."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self._holds: list[Held] = []

    def hold(self, kind: str, key_part: str = "") -> Held:
        held = Held(kind, key_part)
        self._holds.append(held)
        return held

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        for held in self._holds:
            if held.matches(kind, key):
                return await held.run(key, request)
        return await request()

    async def _get_many(self, keys: Sequence[str]) -> list[StoredObject | None]:
        """A ``get_many`` stands for the gets of its keys: a hold of ``get``
        matching any of them holds the whole request."""
        inner = cast(SupportsGetMany, self.inner)
        for held in self._holds:
            for key in keys:
                if held.matches("get", key):
                    return await held.run(key, lambda: inner.get_many(keys))
        return await super()._get_many(keys)
