"""A schedule's shape: everything about a run that the seed decides up front.

:func:`draw` turns ``(seed, profile)`` into :class:`ScheduleParams`: the
store's quirks, the fault rates and delays of the scheduler, the unique lease,
and the actors (role, storage stack, clock skew, how many operations, their
own seed).  A *profile* biases these draws toward one feature (a store
without conditional writes, read caches, timeouts, …); ``"random"`` draws
everything freely.  The rest of the run (every request's fate, every
actor's choices) follows from the same seed, so ``(seed, profile)`` replays.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .store import Quirks

ROLES = ("writer", "reader", "maintenance")


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Per-request probabilities of each fate other than "run now".

    ``refuse``: fails before it is sent (``StorageUnavailable``, not applied).
    ``lose_answer``: applied, then the answer is lost (``OutcomeUnknown`` for a
    write, ``StorageUnavailable`` for a read).  ``time_out``: the caller's
    client gives up waiting (as ``lose_answer``) and the request lands later,
    within ``Timing.max_late``.  ``slow``: a long delay the caller waits out.
    ``reorder``: a moderate delay, so requests overtake each other.
    ``kill``: the actor dies at this request (as by SIGKILL).
    ``hold_answer``: a write applied at once, then its answer held (up to
    ``Timing.hold_max``) and lost: a connection that hangs after the store
    acted, so that others can write many times before the caller hears.
    """

    refuse: float = 0.0
    lose_answer: float = 0.0
    time_out: float = 0.0
    slow: float = 0.0
    reorder: float = 0.0
    kill: float = 0.0
    hold_answer: float = 0.0

    def describe(self) -> str:
        rates = [
            f"{name}={value:.3f}"
            for name, value in (
                ("refuse", self.refuse),
                ("lose", self.lose_answer),
                ("timeout", self.time_out),
                ("slow", self.slow),
                ("reorder", self.reorder),
                ("kill", self.kill),
                ("hold", self.hold_answer),
            )
            if value
        ]
        return " ".join(rates) or "none"


@dataclass(frozen=True, slots=True)
class Timing:
    """Delays, in simulated seconds.

    A request normally lands within ``latency`` and answers as long after.
    Reordered ones land up to ``reorder_max`` later, slow ones up to
    ``slow_max``; a timed-out one answers after ``client_timeout``.  A request
    whose caller gave up (cancelled, timed out, killed) still lands at its
    time, but never later than ``max_late`` after the give-up: the bound the
    protocol may assume on how long a request can be on its way.  An answer
    held (``FaultRates.hold_answer``) is lost up to ``hold_max`` after landing.
    """

    latency: float = 0.002
    reorder_max: float = 0.05
    slow_max: float = 2.0
    client_timeout: float = 0.5
    max_late: float = 5.0
    hold_max: float = 1.0


@dataclass(frozen=True, slots=True)
class ActorSpec:
    """One actor: its own manager (its own process memory) and storage stack.

    ``stack``: ``"plain"``, ``"retrying"`` (a ``RetryingStorage``),
    ``"cached"`` (a ``CachedStorage``; ``ttl`` None serves entries until
    evicted) or ``"retrying+cached"`` (the cache in front of the retries).
    ``skew``: seconds its clock is ahead of the store's (negative: behind).
    ``wait_for``: probability that an operation is wrapped in
    ``asyncio.wait_for`` with a timeout drawn from ``wait_for_timeout``.

    Settings of its manager class (None: the class's own): ``bulk_batch``
    and ``max_concurrency`` (``CManager``'s attributes of those names).
    ``slots``: at most this many requests of its client in flight at once
    (as ``S3Storage``'s connection pool); the others wait in a FIFO queue,
    not sent (None: no bound).
    """

    name: str
    role: str
    seed: int
    ops: int
    stack: str = "plain"
    ttl: float | None = None
    skew: float = 0.0
    think: float = 0.01
    wait_for: float = 0.0
    wait_for_timeout: tuple[float, float] = (0.001, 0.05)
    read_repair: bool = False
    bulk_batch: int | None = None
    max_concurrency: int | None = None
    slots: int | None = None

    def describe(self) -> str:
        text = f"{self.name}: {self.role} ops={self.ops} stack={self.stack}"
        if self.stack.endswith("cached"):
            text += f" ttl={self.ttl}"
        if self.skew:
            text += f" skew={self.skew:+.1f}s"
        if self.wait_for:
            low, high = self.wait_for_timeout
            text += f" wait_for={self.wait_for:.2f}@{low:g}-{high:g}s"
        if self.read_repair:
            text += " read_repair"
        for name in ("bulk_batch", "max_concurrency", "slots"):
            value = getattr(self, name)
            if value is not None:
                text += f" {name}={value}"
        return text + f" think={self.think:g}s seed={self.seed}"


