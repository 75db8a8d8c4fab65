"""Lowering: a Python value to a tree of msgpack-native values and extension types.

Fast path: a list or dict whose items are all of native types (checked in C with
``set(map(type, ...))``) is returned as is, not walked. Only containers holding something
else are walked, and only values msgpack would change (a tuple, a bytearray, a datetime...)
are converted. An int beyond 64 bits is left for :func:`~asynctasq.codec.wire.packb`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
import zoneinfo
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any, Final

import attrs

from asynctasq.codec import wire
from asynctasq.codec.classes import class_path
from asynctasq.codec.refs import ModelRef

NATIVE: Final = frozenset({str, int, float, bool, type(None), bytes})
_MICROSECOND: Final = dt.timedelta(microseconds=1)
_SUPPORTED: Final = (
    "supported are None, bool, int, float, str, bytes, bytearray, list, tuple, dict, set, "
    "frozenset, datetime, date, time, timedelta, Decimal, UUID, Enum members, namedtuples, "
    "attrs and dataclass instances"
)


class UnsupportedError(Exception):
    """A value of type ``kind`` cannot travel; ``segments`` is its path, innermost first."""

    def __init__(self, kind: type, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.segments: list[str] = []


def lower(obj: object) -> Any:
    """Return ``obj`` as native values and ExtTypes.

    Raises:
        UnsupportedError: a value inside cannot travel.
        RecursionError: nested too deeply, or the value contains itself.
    """
    kind = type(obj)
    if kind in NATIVE:
        return obj
    if kind is list:
        return lower_items(obj)  # type: ignore[arg-type]
    if kind is dict:
        return _lower_dict(obj)  # type: ignore[arg-type]
    encoder = _ENCODERS.get(kind) or _encoder_for(obj)
    return encoder(obj)


def lower_items(items: Collection[Any]) -> list[Any]:
    """Return the items of a list, tuple or set lowered into a list (the list itself if native).

    Raises:
        UnsupportedError: an item cannot travel (its index is added to the path).
    """
    if set(map(type, items)) <= NATIVE:
        return items if type(items) is list else list(items)
    out = []
    for index, item in enumerate(items):
        try:
            out.append(item if type(item) in NATIVE else lower(item))
        except UnsupportedError as exc:
            exc.segments.append(f"[{index}]")
            raise
    return out


def _lower_dict(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    if set(map(type, mapping)) <= NATIVE and set(map(type, mapping.values())) <= NATIVE:
        return mapping  # type: ignore[return-value]
    out = {}
    for index, (key, value) in enumerate(mapping.items()):
        try:
            native_key = key if type(key) in NATIVE else lower(key)
        except UnsupportedError as exc:
            exc.segments.append(f" key #{index}")
            raise
        try:
            out[native_key] = value if type(value) in NATIVE else lower(value)
        except UnsupportedError as exc:
            exc.segments.append(f"[{_short_repr(key)}]")
            raise
    return out


def _lower_fields(obj: object, names: Iterable[str]) -> dict[str, Any]:
    out = {}
    for name in names:
        try:
            value = getattr(obj, name)
        except AttributeError:
            continue  # a field never set (init=False without a default) stays unset
        try:
            out[name] = value if type(value) in NATIVE else lower(value)
        except UnsupportedError as exc:
            exc.segments.append(f".{name}")
            raise
    return out


def _datetime(value: dt.datetime) -> Any:
    tz = _tz_payload(value.tzinfo, value.utcoffset(), dt.datetime)
    date = [value.year, value.month, value.day]
    time = [value.hour, value.minute, value.second, value.microsecond]
    return wire.ext(wire.DATETIME, [*date, *time, value.fold, tz])


def _time(value: dt.time) -> Any:
    tz = _tz_payload(value.tzinfo, value.utcoffset(), dt.time)
    fields = [value.hour, value.minute, value.second, value.microsecond, value.fold]
    return wire.ext(wire.TIME, [*fields, tz])


def _tz_payload(tz: dt.tzinfo | None, offset: dt.timedelta | None, kind: type) -> Any:
    """Return ``None`` (naive), a ZoneInfo key, or ``[offset_us]`` / ``[offset_us, name]``."""
    if tz is None:
        return None
    if type(tz) is zoneinfo.ZoneInfo and tz.key is not None:
        return tz.key
    if offset is None:
        raise UnsupportedError(kind, f"its tzinfo {tz!r} gives no UTC offset")
    micros = offset // _MICROSECOND
    if type(tz) is dt.timezone:
        name = tz.tzname(None)
        if name != dt.timezone(offset).tzname(None):
            return [micros, name]
    return [micros]


@lru_cache(maxsize=1024)
def _enum(member: enum.Enum) -> Any:
    path = _path(type(member))
    if member.name is not None and member.name in type(member).__members__:
        return wire.ext(wire.ENUM, [path, member.name])
    return wire.ext(wire.ENUM, [path, None, lower(member.value)])  # a Flag combination


def _namedtuple(value: Any) -> Any:
    fields = _lower_fields(value, value._fields)
    return wire.ext(wire.NAMEDTUPLE, [_path(value.__class__), list(fields.values())])


def _dataclass(value: Any) -> Any:
    names = [field.name for field in dataclasses.fields(value)]
    return wire.ext(wire.DATACLASS, [_path(value.__class__), _lower_fields(value, names)])


def _attrs(value: Any) -> Any:
    names = [field.name for field in attrs.fields(value.__class__)]
    return wire.ext(wire.ATTRS, [_path(value.__class__), _lower_fields(value, names)])


def _path(cls: Any) -> str:
    path = class_path(cls)
    if path is None:
        raise UnsupportedError(
            cls,
            f"class {cls.__module__}:{cls.__qualname__} cannot be found by its import path; "
            "define it at module level of an importable module",
        )
    return path


_ENCODERS: Final[dict[type, Callable[[Any], Any]]] = {
    tuple: lambda v: wire.ext(wire.TUPLE, lower_items(v)),
    set: lambda v: wire.ext(wire.SET, lower_items(v)),
    frozenset: lambda v: wire.ext(wire.FROZENSET, lower_items(v)),
    bytearray: lambda v: wire.ExtType(wire.BYTEARRAY, bytes(v)),
    dt.datetime: _datetime,
    dt.date: lambda v: wire.ext(wire.DATE, v.toordinal()),
    dt.time: _time,
    dt.timedelta: lambda v: wire.ext(wire.TIMEDELTA, [v.days, v.seconds, v.microseconds]),
    decimal.Decimal: lambda v: wire.ExtType(wire.DECIMAL, str(v).encode("ascii")),
    uuid.UUID: lambda v: wire.ExtType(wire.UUID, v.bytes),
    ModelRef: lambda v: wire.ext(wire.MODEL_REF, [v.orm, v.model, lower_items(v.pk)]),
}
# Base classes whose subclasses travel as the base class (datetime before date).
_DEGRADED: Final = (dt.datetime, dt.date, dt.time, dt.timedelta, decimal.Decimal, uuid.UUID)
_REFUSED: Final = (str, int, float, bytes, bytearray, list, dict, tuple, set, frozenset)


def _encoder_for(obj: object) -> Callable[[Any], Any]:
    kind = type(obj)
    if isinstance(obj, enum.Enum):
        return _enum
    if isinstance(obj, tuple) and hasattr(kind, "_fields"):
        return _namedtuple
    if attrs.has(kind):
        return _attrs
    if dataclasses.is_dataclass(kind):
        return _dataclass
    for base in _DEGRADED:
        if isinstance(obj, base):
            return _ENCODERS[base]
    for refused in _REFUSED:
        if isinstance(obj, refused):
            name = refused.__name__
            reason = f"subclasses of {name} are not supported; pass a plain {name}"
            raise UnsupportedError(kind, reason)
    raise UnsupportedError(kind, f"unsupported type; {_SUPPORTED}")


def _short_repr(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."
