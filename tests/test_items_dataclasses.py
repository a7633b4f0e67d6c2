"""DataclassItems: dataclasses stored as JSON, every declared type kept on the way back."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssshelf import CManager, Collection, Desc
from ssshelf.errors import (
    ConfigurationError,
    CorruptItemError,
    InvalidKeyError,
    SerializationError,
)
from ssshelf.items import DataclassItems
from ssshelf.storages.base import Storage

from .items_support import (
    FIELD_NAMES,
    Address,
    Colour,
    Record,
    example_fields,
    records,
    same_values,
)

ITEMS = DataclassItems(Record, pk="id")


@given(records(Record, Address))
def test_every_declared_type_round_trips(record: Record) -> None:
    again = ITEMS.deserialize_item(ITEMS.serialize_item(record))
    assert again == record
    same_values(again, record, FIELD_NAMES)


@given(records(Record, Address))
def test_the_stored_form_is_plain_json_and_the_same_for_equal_records(record: Record) -> None:
    data = ITEMS.serialize_item(record)
    assert isinstance(json.loads(data), dict)
    shuffled = dataclasses.replace(
        record, tags=set(reversed(list(record.tags))), frozen=frozenset(sorted(record.frozen))
    )
    assert ITEMS.serialize_item(shuffled) == data, "sets are written in one fixed order"


def test_what_the_json_looks_like() -> None:
    record = Record(**example_fields(Address))
    assert ITEMS.to_json(record) == {
        "id": "r1",
        "at": "2024-05-01T12:30:00+02:00",
        "day": "2024-05-01",
        "alarm": "07:15:00",
        "price": "9.90",
        "uid": "12345678-1234-5678-1234-567812345678",
        "blob": "AP9ieXRlcw==",
        "tags": ["a", "b"],
        "frozen": [1, 3],
        "pair": [1, "one"],
        "floats": [0.5, -0.0],
        "home": {"street": "1 Main St", "postcode": "12345"},
        "history": [{"street": "Old Rd", "postcode": None}],
        "scores": {"x": 1},
        "by_number": {"2": "2.50"},
        "note": None,
        "colour": "green",
        "flag": True,
        "extra": {"free": ["json", 1, None]},
    }


# -- declarations that cannot round-trip are refused at once -------------------------


@dataclass
class WithTimedelta:
    id: str
    wait: timedelta


@dataclass
class WithUnion:
    id: str
    either: int | str


@dataclass
class WithTupleKeys:
    id: str
    grid: dict[tuple[int, int], str]


class Opaque:
    pass


@dataclass
class WithOpaque:
    id: str
    thing: Opaque


@dataclass
class FloatPk:
    id: float


@dataclass
class Later:
    id: str
    other: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821


class Mixed(enum.Enum):
    ONE = 1
    POINT = (1, 2)


@dataclass
class WithMixedEnum:
    id: str
    mixed: Mixed


@pytest.mark.parametrize(
    ("cls", "pk", "message"),
    [
        (dict, "id", "DataclassItems needs a dataclass, got <class 'dict'>"),
        (Record, "pk", "Record has no field 'pk' to use as the pk (its fields: id, at, day"),
        (WithTimedelta, "id", "WithTimedelta.wait: type timedelta cannot be stored as JSON"),
        (WithUnion, "id", "WithUnion.either: the union int | str is ambiguous in JSON"),
        (WithTupleKeys, "id", "WithTupleKeys.grid: dict keys of type tuple[int, int] cannot be"),
        (WithOpaque, "id", "WithOpaque.thing: type"),
        (FloatPk, "id", "FloatPk.id is declared as float; a pk field must be str, int or UUID"),
        (Later, "id", "cannot read the type hints of Later: NameError"),
        (WithMixedEnum, "id", "Mixed.POINT has a tuple value"),
    ],
)
def test_a_declaration_that_cannot_round_trip_is_a_configuration_error(
    cls: Any, pk: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        DataclassItems(cls, pk=pk)
    assert message in str(caught.value)


# -- writing checks every value against its type -----------------------------------


def good(**changes: Any) -> Record:
    return dataclasses.replace(Record(**example_fields(Address)), **changes)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (good(price=9.9), "price: expected Decimal, got float 9.9"),
        (good(day=datetime(2024, 1, 1)), "day: expected date, got datetime"),
        (good(home=Address(street=5)), "home.street: expected str, got int 5"),  # type: ignore[arg-type]
        (good(history=[Address("a"), "b"]), "history[1]: expected Address, got str 'b'"),
        (good(by_number={"2": Decimal(1)}), "by_number: key '2': expected int key, got str '2'"),
        (good(by_number={True: Decimal(1)}), "expected int key, got bool True"),
        (good(scores={"x": "1"}), "scores['x']: expected int, got str '1'"),
        (good(floats=(float("nan"),)), "floats[0]: nan cannot be stored: JSON has no NaN"),
        (good(pair=(1,)), "pair: expected a tuple of 2, got tuple (1,)"),
        (good(tags=["a"]), "tags: expected set, got list"),
        (good(flag=1), "flag: expected bool, got int 1"),
        (good(colour="green"), "colour: expected Colour, got str 'green'"),
        (good(extra={"x": object()}), "Object of type object is not JSON serializable"),
        (good(extra={"x": float("inf")}), "Out of range float values are not JSON compliant"),
        (good(note="\ud800"), "surrogates not allowed"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_serialization_error_naming_the_field(
    record: Record, message: str
) -> None:
    with pytest.raises(SerializationError) as caught:
        ITEMS.serialize_item(record)
    assert message in str(caught.value)


def test_an_item_of_another_class_or_a_bad_pk_is_an_invalid_key() -> None:
    with pytest.raises(InvalidKeyError, match=r"DataclassItems\(Record, pk='id'\) stores Record"):
        ITEMS.get_pk({"id": "x"})  # type: ignore[arg-type]
    with pytest.raises(
        InvalidKeyError, match=re.escape("Record.id must be a non-empty str or an int")
    ):
        ITEMS.get_pk(good(id=None))
    with pytest.raises(InvalidKeyError, match=re.escape("Record.id must not be empty")):
        ITEMS.get_pk(good(id=""))
    with pytest.raises(InvalidKeyError, match="stores Record items, got dict"):
        ITEMS.serialize_item({})  # type: ignore[arg-type]


# -- reading: defaults, unknown fields, strict types ---------------------------------


@dataclass
class Book:
    isbn: str
    title: str
    shelf: str = "new arrivals"
    seen: list[str] = field(default_factory=list)
    slug: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.slug = self.title.lower().replace(" ", "-")


BOOKS = DataclassItems(Book, pk="isbn")


def test_missing_fields_take_defaults_unknown_ones_are_ignored_init_false_is_computed() -> None:
    stored = b'{"isbn": "1", "title": "Old Record", "removed_since": 3}'
    assert BOOKS.deserialize_item(stored) == Book("1", "Old Record")
    assert BOOKS.deserialize_item(stored).slug == "old-record"
    assert json.loads(BOOKS.serialize_item(Book("2", "A B"))) == {
        "isbn": "2",
        "title": "A B",
        "shelf": "new arrivals",
        "seen": [],
    }


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (b'{"isbn": "1"}', "Book lacks the field(s) title"),
        (b'{"isbn": "1", "title": 5}', "title: expected str, got int 5"),
        (b'{"isbn": "1", "title": "t", "seen": "abc"}', "seen: expected an array for list"),
        (b"[1]", "expected an object for Book, got list [1]"),
    ],
)
def test_a_stored_item_that_does_not_fit_is_a_value_error(stored: bytes, message: str) -> None:
    with pytest.raises(ValueError, match="stored Book does not fit") as caught:
        BOOKS.deserialize_item(stored)
    assert message in str(caught.value)


@dataclass
class Exotic:
    id: int
    level: Literal["low", "high"]
    code: Annotated[str, "a note for someone else"]
    anything: Any
    bare: list  # type: ignore[type-arg]
    empty: tuple[()]
    when_by_day: dict[date, datetime]
    colours: dict[Colour, int]
    ids: dict[UUID, str]
    prices: dict[Decimal, str]
    stamps: dict[datetime, int]


def test_less_common_types_round_trip() -> None:
    items = DataclassItems(Exotic, pk="id")
    value = Exotic(
        id=7,
        level="high",
        code="x",
        anything={"a": [1, None]},
        bare=[1, "two"],
        empty=(),
        when_by_day={date(2024, 1, 2): datetime(2024, 1, 2, 3)},
        colours={Colour.RED: 1},
        ids={UUID(int=1): "one"},
        prices={Decimal("1.5"): "x"},
        stamps={datetime(2024, 1, 1): 1},
    )
    assert items.get_pk(value) == "7"
    assert items.deserialize_item(items.serialize_item(value)) == value
    with pytest.raises(SerializationError, match="level: expected one of"):
        items.serialize_item(dataclasses.replace(value, level="medium"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'blue' is not a value of Colour"):
        items.deserialize_item(items.serialize_item(value).replace(b'"red"', b'"blue"'))
    with pytest.raises(ValueError, match="colours: key 'r': 'r' is not a value of Colour"):
        items.deserialize_item(
            items.serialize_item(value).replace(b'"colours":{"red":1}', b'"colours":{"r":1}')
        )
    stored = ITEMS.serialize_item(good()).replace(b'"by_number":{"2"', b'"by_number":{"02"')
    with pytest.raises(ValueError, match="by_number: key '02': not a valid int key: '02'"):
        ITEMS.deserialize_item(stored)


@dataclass
class Node:
    name: str
    children: list[Node] = field(default_factory=list)


@given(
    st.recursive(
        st.builds(Node, st.text(max_size=5)),
        lambda kids: st.builds(Node, st.text(max_size=5), st.lists(kids, max_size=3)),
        max_leaves=10,
    )
)
def test_a_recursive_dataclass_round_trips(tree: Node) -> None:
    items = DataclassItems(Node, pk="name")
    assert items.deserialize_item(items.serialize_item(tree)) == tree


@dataclass
class Ticket:
    id: UUID
    title: str


def test_a_uuid_pk_is_stored_as_its_string() -> None:
    ticket = Ticket(UUID(int=5), "t")
    assert DataclassItems(Ticket, pk="id").get_pk(ticket) == str(UUID(int=5))


# -- through a manager, on every backend ---------------------------------------------


class Newest(Collection):
    def key(self, item: Record) -> Any:
        return (Desc(item.at), item.id)


class ByTag(Collection):
    def key(self, item: Record) -> Any:
        return [(tag,) for tag in item.tags]


class Records(CManager):
    item_manager = DataclassItems(Record, pk="id")
    namespace = "records"
    newest = Newest()
    by_tag = ByTag()


async def test_a_manager_returns_the_same_typed_record(storage: Storage) -> None:
    first = Record(**example_fields(Address))
    second = dataclasses.replace(first, id="r2", at=first.at + timedelta(days=1), tags={"b"})
    manager = Records(storage)
    await manager.add_items([first, second])
    again = await manager.get_item("r1")
    assert again == first
    same_values(again, first, FIELD_NAMES)
    page = await manager.newest.get_items()
    assert page["items"] == [second, first]
    assert [r.id async for r in manager.by_tag.iter_items(prefix_parts=["b"])] == ["r1", "r2"]

    def later(record: Record) -> Record:
        return dataclasses.replace(record, alarm=time(8), note="moved")

    updated = await manager.update_item("r1", later)
    assert updated.alarm == time(8) and (await manager.get_item("r1")).note == "moved"


async def test_bad_items_fail_before_any_request(storage: Storage) -> None:
    manager = Records(storage)
    with pytest.raises(InvalidKeyError):
        await manager.add_item({"id": "x"})
    with pytest.raises(SerializationError, match="price: expected Decimal"):
        await manager.add_item(good(price=1.5))
    assert (await storage.list("")).keys == []


async def test_a_stored_item_that_no_longer_fits_is_a_corrupt_item(storage: Storage) -> None:
    manager = Records(storage)
    await manager.add_item(good())
    key = manager.layout.item_key("r1")
    stored = await storage.get(key)
    assert stored is not None
    await storage.put(key, stored.data.replace(b'"price":"9.90"', b'"price":9.9'))
    with pytest.raises(
        CorruptItemError, match=re.escape("price: expected Decimal as a string, got float 9.9")
    ) as caught:
        await manager.get_item("r1")
    assert caught.value.key == key