@dataclass(frozen=True, slots=True)
class ScheduleParams:
    """Everything the seed decided before the run starts."""

    seed: int
    profile: str
    quirks: Quirks
    faults: FaultRates
    timing: Timing
    lease: float
    actors: tuple[ActorSpec, ...]
    #: Seed of the set-up (items stored before the actors start).
    setup_seed: int = 0
    #: Items stored before the actors start.
    preload: int = 2
    #: The run fails (liveness) if it needs more simulated seconds than this.
    time_limit: float = 3600.0
    #: Operation weights for writers (name -> weight); see actors.WRITER_OPS.
    writer_ops: dict[str, float] = field(default_factory=dict)
    #: Writers choose among the first this many pks of the workload (0: all).
    pks: int = 0
    #: Items of a bulk load (writer op ``add_many``): at least, at most.
    bulk_items: tuple[int, int] = (4, 24)
    #: Concurrent writes of a burst (writer op ``burst``): at least, at most.
    burst: tuple[int, int] = (10, 40)
    #: Check that every error is true, and that a write fails or ends
    #: unknown only when a fault touched it (``precision``, ``overload``).
    precise: bool = True

    def describe(self) -> list[str]:
        lines = [
            f"seed={self.seed} profile={self.profile} lease={self.lease:g}s preload={self.preload}"
            + (f" pks={self.pks}" if self.pks else ""),
            f"store quirks: {self.quirks.describe()}",
            f"faults: {self.faults.describe()}",
            f"timing: latency={self.timing.latency:g}s reorder<={self.timing.reorder_max:g}s "
            f"slow<={self.timing.slow_max:g}s client_timeout={self.timing.client_timeout:g}s "
            f"max_late={self.timing.max_late:g}s",
        ]
        if self.faults.hold_answer:
            lines[-1] += f" hold<={self.timing.hold_max:g}s"
        if self.writer_ops:
            weights = " ".join(f"{k}={v:g}" for k, v in self.writer_ops.items())
            lines.append(f"writer ops: {weights}")
            if "add_many" in self.writer_ops:
                lines[-1] += " bulk_items={}-{}".format(*self.bulk_items)
            if "burst" in self.writer_ops:
                lines[-1] += " burst={}-{}".format(*self.burst)
        if self.precise:
            lines.append("checks: every error true (precision), none from queueing (overload)")
        lines += [f"  {actor.describe()}" for actor in self.actors]
        return lines

    def shrunk(
        self, keep: tuple[int, ...] | None = None, max_ops: int | None = None
    ) -> ScheduleParams:
        """The same schedule with fewer actors and/or fewer operations each."""
        actors = self.actors if keep is None else tuple(self.actors[i] for i in keep)
        if max_ops is not None:
            actors = tuple(replace(a, ops=min(a.ops, max_ops)) for a in actors)
        return replace(self, actors=actors)


# -- drawing ------------------------------------------------------------------


