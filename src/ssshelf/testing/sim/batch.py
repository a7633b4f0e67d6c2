"""Many schedules, optionally over several worker processes."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .report import Summary, summarize
from .run import run_schedule
from .schedule import draw


def run_one(job: tuple[int, str]) -> Summary:
    """One schedule of the default workload, summarised (a worker's job)."""
    seed, profile = job
    return summarize(run_schedule(draw(seed, profile)))


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
    on_failure: Callable[[Summary], None] | None = None,
) -> BatchResult:
    """Run every seed under every profile; ``jobs`` > 1 fans out to processes.

    A failing schedule is one with at least one violation; its summary goes
    to ``on_failure`` as soon as it is known.
    """
    work = [(seed, profile) for seed in seeds for profile in profiles]
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


def _map(work: list[tuple[int, str]], jobs: int) -> Iterator[Summary]:
    if jobs <= 1 or len(work) < 2:
        yield from map(run_one, work)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs) as pool:
        yield from pool.imap(run_one, work, chunksize=max(1, min(50, len(work) // (jobs * 8))))
