"""Typed values <-> JSON data, driven by type hints (the engine of DataclassItems).

:func:`converter_for` compiles a type once into a :class:`Converter`, a pair
of functions: ``encode`` checks a value against the type and turns it into
JSON data, ``decode`` checks JSON data and rebuilds the typed value.  Both
raise :class:`ValueMismatch` naming where (``author.born``, ``tags[2]``) and
what was wrong.  What each type becomes:

==========================================  =========================================
type                                        JSON
==========================================  =========================================
``str``, ``int``, ``bool``, ``None``        themselves (``int`` refuses ``bool``)
``float``                                   a number (not NaN or ±infinity)
``Decimal``                                 a string with the same digits
``datetime``, ``date``, ``time``            ISO 8601 strings (offsets kept; naive stays naive)
``UUID``                                    its canonical string
``bytes``                                   a base64 string
``Enum`` subclasses                         the member's value (str, int, float or bool)
``Literal[...]``                            the value (str, int or bool)
``list[X]``, ``tuple[X, ...]``              arrays
``tuple[X, Y]``                             an array of that length
``set[X]``, ``frozenset[X]``                arrays, the elements in one fixed order
``dict[K, V]``                              an object; ``K`` one of str, int, UUID,
                                            Decimal, date, datetime, or an Enum
dataclasses                                 an object of its ``init`` fields
``X | None``, ``Optional[X]``               ``null`` or ``X``
``Any``                                     any JSON value, unchanged
==========================================  =========================================

``Annotated[X, ...]`` is ``X``.  Any other type — a union of two types other
than ``None``, ``timedelta``, a class of your own that is not a dataclass —
is refused when the converter is compiled, so a declaration that cannot
round-trip fails at import time instead of at the first write.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID


class ValueMismatch(ValueError):
    """A value does not fit its declared type; ``path`` says where it sits.

    ``path`` holds field names (``"author"``), indices (``"[2]"``) and dict
    keys (``"['k']"``), outermost first; ``str()`` joins them
    (``author.tags[2]: expected str, got int 5``).
    """

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def within(self, step: str) -> ValueMismatch:
        """The same mismatch, one level further out (a field name, ``[i]`` or ``[key]``)."""
        return ValueMismatch(self.message, (step, *self.path))

    def __str__(self) -> str:
        if not self.path:
            return self.message
        where = ""
        for step in self.path:
            where += step if step.startswith("[") or not where else f".{step}"
        return f"{where}: {self.message}"


class UnsupportedType(TypeError):
    """A type this codec cannot round-trip (raised while compiling)."""


@dataclass
class Converter:
    """``encode`` (value -> JSON data) and ``decode`` (JSON data -> value) for one type."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def converter_for(kind: Any) -> Converter:
    """Compile the converter for type ``kind``; :class:`UnsupportedType` if there is none."""
    return _Compiler().compile(kind, where=_name(kind))


def _name(kind: Any) -> str:
    if isinstance(kind, type) and typing.get_origin(kind) is None:
        return kind.__qualname__
    return str(kind).replace("typing.", "")


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


