"""PydanticItems and MsgspecItems: models stored as their own JSON, types kept."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import msgspec
import pydantic
import pytest
from hypothesis import given

from ssshelf import CManager, Collection, Desc
from ssshelf.errors import ConfigurationError, CorruptItemError, InvalidKeyError, SerializationError
from ssshelf.items import MsgspecItems, PydanticItems
from ssshelf.storages.base import Storage

from .items_support import (
    FIELD_NAMES,
    MAddress,
    MRecord,
    PAddress,
    PRecord,
    example_fields,
    records,
    same_values,
)

PYDANTIC = PydanticItems(PRecord, pk="id")
MSGSPEC = MsgspecItems(MRecord, pk="id")


@given(records(PRecord, PAddress))
def test_pydantic_models_round_trip_every_declared_type(record: PRecord) -> None:
    again = PYDANTIC.deserialize_item(PYDANTIC.serialize_item(record))
    assert again == record
    same_values(again, record, FIELD_NAMES)


@given(records(MRecord, MAddress))
def test_msgspec_structs_round_trip_every_declared_type(record: MRecord) -> None:
    again = MSGSPEC.deserialize_item(MSGSPEC.serialize_item(record))
    assert again == record
    same_values(again, record, FIELD_NAMES)


@pytest.mark.parametrize(
    ("items", "model", "address"),
    [(PYDANTIC, PRecord, PAddress), (MSGSPEC, MRecord, MAddress)],
    ids=["pydantic", "msgspec"],
)
def test_the_stored_form_is_json_with_the_same_text_forms(
    items: Any, model: Any, address: Any
) -> None:
    record = model(**example_fields(address))
    document = json.loads(items.serialize_item(record))
    assert document == items.to_json(record)
    assert document["at"] == "2024-05-01T12:30:00+02:00"
    assert document["price"] == "9.90"
    assert document["uid"] == "12345678-1234-5678-1234-567812345678"
    assert document["by_number"] == {"2": "2.50"}
    assert sorted(document["tags"]) == ["a", "b"]
    assert items.get_pk(record) == "r1"


# -- pydantic's own configuration decides, and its defaults are documented -------------


class Plain(pydantic.BaseModel):
    id: str
    blob: bytes = b""
    ratio: float = 0.0
    nick: str = pydantic.Field(default="", alias="nickName")

    @pydantic.computed_field  # type: ignore[prop-decorator]
    @property
    def shout(self) -> str:
        return self.id.upper()


PLAIN = PydanticItems(Plain, pk="id")


def test_pydantic_aliases_and_computed_fields_round_trip() -> None:
    item = Plain(id="a", nickName="al")
    data = PLAIN.serialize_item(item)
    assert json.loads(data) == {"id": "a", "blob": "", "ratio": 0.0, "nickName": "al"}
    assert PLAIN.deserialize_item(data) == item


def test_pydantic_default_bytes_must_be_utf8_and_nan_comes_back_as_an_error() -> None:
    assert PLAIN.deserialize_item(PLAIN.serialize_item(Plain(id="a", blob=b"text"))).blob == b"text"
    with pytest.raises(ValueError, match="invalid utf-8"):
        PLAIN.serialize_item(Plain(id="a", blob=b"\xff"))
    stored = PLAIN.serialize_item(Plain(id="a", ratio=float("nan")))
    assert json.loads(stored)["ratio"] is None
    with pytest.raises(pydantic.ValidationError):
        PLAIN.deserialize_item(stored)


def test_msgspec_writes_nan_as_null_which_the_struct_refuses() -> None:
    class Ratio(msgspec.Struct):
        id: str
        ratio: float

    items = MsgspecItems(Ratio, pk="id")
    stored = items.serialize_item(Ratio("a", float("nan")))
    assert json.loads(stored) == {"id": "a", "ratio": None}
    with pytest.raises(msgspec.ValidationError):
        items.deserialize_item(stored)


# -- declarations -----------------------------------------------------------------------


class FloatKeyed(pydantic.BaseModel):
    id: float


class SFloatKeyed(msgspec.Struct):
    id: float


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PydanticItems(dict, pk="id"), "PydanticItems needs a pydantic model class"),
        (lambda: PydanticItems(Plain, pk="pk"), "Plain has no field 'pk' to use as the pk"),
        (lambda: PydanticItems(FloatKeyed, pk="id"), "FloatKeyed.id is declared as float"),
        (lambda: MsgspecItems(dict, pk="id"), "MsgspecItems needs a msgspec Struct class"),
        (
            lambda: MsgspecItems(MRecord, pk="pk"),
            "MRecord has no field 'pk' to use as the pk (its fields: id, at",
        ),
        (lambda: MsgspecItems(SFloatKeyed, pk="id"), "SFloatKeyed.id is declared as float"),
    ],
)
def test_bad_declarations_are_configuration_errors(make: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make()
    assert message in str(caught.value)


@pytest.mark.parametrize("items", [PYDANTIC, MSGSPEC], ids=["pydantic", "msgspec"])
def test_another_class_or_a_bad_pk_is_an_invalid_key(items: Any) -> None:
    with pytest.raises(InvalidKeyError, match=r"stores .*Record items, got dict"):
        items.get_pk({"id": "x"})
    with pytest.raises(InvalidKeyError, match=r"stores .*Record items, got dict"):
        items.serialize_item({"id": "x"})
    address = PAddress if items is PYDANTIC else MAddress
    record = items.cls(**{**example_fields(address), "id": ""})
    with pytest.raises(InvalidKeyError, match="must not be empty"):
        items.get_pk(record)


def test_a_missing_extra_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydantic", None)  # what an uninstalled module looks like
    monkeypatch.setitem(sys.modules, "msgspec", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'ssshelf\[pydantic\]'"):
        PydanticItems(PRecord, pk="id")
    with pytest.raises(ConfigurationError, match=r"pip install 'ssshelf\[msgspec\]'"):
        MsgspecItems(MRecord, pk="id")


def test_importing_ssshelf_needs_neither_extra_and_a_missing_one_is_explained() -> None:
    script = (
        "import sys\n"
        "sys.modules['pydantic'] = None\n"
        "sys.modules['msgspec'] = None\n"
        "import ssshelf, ssshelf.items\n"
        "from ssshelf.errors import ConfigurationError\n"
        "for name in ('PydanticItems', 'MsgspecItems'):\n"
        "    try:\n"
        "        getattr(ssshelf.items, name)(object, pk='id')\n"
        "    except ConfigurationError as exc:\n"
        "        print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "PydanticItems needs pydantic v2: pip install 'ssshelf[pydantic]'",
        "MsgspecItems needs msgspec: pip install 'ssshelf[msgspec]'",
    ]


# -- through a manager, on every backend ------------------------------------------------


class Newest(Collection):
    def key(self, item: Any) -> Any:
        return (Desc(item.at), item.id)


class ByTag(Collection):
    unique = True

    def key(self, item: Any) -> Any:
        return item.note


class PRecords(CManager):
    item_manager = PydanticItems(PRecord, pk="id")
    namespace = "precords"
    newest = Newest()
    by_note = ByTag()


class MRecords(CManager):
    item_manager = MsgspecItems(MRecord, pk="id")
    namespace = "mrecords"
    newest = Newest()
    by_note = ByTag()


@pytest.mark.parametrize(
    ("manager_class", "address"),
    [(PRecords, PAddress), (MRecords, MAddress)],
    ids=["pydantic", "msgspec"],
)
async def test_a_manager_returns_the_same_typed_model(
    storage: Storage, manager_class: type[CManager], address: Any
) -> None:
    model: Any = manager_class.item_manager.cls  # type: ignore[attr-defined]
    first = model(**{**example_fields(address), "note": "first"})
    second = model(**{**example_fields(address), "id": "r2", "note": "second"})
    manager = manager_class(storage)
    await manager.add_items([first, second])
    again = await manager.get_item("r1")
    assert again == first
    same_values(again, first, FIELD_NAMES)
    assert await manager.by_note.get_item("second") == second  # type: ignore[attr-defined]
    page = await manager.newest.get_items()  # type: ignore[attr-defined]
    assert page["items"] == [first, second]  # the same instant: by pk

    key = manager.layout.item_key("r1")
    stored = await storage.get(key)
    assert stored is not None
    await storage.put(key, stored.data.replace(b'"9.90"', b'"nine"'))
    with pytest.raises(CorruptItemError) as caught:
        await manager.get_item("r1")
    assert caught.value.key == key


async def test_a_value_the_model_cannot_write_fails_before_any_request(storage: Storage) -> None:
    class Plains(CManager):
        item_manager = PLAIN
        namespace = "plains"

    with pytest.raises(SerializationError, match="invalid utf-8"):
        await Plains(storage).add_item(Plain(id="a", blob=b"\xff"))
    assert (await storage.list("")).keys == []
