"""The type-driven JSON converters behind DataclassItems, one type at a time."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import pytest

from ssshelf.items.json_types import UnsupportedType, ValueMismatch, converter_for


class Weight(enum.Enum):
    LIGHT = 1.5
    HEAVY = 9.0


class Infinite(enum.Enum):
    FAR = float("inf")


class FloatKeys(enum.Enum):
    A = 1.5


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (None, None),
        (type(None), None),
        (float, 1.5),
        (Weight, Weight.HEAVY),
        (tuple[()], ()),
        (tuple, (1, "a", None)),
        (dict, {"a": [1]}),
        (set, {1, 2}),
        (list[tuple[int, str]], [(1, "a")]),
        (dict[str, list[int]], {"a": [1, 2]}),
        (dict[date, int], {date(2024, 1, 1): 1}),
    ],
)
def test_values_round_trip(kind: Any, value: Any) -> None:
    converter = converter_for(kind)
    assert converter.decode(converter.encode(value)) == value


def test_an_int_is_a_float_on_the_way_in_and_out() -> None:
    converter = converter_for(float)
    assert converter.encode(2) == 2.0 and isinstance(converter.decode(2), float)


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        (None, 0, "expected null, got int 0"),
        (float, "1", "expected float, got str '1'"),
        (float, True, "expected float, got bool True"),
        (tuple[int, int], [1, 2], "expected a tuple of 2, got list [1, 2]"),
        (tuple[int, int], (1, "2"), "[1]: expected int, got str '2'"),
        (dict[str, int], [("a", 1)], "expected dict, got list [('a', 1)]"),
        (list[list[int]], [[1], [2, "x"]], "[1][1]: expected int, got str 'x'"),
        (Literal[1, 2], True, "expected one of [1, 2], got bool True"),
    ],
)
def test_encoding_refuses_values_of_another_type(kind: Any, value: Any, message: str) -> None:
    converter = converter_for(kind)
    with pytest.raises(ValueMismatch) as caught:
        converter.encode(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (float, "1.5", "expected a number, got str '1.5'"),
        (Decimal, "one", "not a valid Decimal: 'one' (not a decimal number)"),
        (bytes, "not base64!", "not a valid bytes (base64): 'not base64!'"),
        (tuple[int, int], [1], "expected an array of 2, got list [1]"),
        (tuple[int, int], [1, "2"], "[1]: expected int, got str '2'"),
        (list[int], [1, None], "[1]: expected int, got NoneType None"),
        (dict[str, int], [1], "expected an object, got list [1]"),
        (dict[str, int], {"a": "b"}, "['a']: expected int, got str 'b'"),
        (Weight, 2.0, "2.0 is not a value of Weight"),
    ],
)
def test_decoding_refuses_data_that_does_not_fit(kind: Any, data: Any, message: str) -> None:
    converter = converter_for(kind)
    with pytest.raises(ValueMismatch) as caught:
        converter.decode(data)
    assert str(caught.value).startswith(message)


def test_long_values_are_cut_short_in_messages() -> None:
    with pytest.raises(ValueMismatch) as caught:
        converter_for(int).encode("x" * 100)
    assert str(caught.value) == f"expected int, got str '{'x' * 56}..."


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (Infinite, "Infinite.FAR is not finite"),
        (dict[FloatKeys, int], "FloatKeys keys need str or int values"),
        (Literal[1.5], "Literal values must be str, int or bool"),
        (int | str | None, "is ambiguous in JSON"),
        (dict[float, int], "dict keys of type float cannot be JSON object keys"),
    ],
)
def test_types_that_cannot_round_trip_are_refused(kind: Any, message: str) -> None:
    with pytest.raises(UnsupportedType, match=message):
        converter_for(kind)


class Size(enum.Enum):
    S = "s"
    M = "m"


def test_enum_keys_are_checked_both_ways() -> None:
    keys = converter_for(dict[Size, int])
    assert keys.decode(keys.encode({Size.M: 1})) == {Size.M: 1}
    with pytest.raises(ValueMismatch, match="expected a Size key, got str 's'"):
        keys.encode({"s": 1})
    with pytest.raises(ValueMismatch, match="'x' is not a value of Size"):
        keys.decode({"x": 1})