class _Compiler:
    """Builds converters; remembers dataclasses so that recursive ones compile."""

    def __init__(self) -> None:
        self._dataclasses: dict[type, Converter] = {}

    def compile(self, kind: Any, *, where: str) -> Converter:
        origin = typing.get_origin(kind)
        args = typing.get_args(kind)
        if origin is typing.Annotated:
            return self.compile(args[0], where=where)
        if kind is Any or kind is object:
            return Converter(_identity, _identity)
        if kind is None or kind is type(None):
            check = _exact(type(None), "null")
            return Converter(check, check)
        if origin in (typing.Union, types.UnionType):
            return self._optional(kind, args, where)
        if origin is typing.Literal:
            return _literal(args, where)
        if origin in _CONTAINERS:
            return self._container(origin, args, where)
        if kind in _CONTAINERS:  # bare ``list``, ``dict``, …: of Any
            return self._container(kind, (Any, ...) if kind is tuple else (), where)
        if isinstance(kind, type):
            if dataclasses.is_dataclass(kind):
                return self._dataclass(kind)
            if issubclass(kind, enum.Enum):
                return _enum(kind, where)
            scalar = _SCALARS.get(kind)
            if scalar is not None:
                return scalar
        raise UnsupportedType(
            f"{where}: type {_name(kind)} cannot be stored as JSON by DataclassItems "
            "(supported: str, int, float, bool, Decimal, datetime, date, time, UUID, bytes, "
            "Enum, Literal, list, tuple, set, frozenset, dict, dataclasses, X | None, Any)"
        )

    def _optional(self, kind: Any, args: tuple[Any, ...], where: str) -> Converter:
        options = [a for a in args if a is not type(None)]
        if len(options) != 1 or len(args) != 2:
            raise UnsupportedType(
                f"{where}: the union {kind} is ambiguous in JSON; only X | None is supported "
                "(use one type, or a field per type)"
            )
        inner = self.compile(options[0], where=where)

        def encode(value: Any) -> Any:
            return None if value is None else inner.encode(value)

        def decode(data: Any) -> Any:
            return None if data is None else inner.decode(data)

        return Converter(encode, decode)

    def _container(self, origin: Any, args: tuple[Any, ...], where: str) -> Converter:
        if origin is dict:
            key_kind, value_kind = args or (str, Any)
            return _mapping(_key_converter(key_kind, where), self.compile(value_kind, where=where))
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if args == ((),):  # tuple[()] on Python 3.11
                args = ()
            return _fixed_tuple([self.compile(a, where=where) for a in args])
        return _sequence(origin, self.compile(args[0] if args else Any, where=where))

    def _dataclass(self, cls: type) -> Converter:
        known = self._dataclasses.get(cls)
        if known is not None:
            return known
        # Registered before its fields compile, so a field of the class's own
        # type (a tree) finds it; the functions are filled in below.
        converter = Converter(_identity, _identity)
        self._dataclasses[cls] = converter
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except Exception as exc:
            raise UnsupportedType(
                f"cannot read the type hints of {cls.__qualname__}: {type(exc).__name__}: {exc} "
                "(define the types its fields use at module level)"
            ) from None
        fields = [f for f in dataclasses.fields(cls) if f.init]
        converters = {
            f.name: self.compile(hints[f.name], where=f"{cls.__qualname__}.{f.name}")
            for f in fields
        }
        required = {
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }

        def encode(value: Any) -> Any:
            if type(value) is not cls:
                raise ValueMismatch(f"expected {cls.__qualname__}, got {_describe(value)}")
            data: dict[str, Any] = {}
            for name, field_converter in converters.items():
                try:
                    data[name] = field_converter.encode(getattr(value, name))
                except ValueMismatch as exc:
                    raise exc.within(name) from None
            return data

        def decode(data: Any) -> Any:
            if not isinstance(data, dict):
                raise ValueMismatch(
                    f"expected an object for {cls.__qualname__}, got {_describe(data)}"
                )
            missing = required - data.keys()
            if missing:
                raise ValueMismatch(
                    f"{cls.__qualname__} lacks the field(s) {', '.join(sorted(missing))}"
                )
            values: dict[str, Any] = {}
            for name, field_converter in converters.items():
                if name in data:  # absent: the field's default (added since it was stored)
                    try:
                        values[name] = field_converter.decode(data[name])
                    except ValueMismatch as exc:
                        raise exc.within(name) from None
            return cls(**values)

        converter.encode, converter.decode = encode, decode
        return converter


_CONTAINERS = (list, tuple, set, frozenset, dict)


def _identity(value: Any) -> Any:
    return value


def _exact(kind: type, label: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if type(value) is not kind:
            raise ValueMismatch(f"expected {label}, got {_describe(value)}")
        return value

    return check


def _encode_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, float | int):
        raise ValueMismatch(f"expected float, got {_describe(value)}")
    if not math.isfinite(value):
        raise ValueMismatch(f"{value} cannot be stored: JSON has no NaN or infinity")
    return float(value)


