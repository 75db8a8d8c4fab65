"""The worker's task events and completed-task records.

Called by the slot and settle code at each step of a delivery (one line each there). Each
function returns at once when no emitter listens (``bus.wants()``; with only the logging
emitter and its level off that is one ``isEnabledFor`` call), so the hot path pays nothing
for events nobody reads. Emitting never blocks and never raises (the bus queues).

Which event when (SPEC §6):

* ``task_started``: the execution is about to run (after the lookup and argument checks;
  for a process-pool task, when a pool process takes it, not while it waits for one); its
  wall-clock start is kept on the job (``job.started_at``) and is the ``started_at`` of the
  execution's outcome event too;
* ``task_completed``: it returned; ``result`` is a short ``repr`` of the return value
  (:func:`~asynctasq.events.records.result_summary`); with
  ``repository.keep_completed_tasks`` a :class:`~asynctasq.drivers.protocol.CompletedTask`
  is also recorded after the ack;
* ``task_retrying``: it failed and the next attempt is stored (``delay_seconds`` = the wait);
* ``task_failed``: the task was dead-lettered (last attempt failed, unknown task,
  undecodable payload, attempts used up by crashed workers); what is not known (the id and
  name of a payload that could not be read, ``max_attempts``...) is ``None``;
* ``task_cancelled``: the worker stopped while it ran (``error_type``
  ``TaskCancelledError``, as in the log and the dead letter); then, as for any failed
  execution, ``task_retrying`` once its next attempt is stored, or ``task_failed`` when it
  was its last attempt and it was dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from asynctasq import retry
from asynctasq.drivers.protocol import CompletedStore, CompletedTask, DeadLetterEntry
from asynctasq.errors import TaskCancelledError
from asynctasq.events.lifecycle import task_event
from asynctasq.events.records import EventType, TaskEvent, result_summary, utc
from asynctasq.handle import Handle
from asynctasq.message import TaskMessage
from asynctasq.worker.state import Job, WorkerState

logger = logging.getLogger("asynctasq.worker")


def attach(state: WorkerState, handle: Handle) -> None:
    """Give ``state`` the handle's event bus and the ``keep_completed_tasks`` setting.

    When ``repository.keep_completed_tasks`` is on but the driver is not a
    ``CompletedStore``, a warning says so, once, and the worker hands it no history (a
    driver may still keep completed tasks by itself, as the SQL drivers' tables do).
    """
    state.events = handle.event_bus()
    keep = handle.config.repository.keep_completed_tasks
    if keep and not isinstance(state.driver, CompletedStore):
        logger.warning(
            "repository.keep_completed_tasks is on, but the %s driver does not take "
            "completed-task records (it is not a CompletedStore); the worker records none",
            state.driver.name,
        )
        keep = False
    state.keep_completed = keep


def task_started(state: WorkerState, job: Job, attempt: int) -> None:
    """Note the execution's start on ``job`` (``job.started_at``) and emit ``task_started``."""
    now = job.started_at = time.time()
    message = job.message
    bus = state.events
    if message is None or bus is None or not bus.wants():
        return
    bus.publish(
        task_event(
            EventType.TASK_STARTED,
            message,
            now,
            attempt=attempt,
            worker_id=state.worker_id,
            started_at=now,
        )
    )


def task_completed(state: WorkerState, job: Job, attempt: int, duration: float) -> None:
    """Emit ``task_completed`` and, when keeping them, note the record for after the ack."""
    message = job.message
    value, job.result = job.result, None  # the return value is not kept past this point
    if message is None:
        return
    if state.keep_completed:
        now = time.time()
        state.kept[job] = CompletedTask(
            queue=job.delivery.queue,
            task_id=message.task_id,
            task_name=message.task_name,
            attempt=attempt,
            worker_id=state.worker_id,
            dispatched_at=message.dispatched_at,
            started_at=now - duration if job.started_at is None else job.started_at,
            completed_at=now,
            duration_ms=duration * 1000.0,
        )
    bus = state.events
    if bus is None or not bus.wants():
        return
    bus.publish(
        task_event(
            EventType.TASK_COMPLETED,
            message,
            time.time(),
            attempt=attempt,
            worker_id=state.worker_id,
            started_at=job.started_at,
            duration_seconds=duration,
            result=result_summary(value),
        )
    )


def task_retrying(
    state: WorkerState,
    job: Job,
    message: TaskMessage,
    attempt: int,
    duration: float,
    error: BaseException,
    delay_seconds: float,
) -> None:
    """Emit ``task_retrying`` for a failed execution whose next attempt is stored."""
    bus = state.events
    if bus is None or not bus.wants():
        return
    bus.publish(
        task_event(
            EventType.TASK_RETRYING,
            message,
            time.time(),
            attempt=attempt,
            worker_id=state.worker_id,
            started_at=job.started_at,
            duration_seconds=duration,
            error=error,
            delay_seconds=delay_seconds,
        )
    )


def task_failed(
    state: WorkerState,
    job: Job,
    entry: DeadLetterEntry,
    message: TaskMessage | None,
    duration: float | None = None,
) -> None:
    """Emit ``task_failed`` for a dead-lettered delivery (``entry`` says why).

    ``started_at`` and ``duration_ms`` are set when an execution ran (``duration`` given).
    What is not known is ``None``: without a message, ``max_attempts``, the correlation id
    and the dispatch time, and the task id and name when they could not be read either.
    """
    bus = state.events
    if bus is None or not bus.wants():
        return
    now = time.time()
    started = None
    if duration is not None:
        started = utc(now - duration if job.started_at is None else job.started_at)
    bus.publish(
        TaskEvent(
            event_type=EventType.TASK_FAILED,
            task_id=entry.task_id or None,
            task_name=entry.task_name or None,
            queue=entry.queue,
            timestamp=utc(now),
            attempt=entry.attempts,
            max_attempts=message.max_attempts if message else None,
            worker_id=state.worker_id,
            correlation_id=message.correlation_id if message else None,
            dispatched_at=utc(message.dispatched_at) if message else None,
            started_at=started,
            duration_ms=None if duration is None else duration * 1000.0,
            error_type=entry.error_type,
            error_message=entry.error_message,
        )
    )


def cancelled_error(message: TaskMessage, attempt: int, reason: str) -> TaskCancelledError:
    """Return the error of an execution stopped by the worker's shutdown (log, DLQ, event)."""
    return TaskCancelledError(
        f"{reason}: the worker stopped during attempt {attempt} of {message.max_attempts}"
    )


def tasks_cancelled(state: WorkerState, jobs: Sequence[Job], reason: str) -> None:
    """Emit ``task_cancelled`` for the executions among ``jobs`` stopped while running.

    A job whose execution had not begun, or had already ended (its outcome was being
    stored), gets none. ``error_type`` is ``TaskCancelledError`` with the text of
    :func:`cancelled_error`, as the log line and the dead letter say.
    """
    bus = state.events
    if not jobs or bus is None or not bus.wants():
        return
    now, clock = time.time(), time.monotonic()
    for job in jobs:
        message, since = job.message, job.running_since
        if message is None or since is None:
            continue
        attempt = retry.effective_attempt(message.attempt, job.delivery.delivery_count)
        bus.publish(
            task_event(
                EventType.TASK_CANCELLED,
                message,
                now,
                attempt=attempt,
                worker_id=state.worker_id,
                started_at=job.started_at,
                duration_seconds=max(0.0, clock - since),
                error=cancelled_error(message, attempt, reason),
            )
        )


async def keep_acked(state: WorkerState, jobs: Sequence[Job]) -> None:
    """Record the completed tasks among just-acked ``jobs`` (a failure is logged only)."""
    kept = state.kept
    if not kept:
        return
    records = [record for job in jobs if (record := kept.pop(job, None)) is not None]
    store = state.driver
    if not records or not isinstance(store, CompletedStore):
        return
    try:
        await store.keep_completed(records)
    except Exception as exc:  # history is best effort; the tasks are done
        logger.warning("keeping %d completed tasks failed: %s", len(records), exc)
