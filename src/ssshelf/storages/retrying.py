"""RetryingStorage: retry transient failures in front of any storage.

Requests failing with :class:`~ssshelf.errors.StorageUnavailable` are retried
with exponential backoff and full jitter, a bounded number of times.

A write that failed that way may have reached the store (its answer lost), so
a conditional write whose retry then meets "precondition failed" may have met
its own first attempt.  This wrapper reads the key once: when it holds exactly
the bytes sent, the write landed and its version is returned; otherwise the
outcome is unknown and :class:`~ssshelf.errors.OutcomeUnknown` is raised —
never :class:`~ssshelf.errors.PreconditionFailed`, which would say that
nothing changed.  A ``put_many`` retried after a lost answer reads the keys
of the writes that then answer "precondition failed" the same way, in one
``get_many`` where the inner storage has it.  (ssshelf writes distinct bytes for every item and
reservation write, which is what makes the comparison sound.)

Errors that say the backend already retried (:class:`~ssshelf.errors.RetriesDone`,
raised by ``S3Storage``) are passed on at once: wrapping ``S3Storage`` adds no
retries and keeps its documented time to give up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from ..errors import NotSent, OutcomeUnknown, PreconditionFailed, RetriesDone, StorageUnavailable
from .base import PutRequest, Storage, SupportsPutMany, read_many
from .wrapper import READ_KINDS, StorageWrapper

T = TypeVar("T")


class _Undecidable(OutcomeUnknown, RetriesDone):
    """The lost-answer check could not tell: retrying would only ask again."""


class RetryingStorage(StorageWrapper):
    """Retries :class:`~ssshelf.errors.StorageUnavailable` up to ``attempts`` times in all.

    At most ``attempts - 1`` backoff sleeps of at most ``max_delay`` seconds
    each are added to the inner storage's own time per request.
    """

    def __init__(
        self,
        inner: Storage,
        *,
        attempts: int = 8,
        base_delay: float = 0.02,
        max_delay: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(inner)
        self._rng = rng if rng is not None else random.Random()
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        return await self._retry(request, write=kind not in READ_KINDS)

    async def _retry(self, request: Callable[[], Awaitable[T]], *, write: bool) -> T:
        maybe_landed = False
        for attempt in range(1, self.attempts + 1):
            try:
                return await request()
            except StorageUnavailable as exc:
                if isinstance(exc, RetriesDone):
                    raise
                out_of_time = isinstance(exc, NotSent)  # its caller's deadline has passed
                if out_of_time and not maybe_landed:
                    raise
                maybe_landed = maybe_landed or write
                if attempt == self.attempts or out_of_time:
                    if maybe_landed and not isinstance(exc, OutcomeUnknown):
                        raise OutcomeUnknown(
                            f"{exc} (after {attempt} attempts, some of which may have taken"
                            " effect)",
                            operation=exc.operation,
                            key=exc.key,
                        ) from exc
                    raise
            await asyncio.sleep(
                self._rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
            )
        raise AssertionError("unreachable")

    async def _put(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> str:
        failed_once = False

        async def request() -> str:
            nonlocal failed_once
            try:
                return await self.inner.put(key, data, if_absent=if_absent, if_version=if_version)
            except PreconditionFailed:
                if not failed_once:
                    raise
                landed = await self.inner.get(key)
                if landed is not None and landed.data == data:
                    return landed.version
                raise _Undecidable(
                    f"put of {key!r}: an attempt whose answer was lost may have landed and"
                    " been overwritten since, or never landed; read the key to find out",
                    operation="put",
                    key=key,
                ) from None
            except StorageUnavailable:
                failed_once = True
                raise

        return await self._retry(request, write=True)

    async def _put_many(self, puts: Sequence[PutRequest]) -> list[str | PreconditionFailed]:
        failed_once = False
        inner = cast(SupportsPutMany, self.inner)

        async def request() -> list[str | PreconditionFailed]:
            nonlocal failed_once
            try:
                answers = await inner.put_many(puts)
            except StorageUnavailable:
                failed_once = True
                raise
            if failed_once:
                return await self._settle_refusals(puts, answers)
            return answers

        return await self._retry(request, write=True)

    async def _settle_refusals(
        self, puts: Sequence[PutRequest], answers: list[str | PreconditionFailed]
    ) -> list[str | PreconditionFailed]:
        """After a lost answer, a refused write may have met its own earlier
        attempt: its version when the key holds exactly its bytes, else the
        whole call's outcome is unknown."""
        refused = [i for i, answer in enumerate(answers) if isinstance(answer, PreconditionFailed)]
        if not refused:
            return answers
        keys = [puts[i][0] for i in refused]
        found = await read_many(self.inner, keys, concurrency=len(keys))
        settled = list(answers)
        for index, obj in zip(refused, found, strict=True):
            if obj is None or obj.data != puts[index][1]:
                raise _Undecidable(
                    f"put_many: the write of {puts[index][0]!r} was refused after an attempt"
                    " whose answer was lost; that attempt may have landed and been"
                    " overwritten since, or never landed; read the keys to find out",
                    operation="put_many",
                    key=puts[index][0],
                )
            settled[index] = obj.version
        return settled

    async def _delete(self, key: str, if_version: str | None) -> None:
        failed_once = False

        async def request() -> None:
            nonlocal failed_once
            try:
                await self.inner.delete(key, if_version=if_version)
            except PreconditionFailed:
                if not failed_once:
                    raise
                if await self.inner.get(key) is None:
                    return  # an earlier attempt deleted it
                raise _Undecidable(
                    f"delete of {key!r}: an attempt whose answer was lost may have deleted"
                    " it before the key was written again; read it to find out",
                    operation="delete",
                    key=key,
                ) from None
            except StorageUnavailable:
                failed_once = True
                raise

        await self._retry(request, write=True)