def _decode_float(data: Any) -> float:
    if isinstance(data, bool) or not isinstance(data, float | int):
        raise ValueMismatch(f"expected a number, got {_describe(data)}")
    return float(data)


def _text_type(
    label: str,
    accepts: Callable[[Any], bool],
    to_text: Callable[[Any], str],
    from_text: Callable[[str], Any],
) -> Converter:
    """A type stored as a string, e.g. ``Decimal`` or ``UUID``."""

    def encode(value: Any) -> str:
        if not accepts(value):
            raise ValueMismatch(f"expected {label}, got {_describe(value)}")
        return to_text(value)

    def decode(data: Any) -> Any:
        if not isinstance(data, str):
            raise ValueMismatch(f"expected {label} as a string, got {_describe(data)}")
        try:
            return from_text(data)
        except (ValueError, ArithmeticError, binascii.Error) as exc:
            raise ValueMismatch(f"not a valid {label}: {data[:60]!r} ({exc})") from None

    return Converter(encode, decode)


def _instance_of(kind: type, *refused: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, kind) and not isinstance(value, refused)


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError("not a decimal number") from None


def _b64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


_SCALARS: dict[type, Converter] = {
    str: Converter(_exact(str, "str"), _exact(str, "str")),
    int: Converter(_exact(int, "int"), _exact(int, "int")),
    bool: Converter(_exact(bool, "bool"), _exact(bool, "bool")),
    float: Converter(_encode_float, _decode_float),
    Decimal: _text_type("Decimal", _instance_of(Decimal), str, _decimal),
    datetime: _text_type(
        "datetime", _instance_of(datetime), datetime.isoformat, datetime.fromisoformat
    ),
    date: _text_type("date", _instance_of(date, datetime), date.isoformat, date.fromisoformat),
    time: _text_type("time", _instance_of(time), time.isoformat, time.fromisoformat),
    UUID: _text_type("UUID", _instance_of(UUID), str, UUID),
    bytes: _text_type(
        "bytes (base64)",
        _instance_of(bytes),
        lambda value: base64.b64encode(value).decode("ascii"),
        _b64,
    ),
}


def _enum(cls: type[enum.Enum], where: str) -> Converter:
    for member in cls:
        if isinstance(member.value, float) and not math.isfinite(member.value):
            raise UnsupportedType(f"{where}: {cls.__qualname__}.{member.name} is not finite")
        if not isinstance(member.value, str | int | float | bool):
            raise UnsupportedType(
                f"{where}: {cls.__qualname__}.{member.name} has a {type(member.value).__name__} "
                "value; enum values must be str, int, float or bool to be stored as JSON"
            )

    def encode(value: Any) -> Any:
        if not isinstance(value, cls):
            raise ValueMismatch(f"expected {cls.__qualname__}, got {_describe(value)}")
        return value.value

    def decode(data: Any) -> Any:
        try:
            return cls(data)
        except ValueError:
            raise ValueMismatch(f"{data!r} is not a value of {cls.__qualname__}") from None

    return Converter(encode, decode)


def _literal(values: tuple[Any, ...], where: str) -> Converter:
    for value in values:
        if not isinstance(value, str | int | bool) or isinstance(value, enum.Enum):
            raise UnsupportedType(f"{where}: Literal values must be str, int or bool")

    def check(value: Any) -> Any:
        if not any(type(value) is type(v) and value == v for v in values):
            raise ValueMismatch(f"expected one of {list(values)!r}, got {_describe(value)}")
        return value

    return Converter(check, check)


