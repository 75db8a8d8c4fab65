"""Building task events from a task message (for dispatch and the worker).

Producers call these only after ``bus.wants()`` said someone listens. Times are epoch
seconds from ``time.time()`` in, UTC datetimes out; durations seconds in, milliseconds out.
"""

from __future__ import annotations

from asynctasq.events.records import EventType, TaskEvent, utc
from asynctasq.message import TaskMessage


def task_event(
    kind: EventType,
    message: TaskMessage,
    now: float,
    *,
    attempt: int | None = None,
    worker_id: str | None = None,
    started_at: float | None = None,
    duration_seconds: float | None = None,
    error: BaseException | None = None,
    error_message: str | None = None,
    delay_seconds: float | None = None,
    result: str | None = None,
) -> TaskEvent:
    """Return the ``kind`` event of ``message`` at ``now``.

    Args:
        kind: a ``task_*`` event type.
        message: the task's message.
        now: when it happened, epoch seconds.
        attempt: the execution number (default ``message.attempt``).
        worker_id: the worker, or ``None`` at dispatch.
        started_at: when the execution began, epoch seconds (the value its
            ``task_started`` carried; default, once it ended: ``now - duration_seconds``).
        duration_seconds: how long the execution ran, once it ended.
        error: the execution's error (failed, retrying, cancelled).
        error_message: the error's text when already made (default ``str(error)``).
        delay_seconds: the dispatch delay, or the wait before the next attempt.
        result: the summary of the return value (completed; see
            :func:`~asynctasq.events.records.result_summary`).

    """
    if error is not None and error_message is None:
        try:
            error_message = str(error)
        except Exception:
            error_message = "<its message could not be read>"
    return TaskEvent(
        event_type=kind,
        task_id=message.task_id,
        task_name=message.task_name,
        queue=message.queue,
        timestamp=utc(now),
        attempt=message.attempt if attempt is None else attempt,
        max_attempts=message.max_attempts,
        worker_id=worker_id,
        correlation_id=message.correlation_id,
        dispatched_at=utc(message.dispatched_at),
        started_at=utc(started_at)
        if started_at is not None
        else (None if duration_seconds is None else utc(now - duration_seconds)),
        duration_ms=None if duration_seconds is None else duration_seconds * 1000.0,
        error_type=None if error is None else type(error).__name__,
        error_message=error_message,
        result=result,
        delay_seconds=delay_seconds,
    )
