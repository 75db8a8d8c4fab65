"""Event records: what happened to a task or a worker, as frozen values.

Nine event types (SPEC §6; ``task_retrying`` is the seed's name):

========================  =============================================================
``task_enqueued``         a dispatch stored the task (dispatch context)
``task_started``          a worker began an execution
``task_completed``        the execution returned normally
``task_retrying``         the execution failed; its next attempt is being stored
``task_failed``           the task will not run again (last attempt failed, unknown task,
                          undecodable payload, attempts used up): it is dead-lettered
``task_cancelled``        the worker stopped while the execution ran; it was given back
``worker_online``         a worker started
``worker_heartbeat``      a running worker, every ``events.heartbeat_interval`` seconds
``worker_offline``        a worker stopped
========================  =============================================================

Timestamps are timezone-aware ``datetime`` values in UTC; durations are milliseconds.
Events of one process reach an emitter in the order they happened, but events from several
processes (``task_enqueued`` from the dispatching one, the rest from a worker) reach a
subscriber in no guaranteed order: order them by ``timestamp`` (clocks of different
machines should be synchronised, e.g. by NTP).
:func:`event_dict` gives the JSON form the Redis emitter publishes.

Source: SPEC §6; seed/configuration.md "Events Configuration".
"""

from __future__ import annotations

import enum
import reprlib
from datetime import UTC, datetime
from typing import Any

import attrs

RESULT_CHARS = 200
"""The longest ``result`` text of a ``task_completed`` event."""

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 80  # one long string still leaves room for the rest
_REPR.maxother = 80


class EventType(enum.StrEnum):
    """The kind of an event; its value is the wire name (``"task_started"``)."""

    TASK_ENQUEUED = "task_enqueued"
    TASK_STARTED = "task_started"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_RETRYING = "task_retrying"
    TASK_CANCELLED = "task_cancelled"
    WORKER_ONLINE = "worker_online"
    WORKER_HEARTBEAT = "worker_heartbeat"
    WORKER_OFFLINE = "worker_offline"


TASK_EVENTS = frozenset(t for t in EventType if t.value.startswith("task_"))
WORKER_EVENTS = frozenset(t for t in EventType if t.value.startswith("worker_"))


def utc(epoch_seconds: float) -> datetime:
    """Return the UTC ``datetime`` of ``epoch_seconds`` (as from ``time.time()``)."""
    return datetime.fromtimestamp(epoch_seconds, UTC)


def result_summary(value: Any) -> str:
    """Return a short ``repr`` of a task's return value, for ``TaskEvent.result``.

    Abbreviated by :mod:`reprlib`: containers show their first items
    (``[0, 1, 2, 3, 4, 5, ...]``, dict keys sorted), strings and other values at most 80
    characters (``'xxx...xxx'``); then the text is cut to :data:`RESULT_CHARS` characters
    (ending ``...``). A ``__repr__`` that raises gives ``<Type instance at 0x...>``.
    Never raises.

    Example:
        ``result_summary({"sent": 3})`` is ``"{'sent': 3}"``.

    """
    try:
        text = _REPR.repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= RESULT_CHARS else text[: RESULT_CHARS - 3] + "..."


@attrs.frozen
class TaskEvent:
    """Something that happened to one task.

    Attributes:
        event_type: one of the ``task_*`` types.
        task_id: the id ``dispatch()`` returned; ``None`` when unknown (a payload that
            could not be decoded, not even its id).
        task_name: the registered task name; ``None`` when unknown (as ``task_id``).
        queue: the queue name.
        timestamp: when the event happened (UTC). ``task_enqueued``: taken just before the
            broker call (the event is published once the task is stored), so it is never
            later than the ``task_started`` of the same task.
        attempt: the execution number, 1 for the first (at dispatch: 1; for an undecodable
            payload, the broker's delivery count).
        max_attempts: executions allowed in total; ``None`` when unknown.
        worker_id: the worker (``hostname-pid-xxxxxx``); ``None`` at dispatch.
        correlation_id: the tracing id given at dispatch, or ``None``.
        dispatched_at: when the task was first dispatched (UTC), or ``None`` when unknown.
        started_at: when this execution began (UTC): the same value in ``task_started``
            and in the outcome event (completed, retrying, failed, cancelled) of one
            execution; ``None`` when no execution ran (enqueued, an unknown task, ...).
        duration_ms: how long this execution ran, in milliseconds; ``None`` before it ended.
        error_type: the exception class name for failed/retrying/cancelled, e.g.
            ``"ValueError"``; ``"TaskCancelledError"`` for an execution stopped by its
            worker's shutdown.
        error_message: the exception message or the reason.
        result: ``task_completed``: a short ``repr`` of the return value, at most
            :data:`RESULT_CHARS` characters (:func:`result_summary`); ``None`` otherwise.
        delay_seconds: at dispatch, the requested delay; when retrying, the wait before the
            next attempt.

    """

    event_type: EventType
    task_id: str | None
    task_name: str | None
    queue: str
    timestamp: datetime
    attempt: int = 1
    max_attempts: int | None = None
    worker_id: str | None = None
    correlation_id: str | None = None
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    duration_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    result: str | None = None
    delay_seconds: float | None = None


@attrs.frozen
class WorkerEvent:
    """Something that happened to one worker, with its counters at that moment.

    Attributes:
        event_type: one of the ``worker_*`` types.
        worker_id: ``hostname-pid-xxxxxx``.
        hostname: the machine's host name.
        pid: the worker's process id.
        queues: the queues it serves, highest priority first.
        concurrency: the most tasks it runs at once.
        timestamp: when the event happened (UTC).
        active: executions running now.
        processed: deliveries it took to an end (completed + retried + dead-lettered).
        failed: deliveries that ended in an error: retried or dead-lettered (an
            execution that raised or timed out, was cancelled at shutdown, or a delivery
            that could not run: unknown task, undecodable payload, attempts used up);
            ``processed - failed`` is the completed count.
        uptime_seconds: seconds since it started.
        driver: the driver it consumes from, e.g. ``"redis"``.

    """

    event_type: EventType
    worker_id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    timestamp: datetime
    active: int = 0
    processed: int = 0
    failed: int = 0
    uptime_seconds: float = 0.0
    driver: str = ""


Event = TaskEvent | WorkerEvent
"""Either kind of event; what an emitter's ``emit(event)`` receives."""


_NAMES: dict[type, tuple[str, ...]] = {
    TaskEvent: tuple(f.name for f in attrs.fields(TaskEvent)),
    WorkerEvent: tuple(f.name for f in attrs.fields(WorkerEvent)),
}


def event_dict(event: Event) -> dict[str, Any]:
    """Return ``event`` as a JSON-ready dict.

    The event type and datetimes become strings (ISO 8601 with ``+00:00``), the queues a
    list; every field is present (``None`` as null).

    Example:
        ``{"event_type": "task_started", "task_id": "3f2a...", ...,
        "timestamp": "2025-01-31T12:00:00.123456+00:00", ...}``

    """
    found: dict[str, Any] = {}
    for name in _NAMES[type(event)]:
        value = getattr(event, name)
        kind = type(value)
        if kind is datetime:
            value = value.isoformat()
        elif kind is EventType:
            value = value.value
        elif kind is tuple:
            value = list(value)
        found[name] = value
    return found
