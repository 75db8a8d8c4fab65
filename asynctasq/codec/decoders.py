"""Raising: extension types back into the Python values they stand for.

Records (attrs and dataclass instances) are rebuilt like ``pickle`` does: ``cls.__new__``
then each field set with ``object.__setattr__``; no ``__init__``, ``__post_init__``,
validator or converter runs while a message is decoded. A field the message lacks takes
its declared default (plain value or factory); a field the class lacks is an error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any, Final

import attrs

from asynctasq.codec import wire
from asynctasq.codec.classes import find_class
from asynctasq.codec.refs import ORMS, ModelRef
from asynctasq.errors import SerializationError


def unpack(data: bytes | bytearray | memoryview) -> Any:
    """Return the value in ``data`` with every extension type rebuilt.

    Raises:
        SerializationError: an unknown extension type, an unknown zone or class.
        Exception: msgpack's own errors on malformed data (the caller translates them).
    """
    return wire.unpack(data, _ext_hook)


def _ext_hook(code: int, data: bytes) -> Any:
    decoder = _DECODERS.get(code)
    if decoder is None:
        raise SerializationError(f"cannot decode: unknown extension type {code}")
    return decoder(data)


def _tz(payload: Any) -> dt.tzinfo | None:
    if payload is None:
        return None
    if type(payload) is str:
        try:
            return zoneinfo.ZoneInfo(payload)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SerializationError(
                f"cannot decode: time zone {payload!r} is not known here (install tzdata?)"
            ) from None
    offset = dt.timedelta(microseconds=payload[0])
    return dt.timezone(offset, *payload[1:2])


def _datetime(data: bytes) -> dt.datetime:
    year, month, day, hour, minute, second, micro, fold, tz = unpack(data)
    return dt.datetime(year, month, day, hour, minute, second, micro, _tz(tz), fold=fold)


def _time(data: bytes) -> dt.time:
    hour, minute, second, micro, fold, tz = unpack(data)
    return dt.time(hour, minute, second, micro, _tz(tz), fold=fold)


def _enum(data: bytes) -> enum.Enum:
    path, name, *value = unpack(data)
    cls = find_class(path, "an Enum", lambda c: issubclass(c, enum.Enum))
    if name is None and value and issubclass(cls, enum.Flag):
        combined: enum.Enum = cls(value[0])
        return combined
    try:
        member: enum.Enum = cls.__members__[name]
    except (KeyError, TypeError):
        raise SerializationError(f"cannot decode: {path} has no member {name!r}") from None
    return member


def _namedtuple(data: bytes) -> tuple[Any, ...]:
    path, values = unpack(data)
    cls = find_class(path, "a namedtuple", lambda c: issubclass(c, tuple) and hasattr(c, "_fields"))
    if len(values) != len(cls._fields):
        raise SerializationError(f"cannot decode: {path} has {len(cls._fields)} fields")
    return tuple.__new__(cls, values)


def _record(data: bytes, kind: str, is_kind: Callable[[type], bool]) -> Any:
    path, values = unpack(data)
    cls = find_class(path, kind, is_kind)
    defaults = _field_defaults(cls)
    unknown = set(values) - defaults.keys()
    if unknown:
        raise SerializationError(f"cannot decode: {path} has no field {unknown.pop()!r}")
    instance = cls.__new__(cls)
    for name, default in defaults.items():
        if name in values:
            object.__setattr__(instance, name, values[name])
        elif default is not None:
            object.__setattr__(instance, name, default(instance))
    return instance


def _field_defaults(cls: type) -> dict[str, Callable[[Any], Any] | None]:
    """Map each field name to a function making its default from the instance, or None."""
    if attrs.has(cls):
        return {field.name: _attrs_default(field.default) for field in attrs.fields(cls)}
    return {field.name: _dataclass_default(field) for field in dataclasses.fields(cls)}


def _dataclass_default(field: dataclasses.Field[Any]) -> Callable[[Any], Any] | None:
    value, factory = field.default, field.default_factory
    if value is not dataclasses.MISSING:
        return lambda _: value
    if factory is not dataclasses.MISSING:
        return lambda _: factory()
    return None


def _attrs_default(default: Any) -> Callable[[Any], Any] | None:
    if default is attrs.NOTHING:
        return None
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        factory = default.factory
        return factory if default.takes_self else lambda _: factory()
    return lambda _: default


def _model_ref(data: bytes) -> ModelRef:
    """Rebuild a :class:`ModelRef` as data: no class is looked up here (the worker does)."""
    orm, model, pk = unpack(data)
    if orm not in ORMS or type(model) is not str or type(pk) is not list or not pk:
        raise SerializationError(f"cannot decode: malformed model reference {[orm, model, pk]!r}")
    return ModelRef(orm, model, tuple(pk))


def _is_dataclass(cls: type) -> bool:
    return dataclasses.is_dataclass(cls)


_DECODERS: Final[dict[int, Callable[[bytes], Any]]] = {
    wire.BIGINT: lambda d: int.from_bytes(d, "big", signed=True),
    wire.TUPLE: lambda d: tuple(unpack(d)),
    wire.SET: lambda d: set(unpack(d)),
    wire.FROZENSET: lambda d: frozenset(unpack(d)),
    wire.BYTEARRAY: bytearray,
    wire.DATETIME: _datetime,
    wire.DATE: lambda d: dt.date.fromordinal(unpack(d)),
    wire.TIME: _time,
    wire.TIMEDELTA: lambda d: dt.timedelta(*unpack(d)),
    wire.DECIMAL: lambda d: decimal.Decimal(d.decode("ascii")),
    wire.UUID: lambda d: uuid.UUID(bytes=d),
    wire.ENUM: _enum,
    wire.NAMEDTUPLE: _namedtuple,
    wire.DATACLASS: lambda d: _record(d, "a dataclass", _is_dataclass),
    wire.ATTRS: lambda d: _record(d, "an attrs", attrs.has),
    wire.MODEL_REF: _model_ref,
}