def _draw_faults(rng: random.Random, scale: float) -> FaultRates:
    def rate(top: float) -> float:
        return rng.choice((0.0, 0.0, rng.uniform(0, top))) * scale

    return FaultRates(
        refuse=rate(0.05),
        lose_answer=rate(0.05),
        time_out=rate(0.03),
        slow=rate(0.03),
        reorder=rate(0.3),
        kill=rate(0.01),
    )


def _draw_quirks(rng: random.Random) -> Quirks:
    conditional_put = rng.random() > 0.1
    return Quirks(
        conditional_put=conditional_put,
        conditional_delete=rng.random() > 0.25,
        content_hash_versions=rng.random() < 0.3,
        conflict_rate=rng.choice((0.0, 0.0, 0.0, rng.uniform(0.1, 0.5))),
    )


def _draw_stack(rng: random.Random, lease: float) -> tuple[str, float | None]:
    stack = rng.choices(("plain", "retrying", "cached", "retrying+cached"), weights=(5, 3, 1.5, 1))[
        0
    ]
    ttl = None
    if stack.endswith("cached") and rng.random() < 0.5:
        ttl = rng.choice((0.05, lease / 4, lease * 2))
    return stack, ttl


def _draw_actors(
    rng: random.Random,
    lease: float,
    *,
    writers: tuple[int, int],
    readers: tuple[int, int],
    maintenance: tuple[int, int],
    ops: tuple[int, int],
    skew: float,
    wait_for: float,
    think: float,
) -> tuple[ActorSpec, ...]:
    roles = (
        ["writer"] * rng.randint(*writers)
        + ["reader"] * rng.randint(*readers)
        + ["maintenance"] * rng.randint(*maintenance)
    )
    actors = []
    for index, role in enumerate(roles):
        stack, ttl = _draw_stack(rng, lease)
        actors.append(
            ActorSpec(
                name=f"{role[0]}{index}",
                role=role,
                seed=rng.getrandbits(48),
                ops=rng.randint(*ops) if role != "maintenance" else rng.randint(1, 3),
                stack=stack,
                ttl=ttl,
                skew=rng.choice((0.0, 0.0, 0.0, rng.uniform(-skew, skew))) if skew else 0.0,
                think=think * rng.uniform(0.2, 3),
                wait_for=rng.choice((0.0, 0.0, wait_for)),
                read_repair=role == "reader" and rng.random() < 0.3,
            )
        )
    return tuple(actors)


def _random(seed: int) -> ScheduleParams:
    rng = random.Random(seed)
    lease = rng.choice((30.0, 30.0, 5.0, 1.0))
    faults = _draw_faults(rng, rng.choice((0.0, 0.5, 1.0, 1.0)))
    latency = rng.uniform(0.0005, 0.01)
    timing = Timing(
        latency=latency,
        reorder_max=latency * rng.uniform(3, 30),
        slow_max=rng.choice((0.5, lease / 2, lease * 1.5)),
        client_timeout=rng.uniform(0.05, 2.0),
        max_late=5.0,
    )
    actors = _draw_actors(
        rng,
        lease,
        writers=(1, 3),
        readers=(0, 2),
        maintenance=(0, 1),
        ops=(2, 8),
        skew=60.0,
        wait_for=0.2,
        think=rng.choice((0.005, 0.05, lease / 10)),
    )
    quirks = _draw_quirks(rng)
    # Drawn apart, so that every other draw of a seed is what it was before
    # stores with put_many were simulated.
    quirks = replace(quirks, put_many=random.Random(f"put_many:{seed}").random() < 0.3)
    return ScheduleParams(
        seed=seed,
        profile="random",
        quirks=quirks,
        faults=faults,
        timing=timing,
        lease=lease,
        actors=actors,
        setup_seed=rng.getrandbits(48),
        preload=rng.randint(0, 3),
        pks=rng.choice((0, 0, 2, 3)),
    )


