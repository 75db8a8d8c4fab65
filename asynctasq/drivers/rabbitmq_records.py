"""The RabbitMQ driver's monitoring queues: their names, arguments and message layouts.

Three kinds of small durable queues, written with publisher confirms through the default
exchange (so they need no binding) and read by peeking (:mod:`rabbitmq_monitor`):

* ``{exchange}.queues`` (the queue catalog): one message per queue whose topology a driver
  declared, the body being the queue name (UTF-8). Duplicates are removed when read.
* ``{exchange}.workers`` (the worker registry): heartbeats, each expiring after the
  worker's ttl (per-message ``expiration``, judged by the broker's clock), and
  ``removed`` records published when a worker stops. The newest record of a worker wins.
* ``{queue}_completed``: completed tasks, oldest at the head; ``x-max-length`` with
  ``drop-head`` keeps the newest ``completed_limit``.

Plus ``{exchange}.reader-lock``, an exclusive queue that exists only while a reader peeks.
Bodies other than the catalog's are msgpack maps; every message is persistent and carries
a unique ``message_id`` (aiormq matches a returned, unroutable message to its publish by
it).
"""

from __future__ import annotations

from typing import Any

import attrs
import msgpack
from aio_pika import DeliveryMode, Message

from asynctasq.drivers.protocol import CompletedTask, WorkerInfo
from asynctasq.drivers.rabbitmq_format import TASK_ID

CATALOG_MAX_LENGTH = 10_000
"""The most records the catalog keeps (the oldest dropped); reads remove duplicates."""

WORKERS_MAX_LENGTH = 10_000
"""The most heartbeat records the registry keeps (the oldest dropped)."""

REMOVED_TTL_MS = 3_600_000
"""How long a ``removed`` record lives when the worker's ttl is not known here."""

WORKER_ID = "x-asynctasq-worker-id"
RECORD = "x-asynctasq-record"


def catalog_name(exchange: str) -> str:
    """Return the name of the queue catalog of ``exchange``."""
    return f"{exchange}.queues"


def workers_name(exchange: str) -> str:
    """Return the name of the worker registry of ``exchange``."""
    return f"{exchange}.workers"


def lock_name(exchange: str) -> str:
    """Return the name of the exclusive queue that serializes readers of ``exchange``."""
    return f"{exchange}.reader-lock"


def completed_name(queue: str) -> str:
    """Return the name of the queue keeping ``queue``'s completed tasks."""
    return f"{queue}_completed"


MAX_NAME_BYTES = 255
"""AMQP's limit on a queue or exchange name (a short string), in UTF-8 bytes."""

LONGEST_SUFFIX = max(len("_completed"), len("_delayed"), len("_dead"))


def queue_name_problem(queue: str, exchange: str) -> str | None:
    """Return why ``queue`` cannot be a task queue of ``exchange`` here, or ``None``.

    Refused: names the driver gives its own queues (``*_delayed``, ``*_dead``,
    ``*_completed``, ``{exchange}.queues``, ``{exchange}.workers``,
    ``{exchange}.reader-lock``) — used as a task queue, one would be declared both ways and
    the broker would refuse one of them — names RabbitMQ reserves (``amq.*``), and names
    too long for the companion queues (255 bytes with the longest suffix).
    """
    for suffix, what in (
        ("_delayed", "delayed"),
        ("_dead", "dead-letter"),
        ("_completed", "completed-task"),
    ):
        if queue.endswith(suffix):
            return (
                f"names ending in {suffix!r} are taken: the RabbitMQ driver keeps each "
                f"queue's {what} messages in '<queue>{suffix}'"
            )
    if queue in (catalog_name(exchange), workers_name(exchange), lock_name(exchange)):
        return (
            f"the RabbitMQ driver uses {queue!r} for monitoring (exchange {exchange!r}): "
            "names '<exchange>.queues', '.workers' and '.reader-lock' are taken"
        )
    if queue.startswith("amq."):
        return "RabbitMQ reserves names starting with 'amq.'"
    if len(queue.encode()) + LONGEST_SUFFIX > MAX_NAME_BYTES:
        return (
            f"at most {MAX_NAME_BYTES - LONGEST_SUFFIX} bytes (AMQP names are at most "
            f"{MAX_NAME_BYTES} bytes, and the driver appends up to {LONGEST_SUFFIX})"
        )
    return None


