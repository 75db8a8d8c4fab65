"""Slots: ``concurrency`` long-lived coroutines, each taking one delivery at a time.

A slot pops a claimed delivery from the local buffer, decodes it, finds the task in the
worker's :class:`~asynctasq.tasks.registry.Registry` (only there: a message never causes an
import — SPEC §4, Security), executes it and settles it. No asyncio task is created per
delivery; an idle slot parks on a future the fetch loop resolves when it hands out work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from asynctasq import retry
from asynctasq.codec import wire
from asynctasq.errors import ProcessPoolUnavailableError, TaskNotFoundError, WorkerLostError
from asynctasq.message import TaskMessage, decode
from asynctasq.tasks.current import set_running
from asynctasq.tasks.definition import PROCESS_MODES, Invocation, TaskDefinition
from asynctasq.worker.errortext import MAX_LOG_ERROR_BYTES, cut, describe_error, error_text
from asynctasq.worker.execute import execute
from asynctasq.worker.models import bind
from asynctasq.worker.settle import (
    dead_letter,
    fail,
    report,
    run_failed_hook,
    succeed,
)
from asynctasq.worker.state import Job, WorkerState
from asynctasq.worker.telemetry import task_started

logger = logging.getLogger("asynctasq.worker")


async def run_slot(state: WorkerState, aborted: list[Job]) -> None:
    """Take deliveries from the buffer and process them until there is no more work.

    Ends when the fetch loop has ended and the buffer is empty, or at once on a stop
    request (buffered deliveries are then released by ``run_worker``). If cancelled (an
    abort), the job in hand is appended to ``aborted`` for release.
    """
    buffer = state.buffer
    draining = state.shutdown.draining
    while True:
        if draining.is_set():
            return
        if not buffer:
            if not state.fetching:
                return
            await state.wait_for_work()
            continue
        job = buffer.popleft()
        state.busy += 1
        state.running.add(job)
        try:
            await process(state, job)
        except asyncio.CancelledError:
            aborted.append(job)
            raise
        finally:
            state.busy -= 1
            state.running.discard(job)
            state.wake_fetcher()
        if job.thread is not None:
            await _wait_for_thread(job, draining)


async def _wait_for_thread(job: Job, draining: asyncio.Event) -> None:
    """Hold the slot until a timed-out sync call's thread is really done (bounded threads).

    A stop request ends the wait: the job is settled, and the thread is a daemon.
    """
    call = job.thread
    if call is None or call.finished.done():
        return
    started = time.monotonic()
    stop: asyncio.Future[Any] = asyncio.ensure_future(draining.wait())
    try:
        await asyncio.wait([call.finished, stop], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not call.finished.done():
        return
    logger.warning(
        "the thread of timed-out task %s finished %.1f s later; its slot is free again",
        job.message.task_id if job.message else "?",
        time.monotonic() - started,
    )


async def process(state: WorkerState, job: Job) -> None:
    """Decode, look up, execute and settle one delivery. Never raises but for cancellation."""
    started = time.monotonic()
    delivery = job.delivery
    try:
        message = decode(delivery.body)
    except Exception as exc:  # garbage is dead-lettered, never fatal
        await _undecodable(state, job, exc)
        return
    job.message = message
    definition = state.registry.find(message.task_name)
    if definition is None:
        await _unknown_task(state, job, message)
        return
    earlier = state.executing.get(message.task_id)
    if earlier is not None and await _settled_by_earlier_run(state, job, message, earlier):
        return
    mine: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    state.executing[message.task_id] = mine
    try:
        mine.set_result(await _run_found(state, job, message, definition, started))
    finally:
        if state.executing.get(message.task_id) is mine:
            del state.executing[message.task_id]
        if not mine.done():
            mine.set_result(False)


async def _settled_by_earlier_run(
    state: WorkerState, job: Job, message: TaskMessage, earlier: asyncio.Future[bool]
) -> bool:
    """Wait for this worker's run of the same task; ack ``job`` unrun if that run succeeded.

    The broker delivers a message again when its lease lapses, which can happen while it
    still runs here (renewals failed: the broker was unreachable for longer than the
    visibility timeout). Running it a second time beside the first would be a silent
    duplicate; this delivery waits for the first run instead and, if that run succeeded,
    is acked without running. Otherwise it runs as the next attempt.

    Returns:
        True if ``job`` was settled (acked); False if it should run.
    """
    logger.warning(
        "task %s %s queue=%s: delivered again while this worker still runs it (its lease "
        "lapsed); this delivery waits for that run",
        message.task_id,
        message.task_name,
        job.delivery.queue,
    )
    if not await asyncio.shield(earlier):
        return False
    state.queue_ack(job)
    logger.warning(
        "task %s %s: the run still in progress here succeeded; its second delivery is "
        "acked without running again",
        message.task_id,
        message.task_name,
    )
    return True


async def _run_found(
    state: WorkerState,
    job: Job,
    message: TaskMessage,
    definition: TaskDefinition,
    started: float,
) -> bool:
    """Execute and settle a decoded delivery of a registered task; return if it succeeded."""
    delivery = job.delivery
    lost = retry.decide_redelivery(
        message_attempt=message.attempt,
        delivery_count=delivery.delivery_count,
        max_attempts=message.max_attempts,
    )
    attempt = retry.effective_attempt(message.attempt, delivery.delivery_count)
    set_running(message, attempt, state.worker_id)
    invocation: Invocation | None = None
    error: BaseException | None
    try:
        invocation = bind(definition, message, state.models)
    except Exception as exc:  # the arguments do not fit the task
        error = exc
    else:
        if lost is not None:
            await _lost(state, job, message, attempt - 1, lost.reason, invocation, definition.mode)
            return False
        slot = asyncio.current_task()
        if definition.mode in PROCESS_MODES and slot is not None:  # it may wait for a process
            state.pool_waiting[job] = slot
        try:
            error = await execute(
                invocation,
                definition.mode,
                message,
                job,
                state.threads,
                state.process_pool,
                lambda: _begin(state, job, message, attempt),
            )
        finally:
            state.pool_waiting.pop(job, None)
        job.running_since = None
    duration = time.monotonic() - started
    if error is None:
        succeed(state, job, attempt, duration)
        return True
    await fail(
        state,
        job,
        message,
        attempt,
        error,
        invocation,
        definition.mode,
        duration,
        retryable=not isinstance(error, ProcessPoolUnavailableError),
    )
    return False


def _begin(state: WorkerState, job: Job, message: TaskMessage, attempt: int) -> None:
    """Mark ``job``'s execution as begun (from here a cancellation uses the attempt)."""
    state.pool_waiting.pop(job, None)
    job.running_since = time.monotonic()
    job.ran = True
    task_started(state, job, attempt)