def _quiet_base(
    seed: int, profile: str, ops: tuple[int, int] = (2, 6)
) -> tuple[random.Random, ScheduleParams]:
    """A schedule without faults or quirks: profiles switch on what they need."""
    rng = random.Random(seed)
    lease = rng.choice((30.0, 5.0, 2.0))
    latency = rng.uniform(0.0005, 0.005)
    timing = Timing(latency=latency, reorder_max=latency * 10, slow_max=0.5, client_timeout=0.2)
    actors = _draw_actors(
        rng,
        lease,
        writers=(2, 3),
        readers=(0, 1),
        maintenance=(0, 0),
        ops=ops,
        skew=0.0,
        wait_for=0.0,
        think=rng.choice((0.002, 0.02)),
    )
    actors = tuple(replace(a, stack="plain", ttl=None) for a in actors)
    params = ScheduleParams(
        seed=seed,
        profile=profile,
        quirks=Quirks(),
        faults=FaultRates(reorder=rng.uniform(0, 0.3)),
        timing=timing,
        lease=lease,
        actors=actors,
        setup_seed=rng.getrandbits(48),
        preload=rng.randint(0, 2),
    )
    return rng, params


def _same_pk_unique(seed: int) -> ScheduleParams:
    """Problem 1: writers of the same pks creating and re-adding unique values."""
    rng, p = _quiet_base(seed, "same-pk-unique", ops=(3, 8))
    return replace(
        p,
        pks=2,
        writer_ops={"create": 5, "add": 3, "add_items": 2, "remove": 1},
        faults=replace(p.faults, reorder=rng.uniform(0.2, 0.6)),
    )


def _timeouts(seed: int) -> ScheduleParams:
    """Problem 2: writes wrapped in short timeouts, requests that land late."""
    rng, p = _quiet_base(seed, "timeouts")
    actors = tuple(
        replace(a, wait_for=0.6, wait_for_timeout=(0.001, 0.02)) if a.role == "writer" else a
        for a in p.actors
    )
    return replace(
        p,
        actors=actors,
        faults=replace(p.faults, time_out=rng.uniform(0.02, 0.1), slow=rng.uniform(0, 0.05)),
        timing=replace(p.timing, slow_max=0.1, client_timeout=0.01),
        writer_ops={"create": 2, "add": 4, "add_if_version": 1, "add_items": 1, "remove": 1},
    )


def _lost_answers(seed: int) -> ScheduleParams:
    """Problem 3: lost answers behind RetryingStorage, many update_item writers."""
    rng, p = _quiet_base(seed, "lost-answers")
    actors = tuple(replace(a, stack="retrying") if a.role == "writer" else a for a in p.actors)
    return replace(
        p,
        actors=actors,
        faults=replace(p.faults, lose_answer=rng.uniform(0.1, 0.3)),
        writer_ops={"update_counter": 6, "update": 2, "add_if_version": 2},
    )


def _slow_commits(seed: int) -> ScheduleParams:
    """Problem 4: slow requests against a short lease, unique values contended."""
    rng, p = _quiet_base(seed, "slow-commits", ops=(4, 10))
    lease = rng.choice((1.0, 2.0))
    actors = tuple(replace(a, think=lease * rng.uniform(0.1, 0.6)) for a in p.actors)
    return replace(
        p,
        pks=3,
        lease=lease,
        actors=actors,
        faults=replace(p.faults, slow=rng.uniform(0.1, 0.3)),
        timing=replace(p.timing, slow_max=lease * 3),
        writer_ops={"create": 4, "add": 3, "remove": 2},
    )


