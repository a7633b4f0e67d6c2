"""Why a write of an item waits: claims on its unique values left by unfinished writes.

A write claims each unique value of its item (a reservation) before it
commits.  A write that was cut off — the process stopped, crashed, or was
interrupted a second time — leaves its claims behind.  A later write of the
*same* item cannot tell such a claim from one whose write is still in flight
and about to commit, so it waits until the claim is older than the unique
lease (``CManager.unique_lease``, by the store's clock) and then takes it
over.  :func:`unfinished_claims` finds those claims for a set of items, so
that a command can say what it waits for and for how long.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._concurrency import gather_all
from ..envelope import Reservation, decode_envelope, decode_reservation
from ..errors import CorruptItemError
from ..keys import decode_tuple
from ..managers import CManager
from ..reading import CLOCK_RESOLUTION
from ..storages.base import StoredObject, read_fresh


@dataclass(frozen=True)
class Claim:
    """A claim of ``collection`` value ``value`` by an unfinished write of item ``pk``."""

    collection: str
    value: Any
    pk: str
    #: Seconds until a write may take it over (by the store's clock).
    wait: float

    def describe(self) -> str:
        return f"{self.collection} {self.value!r} of item {self.pk!r}"


async def unfinished_claims(
    manager: CManager, items: Iterable[Any], *, made_before: float | None = None
) -> list[Claim]:
    """Claims on the unique values of ``items`` made by a write of the same item
    that is not committed (the stored item, if any, does not hold them) and,
    with ``made_before``, stamped earlier than that by their writer's clock
    (``manager.clock``): a command leaves out its own writes in flight that
    way.  Reads every such value's reservation and, where one is found, the
    item, past any cache; sorted by ``wait``, longest first."""
    wanted: list[tuple[str, str, str]] = []
    for item in items:
        plan = manager.planner.plan(item)
        wanted += [(c, enc, plan.pk) for c, enc in plan.values()]
    layout = manager.layout
    keys = [layout.reservation_key(c, enc) for c, enc, _ in wanted]
    found = await _read_all(manager, keys)
    held: list[tuple[str, str, str, StoredObject]] = []
    for (c, enc, pk), key, obj in zip(wanted, keys, found, strict=True):
        if obj is not None and _by_a_write_of(obj, key, pk, made_before):
            held.append((c, enc, pk, obj))
    owners = await _read_all(manager, [layout.item_key(pk) for _, _, pk, _ in held])
    lease = manager.unique_lease
    claims: list[Claim] = []
    for (c, enc, pk, obj), owner in zip(held, owners, strict=True):
        if owner is not None:
            try:
                envelope = decode_envelope(owner.data, key=owner.key)
            except CorruptItemError:
                continue
            if not envelope.removed and envelope.reservation_version(c, enc) == obj.version:
                continue  # the stored item holds it: not a leftover
        age = obj.age
        wait = lease + CLOCK_RESOLUTION - (age if age is not None else 0.0)
        value = decode_tuple(enc)
        claims.append(Claim(c, value[0] if len(value) == 1 else value, pk, max(0.0, wait)))
    return sorted(claims, key=lambda claim: -claim.wait)


def _by_a_write_of(obj: StoredObject, key: str, pk: str, made_before: float | None) -> bool:
    try:
        holder: Reservation = decode_reservation(obj.data, key=key)
    except CorruptItemError:
        return False
    early = made_before is None or holder.at < made_before
    return not holder.released and holder.pk == pk and early


async def _read_all(manager: CManager, keys: list[str]) -> list[StoredObject | None]:
    reads = (read_fresh(manager.storage, key) for key in keys)
    return await gather_all(reads, manager.max_concurrency)


def waiting_note(claims: list[Claim], lease: float) -> str:
    """What an import says while it waits for ``claims`` (longest wait first)."""
    shown = ", ".join(claim.describe() for claim in claims[:3])
    more = f" and {len(claims) - 3} more" if len(claims) > 3 else ""
    values = "value is" if len(claims) == 1 else "values are"
    return (
        f"import: waiting up to {claims[0].wait:.0f} s: {len(claims)} unique {values} still "
        f"claimed by earlier writes of the same items that did not commit ({shown}{more}): "
        "writes cut off by a crash or an interruption, or still in flight elsewhere. "
        f"A claim is honoured for the unique lease ({lease:g} s) in case its write is still "
        "in flight, then taken over. An import stopped by a second Ctrl-C (or killed) "
        "leaves such claims; a single Ctrl-C lets the writes in flight finish instead."
    )