async def _unknown_task(state: WorkerState, job: Job, message: TaskMessage) -> None:
    """Dead-letter a message naming a task this worker's registry lacks (loudly)."""
    error = TaskNotFoundError(
        f"unknown task {message.task_name!r}: not registered in the worker that received it"
    )
    attempt = retry.effective_attempt(message.attempt, job.delivery.delivery_count)
    logger.error(
        "unknown task %r (task %s on queue %r): not registered in this worker; "
        "registered: %s. Dead-lettered.",
        message.task_name,
        message.task_id,
        job.delivery.queue,
        ", ".join(state.registry.names) or "none",
    )
    await dead_letter(state, job, message, attempt, type(error).__name__, str(error))
    report("dead-lettered", job, message, attempt, f"dead-lettered: {describe_error(error)}")


def readable_ids(body: bytes) -> tuple[str, str] | None:
    """Return the task id and name of an undecodable body when they can still be read.

    A body of the message layout (:mod:`asynctasq.message`: a msgpack array whose items 1
    and 2 are the id and name) that fails later (another format version, a bad field, an
    argument this process cannot rebuild) still names its task; garbage gives ``None``.
    """
    try:
        fields = wire.unpack(body, lambda code, data: None)
    except Exception:  # not msgpack at all
        return None
    if type(fields) is list and len(fields) > 2:
        task_id, name = fields[1], fields[2]
        if type(task_id) is str and type(name) is str:
            return task_id, name
    return None


async def _undecodable(state: WorkerState, job: Job, error: Exception) -> None:
    """Dead-letter a body that is not a task message, raw bytes kept (one log line)."""
    ids = readable_ids(job.delivery.body)
    reason = f"undecodable payload: {error_text(error)}"
    count = job.delivery.delivery_count
    await dead_letter(state, job, None, count, "SerializationError", reason, ids=ids)
    shown = cut(reason, MAX_LOG_ERROR_BYTES)
    report("dead-lettered", job, None, count, f"dead-lettered: {shown}", ids=ids)


async def _lost(
    state: WorkerState,
    job: Job,
    message: TaskMessage,
    attempts: int,
    reason: str,
    invocation: Invocation,
    mode: str,
) -> None:
    """Dead-letter a delivery whose attempts were all used by crashed executions (C02)."""
    error = WorkerLostError(f"{reason} (worker lost / visibility timeout expired)")
    await run_failed_hook(invocation, mode, error)
    await dead_letter(state, job, message, attempts, type(error).__name__, str(error))
    report("dead-lettered", job, message, attempts, f"dead-lettered: {describe_error(error)}")