def _repair_in_flight(seed: int) -> ScheduleParams:
    """Problem 5: repair and read-repair beside slow writers."""
    rng, p = _quiet_base(seed, "repair-in-flight")
    lease = rng.choice((1.0, 2.0))
    actors = tuple(replace(a, think=lease * rng.uniform(0.1, 0.5)) for a in p.actors)
    extra = (
        ActorSpec("m8", "maintenance", rng.getrandbits(48), ops=rng.randint(1, 3), think=lease),
        ActorSpec(
            "r9",
            "reader",
            rng.getrandbits(48),
            ops=rng.randint(3, 6),
            think=lease / 3,
            read_repair=True,
        ),
    )
    return replace(
        p,
        lease=lease,
        actors=actors + extra,
        faults=replace(p.faults, slow=rng.uniform(0.1, 0.3)),
        timing=replace(p.timing, slow_max=lease * 3),
        writer_ops={"add": 4, "update": 3, "create": 1},
    )


def _replace_same_keys(seed: int) -> ScheduleParams:
    """Problem 6: readers listing while writers replace items with the same keys."""
    rng, p = _quiet_base(seed, "replace-same-keys")
    readers = tuple(
        ActorSpec(f"r{7 + i}", "reader", rng.getrandbits(48), ops=rng.randint(3, 6), think=0.002)
        for i in range(2)
    )
    return replace(
        p,
        actors=p.actors + readers,
        writer_ops={"add_same_keys": 6, "add": 1, "create": 1},
    )


def _no_conditional(seed: int) -> ScheduleParams:
    """Problem 7: a store without conditional writes, two writers of the same pks."""
    _, p = _quiet_base(seed, "no-conditional")
    return replace(
        p,
        quirks=Quirks(conditional_put=False, conditional_delete=False),
        writer_ops={"add": 5, "remove": 1},
    )


def _cached(seed: int) -> ScheduleParams:
    """Problem 8: read caches in front of writers that take over reservations."""
    rng, p = _quiet_base(seed, "cached")
    lease = rng.choice((1.0, 2.0))
    actors = tuple(
        replace(
            a,
            stack="cached",
            ttl=rng.choice((None, lease * 3)),
            think=lease * rng.uniform(0.2, 0.8),
        )
        for a in p.actors
    )
    extra = (
        ActorSpec(
            "m8",
            "maintenance",
            rng.getrandbits(48),
            ops=rng.randint(1, 3),
            think=lease,
            stack="cached",
        ),
    )
    return replace(
        p,
        lease=lease,
        actors=actors + extra,
        writer_ops={"add": 4, "create": 2, "remove": 1},
    )


def _clock_skew(seed: int) -> ScheduleParams:
    """Writers and maintenance whose clocks disagree (DESIGN: judged by the store's clock)."""
    rng, p = _quiet_base(seed, "clock-skew")
    actors = tuple(replace(a, skew=rng.uniform(-60, 60)) for a in p.actors)
    extra = (
        ActorSpec(
            "m8",
            "maintenance",
            rng.getrandbits(48),
            ops=2,
            think=0.05,
            skew=rng.uniform(-60, 60),
        ),
    )
    return replace(p, actors=actors + extra)


def _contention(seed: int) -> ScheduleParams:
    """Many writers updating the two counters at the default settings."""
    rng, p = _quiet_base(seed, "contention")
    latency = rng.uniform(0.01, 0.04)  # a distant store: S3 answers in tens of ms
    writers = tuple(
        ActorSpec(f"w{i}", "writer", rng.getrandbits(48), ops=rng.randint(2, 3), think=0.001)
        for i in range(rng.randint(6, 10))
    )
    return replace(
        p,
        lease=30.0,
        actors=writers,
        writer_ops={"update_counter": 1},
        timing=replace(p.timing, latency=latency, reorder_max=latency * 3),
    )