def _sequence(origin: type[Any], element: Converter) -> Converter:
    label = origin.__name__

    def encode(value: Any) -> Any:
        if not isinstance(value, origin):
            raise ValueMismatch(f"expected {label}, got {_describe(value)}")
        out: list[Any] = []
        for index, item in enumerate(value):
            try:
                out.append(element.encode(item))
            except ValueMismatch as exc:
                raise exc.within(f"[{index}]") from None
        if origin in (set, frozenset):  # a fixed order: the same set, the same bytes
            out.sort(key=lambda data: json.dumps(data, sort_keys=True))
        return out

    def decode(data: Any) -> Any:
        if not isinstance(data, list):
            raise ValueMismatch(f"expected an array for {label}, got {_describe(data)}")
        items = []
        for index, item in enumerate(data):
            try:
                items.append(element.decode(item))
            except ValueMismatch as exc:
                raise exc.within(f"[{index}]") from None
        return items if origin is list else origin(items)

    return Converter(encode, decode)


def _fixed_tuple(elements: list[Converter]) -> Converter:
    def encode(value: Any) -> Any:
        if not isinstance(value, tuple) or len(value) != len(elements):
            raise ValueMismatch(f"expected a tuple of {len(elements)}, got {_describe(value)}")
        out = []
        for index, (element, item) in enumerate(zip(elements, value, strict=True)):
            try:
                out.append(element.encode(item))
            except ValueMismatch as exc:
                raise exc.within(f"[{index}]") from None
        return out

    def decode(data: Any) -> Any:
        if not isinstance(data, list) or len(data) != len(elements):
            raise ValueMismatch(f"expected an array of {len(elements)}, got {_describe(data)}")
        items = []
        for index, (element, item) in enumerate(zip(elements, data, strict=True)):
            try:
                items.append(element.decode(item))
            except ValueMismatch as exc:
                raise exc.within(f"[{index}]") from None
        return tuple(items)

    return Converter(encode, decode)


def _key_converter(kind: Any, where: str) -> Converter:
    """Dict keys: JSON object keys are strings, so each key type has a text form."""
    if kind is str or kind is Any:
        return _SCALARS[str]
    if kind is int:

        def int_from_text(text: str) -> int:
            if not text.lstrip("-").isdigit() or text != str(int(text)):
                raise ValueError("not the decimal form of an int")
            return int(text)

        return _text_type("int key", _instance_of(int, bool), str, int_from_text)
    if kind in (UUID, Decimal, date, datetime):
        return _SCALARS[kind]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        members = {str(m.value): m for m in kind}
        if len(members) != len(kind) or not all(isinstance(m.value, str | int) for m in kind):
            raise UnsupportedType(f"{where}: {kind.__qualname__} keys need str or int values")

        def encode(value: Any) -> str:
            if not isinstance(value, kind):
                raise ValueMismatch(f"expected a {kind.__qualname__} key, got {_describe(value)}")
            return str(value.value)

        def decode(text: Any) -> Any:
            if text not in members:
                raise ValueMismatch(f"{text!r} is not a value of {kind.__qualname__}")
            return members[text]

        return Converter(encode, decode)
    raise UnsupportedType(
        f"{where}: dict keys of type {_name(kind)} cannot be JSON object keys "
        "(use str, int, UUID, Decimal, date, datetime or an Enum)"
    )


def _mapping(keys: Converter, values: Converter) -> Converter:
    def encode(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueMismatch(f"expected dict, got {_describe(value)}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            try:
                text = keys.encode(key)
            except ValueMismatch as exc:
                raise ValueMismatch(f"key {key!r}: {exc.message}") from None
            try:
                out[text] = values.encode(item)
            except ValueMismatch as exc:
                raise exc.within(f"[{text!r}]") from None
        return out

    def decode(data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueMismatch(f"expected an object, got {_describe(data)}")
        out: dict[Any, Any] = {}
        for text, item in data.items():
            try:
                key = keys.decode(text)
            except ValueMismatch as exc:
                raise ValueMismatch(f"key {text!r}: {exc.message}") from None
            try:
                out[key] = values.decode(item)
            except ValueMismatch as exc:
                raise exc.within(f"[{text!r}]") from None
        return out

    return Converter(encode, decode)
