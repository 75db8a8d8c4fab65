"""How the RabbitMQ driver names its queues and lays out message properties and headers.

Topology (SPEC §5): one durable direct exchange (``RabbitMQConfig.exchange_name``); per
queue ``name`` three durable queues, each bound to the exchange under its own name:

* ``name``: ready messages, declared with ``x-max-priority: 1``. Ordinary messages have
  priority 0; released and re-stamped messages priority 1, so they are served first.
* ``name_delayed``: messages not due yet, each with its due time in a header.
* ``name_dead``: dead letters, the entry's fields packed with msgpack as the body.

Every stored message is persistent (``delivery_mode`` 2) and carries a unique
``message_id`` (aiormq matches a returned, unroutable message to its publish by it) and
these headers:

* ``x-asynctasq-count``: deliveries already counted for this body before this copy (0 for
  a fresh message); the driver reports ``delivery_count = count + 1``.
* ``x-asynctasq-vt-ms``: the visibility timeout in milliseconds (the lease length the
  worker plans with).
* ``x-asynctasq-task-id``: the task id, for operators reading the queue.
* ``x-asynctasq-due-ms`` (delayed messages only): when it becomes due, epoch milliseconds.

Dead letters also carry ``x-asynctasq-error-type``, ``x-asynctasq-error`` (cut to
:data:`MAX_ERROR_HEADER_CHARS`) and ``x-asynctasq-attempts``, readable in any management
tool; the complete entry is the body.
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractIncomingMessage

from asynctasq.drivers.dead_entry_format import pack_dead_entry
from asynctasq.drivers.protocol import DeadLetterEntry, Outgoing

COUNT = "x-asynctasq-count"
VT_MS = "x-asynctasq-vt-ms"
TASK_ID = "x-asynctasq-task-id"
DUE_MS = "x-asynctasq-due-ms"
ERROR_TYPE = "x-asynctasq-error-type"
ERROR = "x-asynctasq-error"
ATTEMPTS = "x-asynctasq-attempts"

NORMAL = 0
"""Priority of ordinary messages."""

FRONT = 1
"""Priority of released and re-stamped messages: served before every ordinary one."""

MAIN_ARGUMENTS: dict[str, Any] = {"x-max-priority": FRONT}
"""Arguments of every ready queue (a queue declared otherwise is refused by the broker).

Source: RabbitMQ docs, "Classic Queues Support Priorities": a queue is a priority queue
only if declared with ``x-max-priority``; higher priorities are delivered first."""

MAX_ERROR_HEADER_CHARS = 1000


def delayed_name(queue: str) -> str:
    """Return the name of the queue holding ``queue``'s delayed messages."""
    return f"{queue}_delayed"


def dead_name(queue: str) -> str:
    """Return the name of ``queue``'s dead-letter queue."""
    return f"{queue}_dead"


def to_ms(seconds: float) -> int:
    """Return ``seconds`` as whole milliseconds, rounded up (a delay is never shortened)."""
    return math.ceil(seconds * 1000)


def task_id_of(message: AbstractIncomingMessage) -> str:
    """Return the ``x-asynctasq-task-id`` header of ``message`` ("" if absent)."""
    value = (message.headers or {}).get(TASK_ID)
    return value if isinstance(value, str) else ""


def header_int(message: AbstractIncomingMessage, key: str, default: int = 0) -> int:
    """Return the integer header ``key`` of ``message``, or ``default`` if absent or odd."""
    value = (message.headers or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class MessageIds:
    """Makes message ids unique across processes: a random prefix and a counter, in hex."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        """Return a new id."""
        return f"{self._prefix}{next(self._counter):x}"


def stored(
    body: bytes,
    *,
    message_id: str,
    vt_ms: int,
    count: int = 0,
    task_id: str = "",
    due_ms: int | None = None,
    priority: int = NORMAL,
) -> Message:
    """Return a persistent message with the driver's headers (see the module docstring)."""
    headers: dict[str, Any] = {COUNT: count, VT_MS: max(1, vt_ms), TASK_ID: task_id}
    if due_ms is not None:
        headers[DUE_MS] = due_ms
    return Message(
        body,
        headers=headers,
        delivery_mode=DeliveryMode.PERSISTENT,
        priority=priority,
        message_id=message_id,
    )


def outgoing(message: Outgoing, message_id: str, now_ms: int) -> tuple[str, Message]:
    """Return ``(routing key, message)`` storing ``message``: ready, or delayed until due.

    Args:
        message: what to store.
        message_id: a fresh id from :class:`MessageIds`.
        now_ms: the current wall-clock time, epoch milliseconds.

    """
    vt_ms = to_ms(message.visibility_timeout_seconds)
    if message.delay_seconds > 0:
        due_ms = now_ms + to_ms(message.delay_seconds)
        amqp = stored(
            message.body,
            message_id=message_id,
            vt_ms=vt_ms,
            task_id=message.task_id,
            due_ms=due_ms,
        )
        return delayed_name(message.queue), amqp
    return message.queue, stored(
        message.body, message_id=message_id, vt_ms=vt_ms, task_id=message.task_id
    )


def copy_of(
    message: AbstractIncomingMessage, message_id: str, *, count: int, priority: int
) -> Message:
    """Return a ready copy of a received message with the given count and priority."""
    headers = message.headers or {}
    task_id = headers.get(TASK_ID)
    return stored(
        message.body,
        message_id=message_id,
        vt_ms=header_int(message, VT_MS, 1),
        count=count,
        task_id=task_id if isinstance(task_id, str) else "",
        priority=priority,
    )


def dead_letter(entry: DeadLetterEntry, vt_ms: int, message_id: str) -> Message:
    """Return the stored form of a dead-letter entry: msgpack body, summary headers."""
    body = pack_dead_entry(entry, vt_ms)
    return Message(
        body,
        headers={
            TASK_ID: entry.task_id,
            ERROR_TYPE: entry.error_type,
            ERROR: entry.error_message[:MAX_ERROR_HEADER_CHARS],
            ATTEMPTS: entry.attempts,
        },
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message_id,
        content_type="application/msgpack",
    )
