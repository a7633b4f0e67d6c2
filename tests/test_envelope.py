"""The stored form of items and reservations: written by hand for speed, it
must stay exactly what ``json.dumps`` of the header writes, and read back."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ssshelf._json import compact_json
from ssshelf.envelope import (
    MAGIC,
    Envelope,
    Reservation,
    decode_envelope,
    decode_reservation,
    encode_item,
    encode_reservation,
)

texts = st.text(min_size=1, max_size=12)
holdings = st.dictionaries(texts, st.dictionaries(texts, texts, max_size=3), max_size=3)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


def dumped(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@given(
    pk=texts,
    write_id=texts,
    at=times,
    payload=st.binary(max_size=40),
    entries=holdings,
    uniques=holdings,
    history=st.lists(texts, min_size=1, max_size=8),
    sequence=st.integers(min_value=1, max_value=10**12),
    incarnation=st.text(max_size=12),
    removed=st.booleans(),
)
def test_an_item_is_stored_as_its_header_in_json_then_its_payload(
    pk: str,
    write_id: str,
    at: float,
    payload: bytes,
    entries: dict[str, dict[str, str]],
    uniques: dict[str, dict[str, str]],
    history: list[str],
    sequence: int,
    incarnation: str,
    removed: bool,
) -> None:
    envelope = Envelope(
        pk, write_id, at, payload, entries, uniques, history, sequence, incarnation, removed
    )
    header = {"pk": pk, "w": write_id, "at": at, "e": entries, "u": uniques, "h": history}
    header |= {"n": sequence, "i": incarnation} | ({"x": 1} if removed else {})
    stored = envelope.encode()
    assert stored == MAGIC + dumped(header) + b"\n" + payload
    assert stored == encode_item(
        pk, write_id, compact_json(at), payload, entries, uniques, history, sequence,
        incarnation, removed,
    )  # fmt: skip
    assert decode_envelope(stored, key="k") == envelope


@given(pk=texts, write_id=texts, at=times, released=st.booleans())
def test_a_reservation_is_stored_as_json(pk: str, write_id: str, at: float, released: bool) -> None:
    reservation = Reservation(pk, write_id, at, released)
    body = {"pk": pk, "w": write_id, "at": at} | ({"free": 1} if released else {})
    assert reservation.encode() == dumped(body)
    assert encode_reservation(pk, write_id, compact_json(at), released) == dumped(body)
    assert decode_reservation(reservation.encode(), key="k") == reservation
