"""How the Redis driver lays out keys, list elements and dead-letter entries.

Keys (SPEC §5): ready list ``queue:{name}``, in-flight sorted set ``queue:{name}:processing``
scored by lease deadline, delayed sorted set ``queue:{name}:delayed`` scored by due time,
dead-letter list ``queue:{name}:dead`` (oldest first).

A list element is a small driver header followed by the message body, unchanged::

    <id>:<vt_ms>:<count>:<body>

``id`` makes every stored message distinct (two equal bodies must never collapse into one
member of the processing set); ``vt_ms`` is the lease length in milliseconds, read by the
claim script; ``count`` is how many times the element has been delivered, raised by the
claim script. The body is never decoded by the driver.

A dead-letter entry is a msgpack map of the :class:`DeadLetterEntry` fields plus ``vt_ms``
(so a requeued message keeps its lease length).
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any

import msgpack

from asynctasq.drivers.protocol import DeadLetterEntry, Delivery


def ready_key(queue: str) -> str:
    """Return the ready list key of ``queue``."""
    return f"queue:{queue}"


def processing_key(queue: str) -> str:
    """Return the in-flight sorted set key of ``queue``."""
    return f"queue:{queue}:processing"


def delayed_key(queue: str) -> str:
    """Return the delayed sorted set key of ``queue``."""
    return f"queue:{queue}:delayed"


def dead_key(queue: str) -> str:
    """Return the dead-letter list key of ``queue``."""
    return f"queue:{queue}:dead"


def to_ms(seconds: float) -> int:
    """Return ``seconds`` as whole milliseconds, rounded up (a delay is never shortened)."""
    return math.ceil(seconds * 1000)


class ElementIds:
    """Makes element ids unique across processes: a random prefix and a counter, in hex."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex().encode()
        self._counter = itertools.count(1)

    def element(self, body: bytes, visibility_timeout_seconds: float, count: int = 0) -> bytes:
        """Return the list element for ``body``: header (fresh id, lease ms, count) + body."""
        header = b"%s%x:%d:%d:" % (
            self._prefix,
            next(self._counter),
            max(1, to_ms(visibility_timeout_seconds)),
            count,
        )
        return header + body


def delivery(queue: str, member: bytes) -> Delivery:
    """Return the :class:`Delivery` for a leased element; the element itself is the receipt."""
    _, vt_ms, count, body = member.split(b":", 3)
    return Delivery(queue, body, member, int(count), int(vt_ms) / 1000)


def lease_ms(member: bytes) -> int:
    """Return the lease length in milliseconds written in an element's header."""
    return int(member.split(b":", 2)[1])


def pack_dead(entry: DeadLetterEntry, vt_ms: int) -> bytes:
    """Return the stored form of a dead-letter entry (msgpack map)."""
    fields: dict[str, Any] = {
        "queue": entry.queue,
        "body": entry.body,
        "task_id": entry.task_id,
        "task_name": entry.task_name,
        "error_type": entry.error_type,
        "error_message": entry.error_message,
        "attempts": entry.attempts,
        "failed_at": entry.failed_at,
        "vt_ms": vt_ms,
    }
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return packed


def unpack_dead(blob: bytes) -> tuple[DeadLetterEntry, int]:
    """Return the entry and its lease length (ms) from a stored dead letter.

    Raises:
        ValueError: ``blob`` is not an entry this module wrote.

    """
    try:
        fields = msgpack.unpackb(blob, raw=False)
        vt_ms = int(fields.pop("vt_ms"))
        return DeadLetterEntry(**fields), vt_ms
    except Exception as exc:
        raise ValueError(f"not a dead-letter entry ({type(exc).__name__}: {exc})") from exc
