"""One simulated run: set up, run the actors, quiesce, check.

:func:`run_schedule` takes :class:`~.schedule.ScheduleParams` (from
:func:`~.schedule.draw`) and returns a :class:`RunResult` with the violations
found and the trace.  A run is a pure function of its parameters: nothing in
it reads the wall clock, ``os.urandom`` or the global ``random`` module, and
every random choice comes from generators seeded from the schedule's seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import warnings
from collections.abc import Coroutine, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from ...errors import ConflictError
from ...managers import CManager
from ...storages.base import Storage
from ...storages.cached import CachedStorage
from ...storages.retrying import RetryingStorage
from .actors import NEEDS_CONDITIONAL, WRITER_OPS, Actor, Stage
from .checks import Checker, Violation
from .history import History, Op
from .loop import LivenessError, VirtualTimeLoop
from .schedule import ActorSpec, ScheduleParams
from .scheduler import CURRENT_OP, ActorState, Scheduler
from .store import EPOCH, DirectStorage, SimStore
from .trace import Trace
from .workload import DefaultWorkload, Workload

log = logging.getLogger("ssshelf")


@dataclass
class RunResult:
    """What one run found."""

    params: ScheduleParams
    violations: list[Violation]
    trace: Trace
    history: History
    requests: int
    #: Simulated seconds the run took.
    simulated: float
    #: What the event loop reported ("Task exception was never retrieved")
    #: and warnings raised during the run ("coroutine ... was never
    #: awaited").  They depend on garbage collection, so they are kept out
    #: of the trace and do not fail a run.
    loop_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


_CLASSES: dict[tuple[Any, ...], type[CManager]] = {}


def manager_class(
    base: type[CManager], lease: float, read_repair: bool, **settings: int | None
) -> type[CManager]:
    """``base`` with the schedule's ``unique_lease`` and ``read_repair``, and
    the given class attributes (``bulk_batch=500``; None: the class's own)."""
    wanted = {"unique_lease": lease, "read_repair": read_repair}
    wanted.update({k: v for k, v in settings.items() if v is not None})
    key = (base, *sorted(wanted.items()))
    found = _CLASSES.get(key)
    if found is None:
        if all(getattr(base, name) == value for name, value in wanted.items()):
            found = base
        else:
            attrs = {**wanted, "__module__": base.__module__}
            found = cast("type[CManager]", type(base.__name__, (base,), attrs))
        _CLASSES[key] = found
    return found


class _TraceLog(logging.Handler):
    """Puts the library's log records into the trace."""

    def __init__(self, trace: Trace, loop: VirtualTimeLoop) -> None:
        super().__init__(logging.DEBUG)
        self.trace = trace
        self.loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        op = CURRENT_OP.get()
        who = op.actor if op is not None else "-"
        self.trace.add(self.loop.time(), who, f"log {record.levelname}: {record.getMessage()}")


@contextlib.contextmanager
def _library_log_into(trace: Trace, loop: VirtualTimeLoop) -> Iterator[None]:
    handler = _TraceLog(trace, loop)
    propagate, level = log.propagate, log.level
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
        log.setLevel(level)


class _Run:
    def __init__(self, params: ScheduleParams, workload: Workload) -> None:
        self.params = params
        self.workload = workload
        self.loop = VirtualTimeLoop(time_limit=params.time_limit)
        self.loop.set_task_factory(self._task_factory)
        self.loop_errors: list[str] = []
        self.loop.set_exception_handler(self._loop_error)
        self.tasks: list[asyncio.Task[Any]] = []
        self.store = SimStore(params.quirks, self.loop.time)
        self.trace = Trace()
        base = manager_class(workload.manager, params.lease, False)
        self.checker: Checker
        self.history = History(on_quiet=lambda pk, now: self.checker.on_quiet(pk, now))
        self.checker = Checker(
            self.store,
            self.history,
            self.trace,
            workload,
            base,
            self.loop.time,
            precise=params.precise,
            lease=params.lease,
        )
        self.scheduler = Scheduler(
            self.loop,
            self.store,
            random.Random(f"{params.seed}/fates"),
            params.faults,
            params.timing,
            self.history,
            self.trace,
        )
        conditional = params.quirks.conditional_put
        weights = params.writer_ops or WRITER_OPS
        pks = tuple(workload.pks[: params.pks] if params.pks else workload.pks)
        self.stage = Stage(
            loop=self.loop,
            history=self.history,
            trace=self.trace,
            workload=workload,
            conditional=conditional,
            writer_ops={
                k: v for k, v in weights.items() if conditional or k not in NEEDS_CONDITIONAL
            }
            or {"add": 1.0},
            pks=pks,
            bulk_pool=(*pks, *workload.bulk_pks),
            bulk_items=params.bulk_items,
            burst=params.burst,
            truth=self.checker.truth,
            on_end=self.checker.on_end,
        )

    # -- loop plumbing -----------------------------------------------------------

    def _task_factory(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        context = kwargs.get("context")
        op: Op | None = context.get(CURRENT_OP) if context is not None else CURRENT_OP.get()
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        self.tasks.append(task)
        if op is not None:
            self.history.task_started(op)
            history, now = self.history, loop.time
            task.add_done_callback(lambda _: history.task_done(op, now()))
        return task

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        detail = f": {type(exception).__name__}: {exception}" if exception else ""
        self.loop_errors.append(f"{context.get('message')}{detail}")

    # -- phases ----------------------------------------------------------------

    def execute(self) -> RunResult:
        params = self.params
        with _library_log_into(self.trace, self.loop), warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                self.loop.run_until_complete(self._setup())
                finished = self._run_actors()
                if finished:
                    self.loop.run_until_complete(self._final_checks())
                self.checker.check_history()
            finally:
                self._close()
        self.loop_errors += [f"{w.category.__name__}: {w.message}" for w in seen]
        violations = sorted(self.checker.violations, key=lambda v: v.at)
        return RunResult(
            params,
            violations,
            self.trace,
            self.history,
            self.scheduler.requests,
            self.loop.time(),
            self.loop_errors,
        )

    async def _setup(self) -> None:
        wl = self.workload
        manager = self.checker.clean_manager(DirectStorage(self.store, by="setup"))
        for pk in wl.counter_pks:
            await manager.add_item(wl.new_counter(pk, "setup"))
        rng = random.Random(f"{self.params.setup_seed}/setup")
        pks = list(wl.pks)
        for pk in rng.sample(pks, min(self.params.preload, len(pks))):
            item = wl.new_item(rng, pk, "setup", uniques=self.params.quirks.conditional_put)
            with contextlib.suppress(ConflictError):  # a unique value drawn twice
                await manager.add_item(item)

    def _make_actor(self, spec: ActorSpec) -> Actor:
        state = ActorState(spec.name)
        storage: Storage = self.scheduler.client(state, spec.slots)
        if "retrying" in spec.stack:
            storage = RetryingStorage(storage, rng=random.Random(f"{spec.seed}/retries"))
        if spec.stack.endswith("cached"):
            storage = CachedStorage(storage, ttl=spec.ttl, clock=self.loop.time)
        cls = manager_class(
            self.workload.manager,
            self.params.lease,
            spec.read_repair,
            bulk_batch=spec.bulk_batch,
            max_concurrency=spec.max_concurrency,
        )
        loop, skew = self.loop, spec.skew
        manager = cls(
            storage,
            clock=lambda: EPOCH + loop.time() + skew,
            rng=random.Random(f"{spec.seed}/manager"),
        )
        return Actor(spec, self.stage, manager, state)

    def _run_actors(self) -> bool:
        actors = [self._make_actor(spec) for spec in self.params.actors]

        async def everyone() -> None:
            for actor in actors:
                actor.state.task = asyncio.ensure_future(actor.run())
            await asyncio.gather(*(a.state.task for a in actors if a.state.task is not None))
            await self._quiesce()

        try:
            self.loop.run_until_complete(everyone())
        except LivenessError as exc:
            stuck = [f"{op.id} {op.kind}({op.args})" for op in self.history.ops if op.ended is None]
            self.checker.violation(
                exc.at,
                "liveness",
                f"{exc}; still running: {', '.join(stuck) or 'nothing'}"
                f"; requests in flight: {self.scheduler.in_flight}",
            )
            return False
        return True

    async def _quiesce(self) -> None:
        """Let every request still on its way land, and stray tasks finish."""
        # Polling costs nothing in virtual time, and nothing can signal "all landed".
        while self.scheduler.in_flight or any(op.tasks for op in self.history.ops):  # noqa: ASYNC110
            await asyncio.sleep(self.params.timing.max_late / 10)

    async def _final_checks(self) -> None:
        checker = self.checker
        checker.expect_all_quiet(self.loop.time(), "at the end")
        await checker.check_visibility()
        await checker.check_final()

    def _close(self) -> None:
        loop = self.loop
        loop.lift_limits()
        pending = [task for task in self.tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            with contextlib.suppress(LivenessError):
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        with contextlib.suppress(LivenessError):
            loop.run_until_complete(loop.shutdown_asyncgens())
        self._unretrieved_exceptions()
        loop.close()

    def _unretrieved_exceptions(self) -> None:
        """Report tasks whose exception nobody retrieved, now rather than when the
        garbage collector finds them (which depends on the process, not the seed)."""
        for task in self.tasks:
            if task.done() and not task.cancelled() and getattr(task, "_log_traceback", False):
                error = task.exception()  # retrieving it: no log from the collector
                self.loop_errors.append(
                    f"Task exception was never retrieved: {type(error).__name__}: {error}"
                )


def run_schedule(params: ScheduleParams, workload: Workload | None = None) -> RunResult:
    """Run one schedule and check it.  Deterministic: same params, same result."""
    return _Run(params, workload if workload is not None else DefaultWorkload()).execute()


def timed(params: ScheduleParams, workload: Workload | None = None) -> tuple[RunResult, float]:
    """:func:`run_schedule` plus the wall-clock seconds it took (for reports only)."""
    started = time.perf_counter()
    result = run_schedule(params, workload)
    return result, time.perf_counter() - started
