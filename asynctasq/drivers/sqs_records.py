"""How the SQS driver writes monitoring records: worker tags and completed-task bodies.

Pure functions, no I/O (unit-tested without a server).

* A worker is one tag on the registry queue: key ``worker:<worker id>`` (at most 128
  characters: a longer id keeps its last 121), value the fields of
  :class:`~asynctasq.drivers.protocol.WorkerInfo` plus its expiry, separated by spaces, in
  at most 256 characters of the characters SQS allows in tags (letters, digits, spaces and
  ``_ . : / = + - @``). Queue names (letters, digits, ``-`` and ``_`` on SQS) come last,
  joined by ``:``; those that do not fit are left out, and a host name is shortened to fit.
  Times are epoch seconds to the millisecond.
* A completed task is one JSON body on ``<queue>_completed`` with every field of
  :class:`~asynctasq.drivers.protocol.CompletedTask` and ``seq``, the order it was kept in.

Source: SQS Developer Guide, "Quotas related to queues" (tag keys 128 and values 256
characters, the characters allowed, 50 tags per queue recommended at most).
"""

from __future__ import annotations

import json
import re
from typing import Any

from asynctasq.drivers.protocol import CompletedTask, WorkerInfo

TAG_PREFIX = "worker:"
"""Keys of worker tags start with this; other tags of the registry queue are left alone."""

KEY_MAX = 128
VALUE_MAX = 256
TAGS_MAX = 50
"""Tags SQS holds per queue: the registry lists at most this many workers."""

_VERSION = "1"
_UNSAFE = re.compile(r"[^\w.:/=+\-@]")


def tag_key(worker_id: str) -> str:
    """Return the tag key of ``worker_id`` (its last characters when it is too long)."""
    return TAG_PREFIX + worker_id[-(KEY_MAX - len(TAG_PREFIX)) :]


def _time(seconds: float) -> str:
    return f"{seconds:.3f}"


def pack_worker(worker: WorkerInfo, now: float, ttl_seconds: float) -> str:
    """Return the tag value of ``worker`` heard at ``now``, live for ``ttl_seconds``."""
    host = _UNSAFE.sub("_", worker.hostname) or "_"
    driver = _UNSAFE.sub("_", worker.driver) or "_"
    queues = [_UNSAFE.sub("_", queue) for queue in worker.queues]
    head = [
        _VERSION,
        str(worker.pid),
        str(worker.concurrency),
        driver,
        _time(worker.started_at),
        _time(now),
        _time(now + max(0.0, ttl_seconds)),
        str(worker.active),
        str(worker.processed),
        str(worker.failed),
    ]

    def value() -> str:
        return " ".join([*head, host, ":".join(queues)])

    while len(value()) > VALUE_MAX and queues:
        queues.pop()
    spare = VALUE_MAX - len(value())
    if spare < 0:
        host = host[: len(host) + spare]
    return value()


def unpack_worker(key: str, value: str) -> tuple[WorkerInfo, float]:
    """Return the worker kept in a tag and when it expires (epoch seconds).

    Raises:
        ValueError: the tag was not written by :func:`pack_worker`.

    """
    if not key.startswith(TAG_PREFIX):
        raise ValueError(f"not a worker tag: {key!r}")
    parts = value.split(" ")
    if len(parts) != 12 or parts[0] != _VERSION:
        raise ValueError(f"not a worker record: {value!r}")
    _, pid, concurrency, driver, started, beat, expires, active, processed, failed = parts[:10]
    host, queues = parts[10], parts[11]
    worker = WorkerInfo(
        worker_id=key[len(TAG_PREFIX) :],
        hostname=host,
        pid=int(pid),
        queues=tuple(queues.split(":")) if queues else (),
        concurrency=int(concurrency),
        driver=driver,
        started_at=float(started),
        last_heartbeat=float(beat),
        active=int(active),
        processed=int(processed),
        failed=int(failed),
    )
    return worker, float(expires)


def completed_body(task: CompletedTask, seq: int) -> str:
    """Return the JSON body of a completed-task record kept ``seq``-th (larger: later)."""
    fields: dict[str, Any] = {
        "queue": task.queue,
        "task_id": task.task_id,
        "task_name": task.task_name,
        "attempt": task.attempt,
        "worker_id": task.worker_id,
        "dispatched_at": task.dispatched_at,
        "started_at": task.started_at,
        "completed_at": task.completed_at,
        "duration_ms": task.duration_ms,
        "seq": seq,
    }
    return json.dumps(fields)


def parse_completed(text: str) -> tuple[CompletedTask, int]:
    """Return the record and its ``seq`` kept in a completed-task body.

    Raises:
        ValueError: the body was not written by :func:`completed_body`.

    """
    try:
        found = json.loads(text)
        task = CompletedTask(
            queue=str(found["queue"]),
            task_id=str(found["task_id"]),
            task_name=str(found["task_name"]),
            attempt=int(found["attempt"]),
            worker_id=str(found["worker_id"]),
            dispatched_at=float(found["dispatched_at"]),
            started_at=float(found["started_at"]),
            completed_at=float(found["completed_at"]),
            duration_ms=float(found["duration_ms"]),
        )
        return task, int(found["seq"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an asynctasq completed-task record: {exc}") from exc
