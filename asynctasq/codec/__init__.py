"""The argument codec: Python values to msgpack and back, with their types intact.

:func:`lower` turns a value into a tree msgpack packs natively (``None``, ``bool``, ``int``,
``float``, ``str``, ``bytes``, ``list``, ``dict``) plus extension types for the rest;
:func:`pack` writes that tree; :func:`unpack` reads it back into the original types.

What travels, and what comes back:

=========================================  ==============================================
sent                                       received
=========================================  ==============================================
None, bool, float (nan, inf), str, bytes   the same (native msgpack)
int of any size, negative too              int (beyond 64 bits as an extension type)
list, dict (any keys, tuple keys too)      list, dict (key order kept)
tuple, set, frozenset, bytearray           the same type
datetime                                   datetime: naive stays naive; see *Time zones*
date, time (with or without tzinfo)        date, time
timedelta                                  timedelta (exact days, seconds, microseconds)
Decimal                                    Decimal with the same digits (NaN, Infinity too)
UUID or a subclass (asyncpg's)             uuid.UUID
Enum member (Flag combinations too)        the same member of the same class
namedtuple, attrs or dataclass instance    an instance of the same class, fields restored
ModelRef (an ORM row: asynctasq.orm)       ModelRef (the worker loads the row again)
=========================================  ==============================================

Subclasses of ``datetime``, ``date``, ``time``, ``timedelta``, ``Decimal`` and ``UUID`` come
back as the base class. Any other value (a subclass of ``str``, ``int``, ``list`` or
``dict``, a lock, a function, a generator ...) raises :class:`SerializationError` naming
where it is, e.g. ``cannot serialize kwargs['when']['x'] (a _thread.lock): ...``.

Time zones: a ``zoneinfo.ZoneInfo`` with a key comes back as ``ZoneInfo(key)`` (the same
cached object); a ``datetime.timezone`` as a ``datetime.timezone`` with the same offset and
name (so ``timezone.utc`` stays ``timezone.utc``); any other tzinfo (pytz, dateutil, a
``ZoneInfo`` loaded from a file) as an unnamed ``datetime.timezone`` with the UTC offset it
had. The ``fold`` of a datetime or time is kept. A ``time`` whose tzinfo gives no offset
without a date (any tzinfo but ``ZoneInfo`` and ``timezone``) cannot travel.

Classes (Enum, namedtuple, attrs, dataclass) travel as ``module:qualname`` and must be
defined at module level of an importable module. Decoding is safe by construction: it
looks the class up in ``sys.modules`` only, never imports a module, accepts only the kind
the message claims (an Enum subclass, a namedtuple class, an attrs class, a dataclass), and
never runs the class's ``__init__``: the instance is made with ``cls.__new__(cls)`` and its
fields are set as they were, like ``pickle`` does. Fields the message lacks take their
declared default; unknown field names are an error. A class from a script run as
``__main__`` travels under that script's importable module name.

Both msgpack builds (the C extension and ``MSGPACK_PUREPYTHON=1``) produce and read the
same bytes: the codec hands msgpack only native values and :class:`msgpack.ExtType`.

Modules: :mod:`.wire` (msgpack and the extension codes), :mod:`.encoders` (lowering),
:mod:`.decoders` (rebuilding), :mod:`.classes` (classes by import path, found safely).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from asynctasq.codec import decoders, encoders, wire
from asynctasq.errors import SerializationError

__all__ = ["lower", "lower_items", "pack", "unpack"]


def lower(value: object, where: str) -> Any:
    """Return ``value`` as a tree msgpack packs natively (extension types for the rest).

    Args:
        value: any supported value (see the module docstring).
        where: how to name ``value`` in an error, e.g. ``"kwargs"``.

    Returns:
        The value itself when it is already native (lists and dicts are not copied then).

    Raises:
        SerializationError: a value inside cannot travel; the message names its path,
            e.g. ``cannot serialize kwargs['when'][2] (a function): unsupported type; ...``.
    """
    try:
        return encoders.lower(value)
    except encoders.UnsupportedError as exc:
        raise _error(where, exc) from None
    except RecursionError:
        raise SerializationError(
            f"cannot serialize {where}: nested too deeply, or it contains itself"
        ) from None


def lower_items(items: Collection[Any], where: str) -> list[Any]:
    """Return the items of a tuple, list or set lowered into a list.

    Args:
        items: the values, e.g. a task's positional arguments.
        where: how to name ``items`` in an error; an item is ``where[i]``, e.g. ``args[1]``.

    Raises:
        SerializationError: an item cannot travel; the message names its path.
    """
    try:
        return encoders.lower_items(items)
    except encoders.UnsupportedError as exc:
        raise _error(where, exc) from None
    except RecursionError:
        raise SerializationError(
            f"cannot serialize {where}: nested too deeply, or it contains itself"
        ) from None


def pack(native: object) -> bytes:
    """Return msgpack bytes for a tree made by :func:`lower` (ints beyond 64 bits allowed).

    Raises:
        SerializationError: the tree holds a value :func:`lower` did not produce, or is
            nested deeper than msgpack allows.
    """
    try:
        return wire.packb(native)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"cannot serialize: {exc}") from None


def unpack(data: bytes | bytearray | memoryview) -> Any:
    """Return the value encoded in ``data``, extension types turned back into their types.

    Raises:
        SerializationError: ``data`` is not msgpack, is truncated or has trailing bytes, holds
            an unknown extension type, or names a class or zone this process cannot use.
    """
    try:
        return decoders.unpack(data)
    except SerializationError:
        raise
    except Exception as exc:
        detail = str(exc) or "malformed msgpack"
        raise SerializationError(f"cannot decode: {type(exc).__name__}: {detail}") from None


def _error(where: str, exc: encoders.UnsupportedError) -> SerializationError:
    path = where + "".join(reversed(exc.segments))
    kind = exc.kind
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return SerializationError(f"cannot serialize {path} (a {name}): {exc.reason}")