def _bulk(seed: int) -> ScheduleParams:
    """Bulk loads through ``put_many`` (SQLite's path: ``create_batch``), unique
    values and pks contended, requests lost, timed out, refused, slow or
    killed."""
    rng, p = _quiet_base(seed, "bulk", ops=(3, 8))
    return replace(
        p,
        quirks=replace(p.quirks, put_many=True, content_hash_versions=rng.random() < 0.3),
        pks=rng.choice((0, 3, 4)),
        writer_ops={"add_items": 6, "remove_items": 1, "add": 2, "create": 1, "remove": 1},
        faults=replace(
            p.faults,
            lose_answer=rng.uniform(0, 0.15),
            time_out=rng.uniform(0, 0.05),
            refuse=rng.uniform(0, 0.1),
            slow=rng.uniform(0, 0.05),
            kill=rng.uniform(0, 0.01),
        ),
    )


# -- issue 17: where the simulation did not look --------------------------------


def _settings(rng: random.Random, actor: ActorSpec, *, bulk: bool = False) -> ActorSpec:
    """The actor with its manager's settings drawn (half the time each)."""
    concurrency = rng.choice((None, None, 1, 2, 4, 16))
    batch = rng.choice((None, 2, 3, 5, 8, 16)) if bulk else None
    return replace(actor, max_concurrency=concurrency, bulk_batch=batch)


def _long_history(seed: int) -> ScheduleParams:
    """Case 1: 10-14 writers of one item, so that 8 writes (an item's history)
    land while a write's or a removal's answer is held, then lost."""
    rng, p = _quiet_base(seed, "long-history")
    lease = rng.choice((30.0, 5.0))
    latency = rng.uniform(0.0005, 0.003)
    writers = tuple(
        _settings(
            rng,
            ActorSpec(
                f"w{i}",
                "writer",
                rng.getrandbits(48),
                ops=rng.randint(4, 7),
                think=rng.choice((0.005, 0.02, 0.05)),
            ),
        )
        for i in range(rng.randint(10, 14))
    )
    return replace(
        p,
        lease=lease,
        pks=1,
        actors=writers,
        writer_ops={
            "create": 4,
            "add": 3,
            "update": 2,
            "remove": 3,
            "remove_if_version": 2,
            "add_if_version": 1,
        },
        faults=FaultRates(
            reorder=rng.uniform(0, 0.3),
            hold_answer=rng.uniform(0.1, 0.3),
            lose_answer=rng.choice((0.0, rng.uniform(0, 0.05))),
        ),
        timing=replace(
            p.timing, latency=latency, reorder_max=latency * 5, hold_max=rng.uniform(0.5, 2.5)
        ),
        precise=True,
    )


def _bulk_split(seed: int) -> ScheduleParams:
    """Case 2: bulk loads larger than one ``put_many`` request (the store's
    limit drawn small), requests refused before being sent, beside single
    writes of the same pks; ``bulk_batch`` and ``max_concurrency`` vary."""
    rng, p = _quiet_base(seed, "bulk-split", ops=(2, 5))
    actors = tuple(_settings(rng, a, bulk=True) if a.role == "writer" else a for a in p.actors)
    return replace(
        p,
        quirks=replace(
            p.quirks,
            put_many=True,
            max_put_batch=rng.choice((2, 3, 4, 5, 8, 13, 50)),
            content_hash_versions=rng.random() < 0.3,
        ),
        actors=actors,
        writer_ops={"add_many": 5, "add": 2, "create": 1, "remove": 1, "remove_items": 1},
        bulk_items=(4, 16),
        faults=replace(
            p.faults,
            refuse=rng.uniform(0.02, 0.15),
            lose_answer=rng.choice((0.0, rng.uniform(0, 0.05))),
            time_out=rng.choice((0.0, rng.uniform(0, 0.02))),
        ),
        precise=True,
    )


