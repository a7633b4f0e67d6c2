"""One item shape declared three ways (dataclass, pydantic, msgspec) and values for it.

The shape holds every type the typed item managers promise to keep:
datetimes naive and aware, date, time, Decimal, UUID, bytes, sets, tuples,
nested models, lists, dicts with non-string keys, Optional, an Enum.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pydantic
from hypothesis import strategies as st


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


# -- dataclasses ---------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    street: str
    postcode: str | None = None


@dataclass
class Record:
    id: str
    at: datetime
    day: date
    alarm: time
    price: Decimal
    uid: UUID
    blob: bytes
    tags: set[str]
    frozen: frozenset[int]
    pair: tuple[int, str]
    floats: tuple[float, ...]
    home: Address
    history: list[Address]
    scores: dict[str, int]
    by_number: dict[int, Decimal]
    note: str | None
    colour: Colour
    flag: bool
    extra: dict[str, Any] = field(default_factory=dict)


# -- pydantic --------------------------------------------------------------------------


class PAddress(pydantic.BaseModel):
    street: str
    postcode: str | None = None


class PRecord(pydantic.BaseModel):
    # Every value kept: bytes as base64, and no float is turned into null.
    model_config = pydantic.ConfigDict(
        ser_json_bytes="base64", val_json_bytes="base64", ser_json_inf_nan="constants"
    )

    id: str
    at: datetime
    day: date
    alarm: time
    price: Decimal
    uid: UUID
    blob: bytes
    tags: set[str]
    frozen: frozenset[int]
    pair: tuple[int, str]
    floats: tuple[float, ...]
    home: PAddress
    history: list[PAddress]
    scores: dict[str, int]
    by_number: dict[int, Decimal]
    note: str | None
    colour: Colour
    flag: bool
    extra: dict[str, Any] = {}


# -- msgspec ---------------------------------------------------------------------------


class MAddress(msgspec.Struct, frozen=True):
    street: str
    postcode: str | None = None


class MRecord(msgspec.Struct):
    id: str
    at: datetime
    day: date
    alarm: time
    price: Decimal
    uid: UUID
    blob: bytes
    tags: set[str]
    frozen: frozenset[int]
    pair: tuple[int, str]
    floats: tuple[float, ...]
    home: MAddress
    history: list[MAddress]
    scores: dict[str, int]
    by_number: dict[int, Decimal]
    note: str | None
    colour: Colour
    flag: bool
    extra: dict[str, Any] = {}


# -- values ----------------------------------------------------------------------------

OFFSETS = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def record_fields(address: Any) -> dict[str, Any]:
    """Strategies for every field of the shape, with ``address`` building the nested model."""
    addresses = st.builds(
        address, street=st.text(max_size=20), postcode=st.none() | st.text(max_size=8)
    )
    return {
        "id": st.text(min_size=1, max_size=20),
        "at": OFFSETS.flatmap(lambda tz: st.datetimes(timezones=st.just(tz))),
        "day": st.dates(),
        "alarm": OFFSETS.flatmap(lambda tz: st.times(timezones=st.just(tz))),
        "price": st.decimals(allow_nan=False, allow_infinity=False),
        "uid": st.uuids(),
        "blob": st.binary(max_size=40),
        "tags": st.sets(st.text(max_size=10), max_size=5),
        "frozen": st.frozensets(st.integers(), max_size=5),
        "pair": st.tuples(st.integers(), st.text(max_size=10)),
        "floats": st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4).map(tuple),
        "home": addresses,
        "history": st.lists(addresses, max_size=3),
        "scores": st.dictionaries(st.text(max_size=10), st.integers(), max_size=4),
        "by_number": st.dictionaries(
            st.integers(), st.decimals(allow_nan=False, allow_infinity=False), max_size=4
        ),
        "note": st.none() | st.text(max_size=30),
        "colour": st.sampled_from(Colour),
        "flag": st.booleans(),
        "extra": st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3),
    }


def records(model: Any, address: Any) -> st.SearchStrategy[Any]:
    return st.builds(model, **record_fields(address))


def same_values(a: Any, b: Any, names: list[str]) -> None:
    """``a`` and ``b`` hold equal values of the same types, offsets and digits included."""
    for name in names:
        left, right = getattr(a, name), getattr(b, name)
        assert type(left) is type(right), (name, left, right)
        assert left == right, (name, left, right)
        if isinstance(left, datetime | time):
            assert left.utcoffset() == right.utcoffset(), (name, left, right)
        if isinstance(left, Decimal):
            assert str(left) == str(right), (name, left, right)
        if isinstance(left, tuple):
            assert [type(v) for v in left] == [type(v) for v in right], name


FIELD_NAMES = list(record_fields(Address))


def example_fields(address: Any) -> dict[str, Any]:
    """One fixed value of every field (for the tests through a real store)."""
    return {
        "id": "r1",
        "at": datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=2))),
        "day": date(2024, 5, 1),
        "alarm": time(7, 15),
        "price": Decimal("9.90"),
        "uid": UUID("12345678-1234-5678-1234-567812345678"),
        "blob": b"\x00\xffbytes",
        "tags": {"b", "a"},
        "frozen": frozenset({3, 1}),
        "pair": (1, "one"),
        "floats": (0.5, -0.0),
        "home": address(street="1 Main St", postcode="12345"),
        "history": [address(street="Old Rd")],
        "scores": {"x": 1},
        "by_number": {2: Decimal("2.50")},
        "note": None,
        "colour": Colour.GREEN,
        "flag": True,
        "extra": {"free": ["json", 1, None]},
    }
