"""The msgpack seam: the implementation in use, the extension type codes, packing.

Every other codec module reaches msgpack through this module's attributes at call time, so
a test can swap in ``msgpack.fallback`` (the pure-Python build ``MSGPACK_PUREPYTHON=1``
selects) and run the same round trips against both builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgpack

Packer: Any = msgpack.Packer
unpackb: Callable[..., Any] = msgpack.unpackb
ExtType: Final[Any] = msgpack.ExtType

# Extension type codes of message format version 1. Never renumber; only add new codes.
BIGINT: Final = 1
TUPLE: Final = 2
SET: Final = 3
FROZENSET: Final = 4
BYTEARRAY: Final = 5
DATETIME: Final = 6
DATE: Final = 7
TIME: Final = 8
TIMEDELTA: Final = 9
DECIMAL: Final = 10
UUID: Final = 11
ENUM: Final = 12
NAMEDTUPLE: Final = 13
DATACLASS: Final = 14
ATTRS: Final = 15
MODEL_REF: Final = 16


def packb(native: object) -> bytes:
    """Return msgpack bytes for ``native``: only native values and ExtType, ints of any size.

    ``strict_types`` makes msgpack refuse what was not lowered (a tuple would otherwise
    silently become a list).

    Raises:
        TypeError: ``native`` holds a value that is neither native nor an ExtType.
        ValueError: nesting deeper than msgpack's limit.
    """
    return Packer(default=_bigint, strict_types=True).pack(native)  # type: ignore[no-any-return]


def ext(code: int, payload: object) -> Any:
    """Return an ExtType of ``code`` whose data is ``payload`` packed (a lowered tree)."""
    return ExtType(code, packb(payload))


def unpack(data: bytes | bytearray | memoryview, ext_hook: Callable[[int, bytes], Any]) -> Any:
    """Return the msgpack value in ``data``; maps may have any keys (tuples, ints, ...).

    Raises:
        Exception: whatever msgpack or ``ext_hook`` raises on bad data (callers translate it).
    """
    return unpackb(data, ext_hook=ext_hook, strict_map_key=False, raw=False)


def _bigint(obj: object) -> Any:
    """Encode an int beyond msgpack's 64-bit range (the only value ``default`` is given)."""
    if type(obj) is int:
        return ExtType(BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "big", signed=True))
    raise TypeError(f"cannot pack a {type(obj).__qualname__}: it was not lowered")
