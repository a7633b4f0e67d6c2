"""The default item manager: dict items with a str or int pk, stored as JSON.

Every claim of ``IManager``'s docstring about what JSON changes on the way
back is checked here, through a real store.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from ssshelf import CManager, IManager
from ssshelf.errors import InvalidKeyError, SerializationError
from ssshelf.storages.base import Storage
from ssshelf.utils import convert_datetime_to_str, json_dump


class Things(CManager):
    item_manager = IManager()
    namespace = "things"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"pk": None}, "item pk must be a non-empty str or an int, got NoneType: None"),
        ({"pk": 1.5}, "got float: 1.5"),
        ({"pk": ("a", 1)}, "got tuple: ('a', 1)"),
        ({"pk": True}, "got bool: True"),
        ({"pk": ""}, "item pk must not be empty"),
        ({"id": "x"}, "item has no 'pk' key (keys: 'id'); the default IManager reads item['pk']"),
        (object(), "a object item has no 'pk' attribute"),
    ],
)
async def test_only_a_str_or_int_pk_is_accepted_before_any_request(
    storage: Storage, item: Any, message: str
) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        IManager().get_pk(item)
    assert message in str(caught.value)
    with pytest.raises(InvalidKeyError) as caught:
        await Things(storage).add_item(item)
    assert message in str(caught.value)
    assert (await storage.list("")).keys == [], "nothing was written"


async def test_str_and_int_pks_and_pk_attributes(storage: Storage) -> None:
    class Obj:
        pk = 7

    manager = Things(storage)
    await manager.add_item({"pk": 42, "n": 1})
    await manager.add_item({"pk": "x", "n": 2})
    assert (await manager.get_item(42)) == {"pk": 42, "n": 1}
    assert (await manager.get_item("42")) == {"pk": 42, "n": 1}
    assert IManager().get_pk(Obj()) == "7"


async def test_what_json_changes_on_the_way_back(storage: Storage) -> None:
    stored = {
        "pk": "p",
        "naive": datetime(2024, 5, 1, 12, 0),
        "aware": datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        "day": date(2024, 5, 1),
        "pair": (1, "a"),
        "tags": {"b", "a"},
        "frozen": frozenset({3, 1}),
        "price": Decimal("9.90"),
        "uid": UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
        "blob": b"\x00\xff",
        "by_number": {1: "a"},
        "nan": float("nan"),
        "inf": float("inf"),
    }
    manager = Things(storage)
    await manager.add_item(stored)
    back = await manager.get_item("p")
    assert {k: v for k, v in back.items() if k not in {"nan", "inf"}} == {
        "pk": "p",
        "naive": "2024-05-01T12:00:00",
        "aware": "2024-05-01T12:00:00+02:00",
        "day": "2024-05-01",
        "pair": [1, "a"],
        "tags": ["a", "b"],
        "frozen": [1, 3],
        "price": "9.90",
        "uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "blob": "AP8=",
        "by_number": {"1": "a"},
    }
    assert math.isnan(back["nan"]) and back["inf"] == math.inf
    raw = await storage.get(manager.layout.item_key("p"))
    assert raw is not None and b'"nan": NaN' in raw.data and b'"inf": Infinity' in raw.data


async def test_other_types_are_a_serialization_error_before_any_request(
    storage: Storage,
) -> None:
    with pytest.raises(SerializationError, match="Object of type complex is not JSON serializable"):
        await Things(storage).add_item({"pk": "p", "z": 1j})
    assert (await storage.list("")).keys == []


def test_sets_of_values_that_do_not_compare_still_have_one_order() -> None:
    mixed = {1, "a", None}
    assert json.loads(json_dump({"s": mixed})) == json.loads(json_dump({"s": set(mixed)}))
    assert sorted(json.loads(json_dump({"s": mixed}))["s"], key=str) == [1, None, "a"]


def test_convert_datetime_to_str_writes_utc() -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    assert convert_datetime_to_str(naive) == "2024-01-02T03:04:05Z", "naive is taken as UTC"
    paris = datetime(2024, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert convert_datetime_to_str(paris) == "2024-01-02T03:04:05Z"
    assert convert_datetime_to_str(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "2024-01-02T03:04:05Z"
    )
    noon_in_tokyo = datetime(2024, 1, 2, 12, 0, tzinfo=timezone(timedelta(hours=9)))
    assert convert_datetime_to_str(noon_in_tokyo) < convert_datetime_to_str(paris), (
        "sorts by instant"
    )
