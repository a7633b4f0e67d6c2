"""Many schedules, optionally over several worker processes."""

from __future__ import annotations

import importlib
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .report import Summary, summarize
from .run import run_schedule
from .schedule import draw
from .workload import Workload

Job = tuple[int, str, "type[Workload] | None"]


def run_one(job: Job) -> Summary:
    """One schedule, summarised (a worker's job)."""
    seed, profile, workload = job
    result = run_schedule(draw(seed, profile), workload() if workload else None)
    return summarize(result, workload)


def load_workload(spec: str) -> type[Workload]:
    """``"package.module:ClassName"`` -> that Workload subclass."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(f"a workload is given as module:Class, got {spec!r}")
    found = getattr(importlib.import_module(module_name), name, None)
    if not (isinstance(found, type) and issubclass(found, Workload)):
        raise ValueError(f"{spec} is not a subclass of ssshelf.testing.sim.Workload")
    return found


@dataclass
class BatchResult:
    """The outcome of many schedules."""

    schedules: int = 0
    failures: list[Summary] = field(default_factory=list)
    requests: int = 0
    simulated: float = 0.0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.schedules / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """The last line of a run: ``sim: N schedules, K violations``."""
        return f"sim: {self.schedules} schedules, {len(self.failures)} violations"


def run_batch(
    seeds: Iterable[int],
    profiles: Iterable[str] = ("random",),
    *,
    jobs: int = 1,
    workload: type[Workload] | None = None,
    on_failure: Callable[[Summary], None] | None = None,
) -> BatchResult:
    """Run every seed under every profile; ``jobs`` > 1 fans out to processes.

    ``workload`` (a class importable by the worker processes) replaces the
    default workload.  A failing schedule is one with at least one
    violation; its summary goes to ``on_failure`` as soon as it is known.
    """
    work: list[Job] = [(seed, profile, workload) for seed in seeds for profile in profiles]
    result = BatchResult()
    started = time.perf_counter()
    for summary in _map(work, jobs):
        result.schedules += 1
        result.requests += summary.requests
        result.simulated += summary.simulated
        if summary.violations:
            result.failures.append(summary)
            if on_failure is not None:
                on_failure(summary)
    result.seconds = time.perf_counter() - started
    return result


def _map(work: list[Job], jobs: int) -> Iterator[Summary]:
    if jobs <= 1 or len(work) < 2:
        yield from map(run_one, work)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs) as pool:
        yield from pool.imap(run_one, work, chunksize=max(1, min(50, len(work) // (jobs * 8))))
