"""When a request leaves the client: a deadline to be sent by, and when it was sent.

A write's commit window starts when its first request is *sent*, not when it
was queued, and a commit that could not be sent before its window ran out
provably did not land.  Only the storage knows when a request leaves its own
queue (S3Storage waits for one of its connection slots), so a caller says
what it needs through the context of the task, which every wrapper and every
task the caller starts inherits unchanged:

* :func:`send_by` — requests made inside it that cannot be sent by the given
  event-loop time raise :class:`~ssshelf.errors.NotSent` instead (they
  changed nothing);
* :func:`recording` — a :class:`SendLog` that notes when the first request
  made inside it was sent.

A storage with a queue of its own takes its slots through :func:`slot`; a
storage without one (memory, SQLite's worker) sends at once and calls
:func:`sent` where a request is handed over.  Outside both context managers
all of this costs one context-variable read a request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from ..errors import NotSent

__all__ = ["SendLog", "recording", "send_by", "send_deadline", "sent", "slot"]


@dataclass(slots=True)
class SendLog:
    """When the first request made under :func:`recording` left the client
    (event-loop time), or ``None`` while none has."""

    first_sent: float | None = None


_DEADLINE: ContextVar[float | None] = ContextVar("ssshelf_send_by", default=None)
_LOG: ContextVar[SendLog | None] = ContextVar("ssshelf_send_log", default=None)


@contextlib.contextmanager
def send_by(deadline: float) -> Iterator[None]:
    """Requests made inside must be sent by loop time ``deadline``, or raise NotSent."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


@contextlib.contextmanager
def recording(log: SendLog) -> Iterator[SendLog]:
    """Note in ``log`` when the first request made inside is sent."""
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)


def sent() -> None:
    """A storage says: the request being made now leaves the client."""
    log = _LOG.get()
    if log is not None and log.first_sent is None:
        log.first_sent = asyncio.get_running_loop().time()


@contextlib.asynccontextmanager
async def slot(slots: asyncio.Semaphore, what: str) -> AsyncIterator[None]:
    """Hold one of a storage's request slots for one request (``what``, for the
    message).  Waits for a free slot no longer than the context's
    :func:`send_by` deadline, then raises :class:`~ssshelf.errors.NotSent`."""
    deadline = _DEADLINE.get()
    if deadline is None:
        await slots.acquire()
    elif asyncio.get_running_loop().time() >= deadline:
        raise NotSent(f"{what} was not sent: its deadline had passed", operation=what)
    else:
        try:
            async with asyncio.timeout_at(deadline):
                await slots.acquire()
        except TimeoutError:
            raise NotSent(
                f"{what} was not sent: every request slot stayed busy until its deadline",
                operation=what,
            ) from None
    try:
        sent()
        yield
    finally:
        slots.release()


def send_deadline() -> float | None:
    """The loop time requests made now must be sent by, if any."""
    return _DEADLINE.get()