def bounded(max_length: int) -> dict[str, Any]:
    """Return queue arguments keeping the newest ``max_length`` messages (drop-head)."""
    return {"x-max-length": max_length, "x-overflow": "drop-head"}


def _expiration(ttl_ms: int) -> float:
    # aio-pika sends int(seconds * 1000): the half millisecond survives float rounding.
    return (max(1, ttl_ms) + 0.5) / 1000


def _message(body: bytes, message_id: str, **properties: Any) -> Message:
    return Message(body, delivery_mode=DeliveryMode.PERSISTENT, message_id=message_id, **properties)


def catalog_record(queue: str, message_id: str) -> Message:
    """Return the catalog record of ``queue``."""
    return _message(queue.encode(), message_id, content_type="text/plain")


def read_catalog(body: bytes) -> str:
    """Return the queue name of a catalog record.

    Raises:
        ValueError: ``body`` is not UTF-8 or empty.

    """
    try:
        name = body.decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"not a catalog record ({exc})") from exc
    if not name:
        raise ValueError("not a catalog record (empty)")
    return name


def heartbeat(worker: WorkerInfo, now: float, ttl_ms: int, message_id: str) -> Message:
    """Return the heartbeat record of ``worker`` stamped ``now``, expiring after ``ttl_ms``."""
    fields = attrs.asdict(worker)
    fields["last_heartbeat"] = now
    fields["queues"] = list(worker.queues)
    return _message(
        msgpack.packb({"kind": "heartbeat", "worker": fields}, use_bin_type=True),
        message_id,
        content_type="application/msgpack",
        expiration=_expiration(ttl_ms),
        headers={WORKER_ID: worker.worker_id, RECORD: "heartbeat"},
    )


def removed(worker_id: str, ttl_ms: int, message_id: str) -> Message:
    """Return the record saying ``worker_id`` stopped, expiring after ``ttl_ms``."""
    return _message(
        msgpack.packb({"kind": "removed", "worker_id": worker_id}, use_bin_type=True),
        message_id,
        content_type="application/msgpack",
        expiration=_expiration(ttl_ms),
        headers={WORKER_ID: worker_id, RECORD: "removed"},
    )


def read_worker(body: bytes) -> tuple[str, WorkerInfo | None]:
    """Return ``(worker id, info)`` of a registry record; info is ``None`` for ``removed``.

    Raises:
        ValueError: ``body`` is not a registry record.

    """
    try:
        record = msgpack.unpackb(body, raw=False)
        if record["kind"] == "removed":
            return str(record["worker_id"]), None
        fields = dict(record["worker"])
        fields["queues"] = tuple(fields["queues"])
        info = WorkerInfo(**fields)
    except Exception as exc:
        raise ValueError(f"not a worker record ({type(exc).__name__}: {exc})") from exc
    return info.worker_id, info


def completed(task: CompletedTask, message_id: str) -> Message:
    """Return the stored form of a completed task."""
    return _message(
        msgpack.packb(attrs.asdict(task), use_bin_type=True),
        message_id,
        content_type="application/msgpack",
        headers={TASK_ID: task.task_id},
    )


def read_completed(body: bytes) -> CompletedTask:
    """Return the completed task of a stored record.

    Raises:
        ValueError: ``body`` is not a completed-task record.

    """
    try:
        return CompletedTask(**msgpack.unpackb(body, raw=False))
    except Exception as exc:
        raise ValueError(f"not a completed-task record ({type(exc).__name__}: {exc})") from exc
