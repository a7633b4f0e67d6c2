"""The key encoding: order, round trip and prefix selection, by property tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssshelf.errors import InvalidKeyError
from ssshelf.keys import (
    Desc,
    decode_tuple,
    encode_part,
    encode_tuple,
    escape_text,
    normalize_key,
    unescape_text,
)

ALLOWED = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._=!)")

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),  # no lone surrogates
    max_size=12,
)
naive_datetimes = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)
# One strategy per type: tuples are compared position by position, and
# Python only orders parts of the same type.
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "str": texts,
    "int": st.integers() | st.integers(min_value=-(10**40), max_value=10**40),
    "bool": st.booleans(),
    "bytes": st.binary(max_size=10),
    "date": st.dates(),
    "naive": naive_datetimes,
    "aware": aware_datetimes,
    # naive means UTC: one collection may hold both, ordered as instants
    "datetime": naive_datetimes | aware_datetimes,
}


def instant(part: Any) -> Any:
    """A part as the encoding orders it: a naive datetime is the UTC instant."""
    if isinstance(part, Desc):
        return Desc(instant(part.value))
    if isinstance(part, datetime) and part.tzinfo is None:
        return part.replace(tzinfo=UTC)
    return part


def instants(value: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(instant(p) for p in value)


def typed_parts(kind: str, desc: bool) -> st.SearchStrategy[Any]:
    base = SCALARS[kind]
    return base.map(Desc) if desc else base


# A "schema" is a list of (kind, descending) per position; tuples share it.
schemas = st.lists(
    st.tuples(st.sampled_from(sorted(SCALARS)), st.booleans()), min_size=1, max_size=4
)


@st.composite
def tuple_pairs(draw: st.DrawFn) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    schema = draw(schemas)

    def one() -> tuple[Any, ...]:
        length = draw(st.integers(min_value=1, max_value=len(schema)))
        return tuple(draw(typed_parts(kind, desc)) for kind, desc in schema[:length])

    return one(), one()


@settings(max_examples=600)
@given(tuple_pairs())
def test_encoding_preserves_tuple_order(pair: tuple[tuple[Any, ...], tuple[Any, ...]]) -> None:
    a, b = instants(pair[0]), instants(pair[1])
    ea, eb = encode_tuple(pair[0]), encode_tuple(pair[1])
    assert (a < b) == (ea.encode() < eb.encode())
    assert (a == b) == (ea == eb)


@settings(max_examples=400)
@given(tuple_pairs())
def test_round_trip_and_alphabet(pair: tuple[tuple[Any, ...], tuple[Any, ...]]) -> None:
    for value in pair:
        encoded = encode_tuple(value)
        assert decode_tuple(encoded) == instants(value)
        assert set(encoded) <= ALLOWED | set("bdistuxBDISTUX"), encoded
        assert "/" not in encoded


@settings(max_examples=400)
@given(tuple_pairs())
def test_prefix_selects_exactly_the_tuples_that_start_with_it(
    pair: tuple[tuple[Any, ...], tuple[Any, ...]],
) -> None:
    a, b = pair
    for n in range(1, len(a) + 1):
        prefix = a[:n]
        selects = encode_tuple(b).startswith(encode_tuple(prefix))
        assert selects == (instants(b[:n]) == instants(prefix))


@given(texts, texts)
def test_escaped_text_keeps_order_and_round_trips(a: str, b: str) -> None:
    assert (a < b) == (escape_text(a) < escape_text(b))
    assert unescape_text(escape_text(a)) == a


def test_known_traps_of_naive_encodings() -> None:
    # URL-quoting and joining with "/" gets these wrong.
    assert encode_tuple(("a", "z")) < encode_tuple(("a-b",))
    assert encode_tuple(("a:",)) > encode_tuple(("a9",))
    assert encode_tuple(("a",)) < encode_tuple(("a", "")) < encode_tuple(("a", "b"))
    assert encode_tuple(("",)) < encode_tuple(("\x00",))
    assert encode_tuple((-1,)) < encode_tuple((0,)) < encode_tuple((1,)) < encode_tuple((10,))
    assert encode_tuple((Desc(2),)) < encode_tuple((Desc(1),))


def test_readable_for_common_values() -> None:
    assert encode_tuple(("python", 2024)) == "spython!i42024"
    assert encode_part(date(2024, 5, 17)) == "d2024-05-17"
    assert encode_part(datetime(2024, 5, 17, 8, 30)) == "u2024-05-17T083000.000000"


def test_naive_datetime_is_utc_and_aware_compares_by_instant() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    aware = datetime(2024, 1, 1, 5, 30, tzinfo=india)
    assert decode_tuple(encode_tuple((aware,))) == (datetime(2024, 1, 1, tzinfo=UTC),)
    # naive is UTC: the same instant encodes the same, and decodes aware
    assert encode_tuple((datetime(2024, 1, 1),)) == encode_tuple((aware,))
    assert decode_tuple(encode_tuple((datetime(2024, 1, 1),))) == (
        datetime(2024, 1, 1, tzinfo=UTC),
    )
    # the order: 2025 (naive) after 2020 (aware), both ways round
    later, earlier = datetime(2025, 6, 1), datetime(2020, 1, 1, tzinfo=UTC)
    assert encode_tuple((earlier,)) < encode_tuple((later,))
    assert encode_tuple((Desc(later),)) < encode_tuple((Desc(earlier),))
    # an aware prefix finds a naive entry
    assert encode_tuple((later, "x")).startswith(encode_tuple((later.replace(tzinfo=UTC),)))


def test_keys_written_before_naive_meant_utc_still_decode() -> None:
    # the earlier format tagged naive datetimes "t" (and "T" under Desc)
    assert decode_tuple("t2024-05-17T083000.000000") == (datetime(2024, 5, 17, 8, 30),)


@pytest.mark.parametrize(
    "bad", [1.5, None, object(), [1], {"a": 1}, Desc(Desc(1)), Desc(1.5), "\ud800"]
)
def test_unsupported_parts_raise_invalid_key_error(bad: Any) -> None:
    with pytest.raises(InvalidKeyError) as info:
        encode_tuple((bad,))
    assert (
        "key part" in str(info.value) or "Unicode" in str(info.value) or "Desc" in str(info.value)
    )


def test_huge_integers_are_refused() -> None:
    with pytest.raises(InvalidKeyError):
        encode_part(10**10000)
    assert decode_tuple(encode_part(10**900)) == (10**900,)
    assert decode_tuple(encode_part(-(10**900))) == (-(10**900),)


def test_malformed_encoded_keys_raise_value_error() -> None:
    for bad in ["q", "s", "i9", "t2024", "sab"]:
        with pytest.raises(ValueError):
            decode_tuple(bad)


def test_normalize_key_shapes() -> None:
    assert normalize_key("a", collection="c") == [("a",)]
    assert normalize_key(("a", 1), collection="c") == [("a", 1)]
    assert normalize_key([("a",), ["b", 2], "c", ("a",)], collection="c") == [
        ("a",),
        ("b", 2),
        ("c",),
    ]
    assert normalize_key([], collection="c") == []
    assert normalize_key(None, collection="c") == []
    assert normalize_key(("a", None), collection="c") == []
    with pytest.raises(InvalidKeyError) as info:
        normalize_key((), collection="tags")
    assert info.value.collection == "tags"
