"""The worker's task events and completed-task records.

Called by the slot and settle code at each step of a delivery (one line each there). Each
function returns at once when no emitter listens (``bus.wants()``; with only the logging
emitter and its level off that is one ``isEnabledFor`` call), so the hot path pays nothing
for events nobody reads. Emitting never blocks and never raises (the bus queues).

Which event when (SPEC §6):

* ``task_started``: the execution is about to run (after the lookup and argument checks;
  for a process-pool task, when a pool process takes it, not while it waits for one);
* ``task_completed``: it returned; with ``repository.keep_completed_tasks`` a
  :class:`~asynctasq.drivers.protocol.CompletedTask` is also recorded after the ack;
* ``task_retrying``: it failed and the next attempt is stored (``delay_seconds`` = the wait);
* ``task_failed``: the task was dead-lettered (last attempt failed, unknown task,
  undecodable payload, attempts used up by crashed workers);
* ``task_cancelled``: the worker stopped while it ran; its delivery was given back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from asynctasq.drivers.protocol import CompletedStore, CompletedTask, DeadLetterEntry
from asynctasq.events.lifecycle import task_event
from asynctasq.events.records import EventType, TaskEvent, utc
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


def task_started(state: WorkerState, message: TaskMessage, attempt: int) -> None:
    """Emit ``task_started`` for the execution about to run."""
    bus = state.events
    if bus is None or not bus.wants():
        return
    now = time.time()
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
            started_at=now - duration,
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
            duration_seconds=duration,
        )
    )


def task_retrying(
    state: WorkerState,
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
            duration_seconds=duration,
            error=error,
            delay_seconds=delay_seconds,
        )
    )


def task_failed(
    state: WorkerState,
    entry: DeadLetterEntry,
    message: TaskMessage | None,
    duration: float | None = None,
) -> None:
    """Emit ``task_failed`` for a dead-lettered delivery (``entry`` says why)."""
    bus = state.events
    if bus is None or not bus.wants():
        return
    now = time.time()
    started = None if duration is None else utc(now - duration)
    bus.publish(
        TaskEvent(
            event_type=EventType.TASK_FAILED,
            task_id=entry.task_id,
            task_name=entry.task_name,
            queue=entry.queue,
            timestamp=utc(now),
            attempt=entry.attempts,
            max_attempts=message.max_attempts if message else 0,
            worker_id=state.worker_id,
            correlation_id=message.correlation_id if message else None,
            dispatched_at=utc(message.dispatched_at) if message else None,
            started_at=started,
            duration_ms=None if duration is None else duration * 1000.0,
            error_type=entry.error_type,
            error_message=entry.error_message,
        )
    )


def tasks_cancelled(state: WorkerState, jobs: Sequence[Job], reason: str) -> None:
    """Emit ``task_cancelled`` for executions stopped by the worker's shutdown."""
    bus = state.events
    if not jobs or bus is None or not bus.wants():
        return
    now = time.time()
    error = asyncio.CancelledError(reason)
    for job in jobs:
        message = job.message
        if message is not None:
            bus.publish(
                task_event(
                    EventType.TASK_CANCELLED,
                    message,
                    now,
                    worker_id=state.worker_id,
                    error=error,
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