def _overload(seed: int) -> ScheduleParams:
    """Case 3: bursts of concurrent writes larger than the client gets through
    in a commit window, through a client with a few requests in flight (as
    S3Storage's connection pool) and the rest queued; no faults at all."""
    rng, p = _quiet_base(seed, "overload")
    lease = rng.choice((1.0, 2.0, 5.0))
    latency = rng.uniform(0.015, 0.04)
    writers = tuple(
        _settings(
            rng,
            ActorSpec(
                f"w{i}",
                "writer",
                rng.getrandbits(48),
                ops=1,
                think=0.01,
                slots=rng.choice((1, 2, 4)),
            ),
        )
        for i in range(rng.randint(1, 2))
    )
    # The lease leaves room for one write alone: its requests (about six, one
    # at a time through the fewest slots, each as slow as a reordered answer
    # gets) take at most a quarter of the lease.  A store slower than that for
    # a single write needs a longer lease (docs/consistency.md); what this
    # profile stresses is many writes at once.
    one_write = 6 * latency * 4 / min(a.slots or 1 for a in writers)
    lease = min(c for c in (1.0, 2.0, 5.0, 10.0) if c >= max(lease, 4 * one_write))
    return replace(
        p,
        lease=lease,
        actors=writers,
        writer_ops={"burst": 1},
        burst=(8, 30),
        faults=FaultRates(reorder=rng.uniform(0, 0.2)),
        timing=replace(p.timing, latency=latency, reorder_max=latency * 3),
        precise=True,
    )


def _untrue_errors(seed: int) -> ScheduleParams:
    """Case 5: creates and removes of a few pks beside a repair that purges old
    tombstones; bulk loads of items claiming the same unique value (on a
    store with ``put_many`` in half the seeds)."""
    rng, p = _quiet_base(seed, "untrue-errors", ops=(4, 10))
    lease = rng.choice((1.0, 2.0))
    latency = rng.uniform(0.002, 0.02)
    actors = tuple(
        _settings(rng, replace(a, think=lease * rng.uniform(0.2, 1.2)), bulk=True) for a in p.actors
    )
    repair = ActorSpec(
        "m8", "maintenance", rng.getrandbits(48), ops=rng.randint(4, 10), think=lease / 3
    )
    return replace(
        p,
        lease=lease,
        pks=rng.choice((1, 2, 3)),
        actors=(*actors, repair),
        quirks=replace(p.quirks, put_many=rng.random() < 0.5),
        writer_ops={"create": 4, "remove": 3, "add": 1, "add_items": 2},
        faults=replace(p.faults, reorder=rng.uniform(0.2, 0.6)),
        timing=replace(p.timing, latency=latency, reorder_max=latency * 10),
        precise=True,
    )


#: Profile name -> how a seed becomes a schedule.
PROFILES: dict[str, Callable[[int], ScheduleParams]] = {
    "random": _random,
    "same-pk-unique": _same_pk_unique,
    "timeouts": _timeouts,
    "lost-answers": _lost_answers,
    "slow-commits": _slow_commits,
    "repair-in-flight": _repair_in_flight,
    "replace-same-keys": _replace_same_keys,
    "no-conditional": _no_conditional,
    "cached": _cached,
    "clock-skew": _clock_skew,
    "contention": _contention,
    "bulk": _bulk,
    "long-history": _long_history,
    "bulk-split": _bulk_split,
    "overload": _overload,
    "untrue-errors": _untrue_errors,
}


def draw(seed: int, profile: str = "random") -> ScheduleParams:
    """The schedule ``seed`` gives under ``profile`` (see :data:`PROFILES`)."""
    try:
        make = PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}") from None
    return within_the_assumption(make(seed))


#: How close to its bound a schedule pushes requests that land late.
LATE_SHARE = 0.95


def within_the_assumption(params: ScheduleParams) -> ScheduleParams:
    """The protocol assumes that a request whose caller gave up lands within
    ``unique_lease - commit window`` (half the lease) of the give-up, or never
    (``docs/consistency.md``).  A schedule lets requests land late right up to
    that bound, never past it: past it, no protocol bounded by time holds."""
    bound = LATE_SHARE * params.lease / 2
    return replace(params, timing=replace(params.timing, max_late=bound))
