"""The stored form of a dead-letter entry, shared by the Redis and RabbitMQ drivers.

An entry is a msgpack map of the :class:`~asynctasq.drivers.protocol.DeadLetterEntry`
fields plus ``vt_ms``, the lease length in milliseconds of the message it came from, so a
requeued message keeps its visibility timeout. Redis stores the map as a list element;
RabbitMQ as the body of a message in the ``name_dead`` queue.
"""

from __future__ import annotations

from typing import Any

import attrs
import msgpack

from asynctasq.drivers.protocol import DeadLetterEntry


def pack_dead_entry(entry: DeadLetterEntry, vt_ms: int) -> bytes:
    """Return ``entry`` and its lease length ``vt_ms`` (milliseconds) as one msgpack map."""
    fields: dict[str, Any] = {**attrs.asdict(entry), "vt_ms": vt_ms}
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return packed


def unpack_dead_entry(blob: bytes) -> tuple[DeadLetterEntry, int]:
    """Return the entry and its lease length (milliseconds) from :func:`pack_dead_entry`'s bytes.

    Raises:
        ValueError: ``blob`` is not an entry :func:`pack_dead_entry` wrote.

    """
    try:
        fields = msgpack.unpackb(blob, raw=False)
        vt_ms = int(fields.pop("vt_ms"))
        return DeadLetterEntry(**fields), vt_ms
    except Exception as exc:
        raise ValueError(f"not a dead-letter entry ({type(exc).__name__}: {exc})") from exc
