"""Settling a delivery: the one broker call an outcome implies, and its report.

* success -> queued for the next batched ``ack`` (one call per loop round, not per task);
* failure with attempts left (and ``should_retry`` agreeing) -> ``driver.retry(delivery,
  next attempt)``: the next message is stored before the old delivery goes (C08);
* final failure -> ``failed(exc)`` once, then ``driver.dead_letter`` with the error's type,
  message and the attempts used;
* no execution possible (undecodable payload, unknown task name, attempts already used up
  by crashed workers) -> ``driver.dead_letter`` with the reason.

Retry and dead-letter calls are repeated until they succeed or the lease is gone
(:func:`asynctasq.worker.recovery.persist`). :func:`report` writes the one log line per
outcome (task id, name, queue, correlation id, attempt, what happened and how long it ran)
— the seam where task events will go.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable

import attrs

from asynctasq import retry
from asynctasq.config.records import MAX_DELAY_SECONDS
from asynctasq.drivers.protocol import (
    MAX_ERROR_MESSAGE_BYTES,
    MAX_ERROR_TYPE_BYTES,
    MAX_TASK_ID_BYTES,
    MAX_TASK_NAME_BYTES,
    DeadLetterEntry,
    Outgoing,
)
from asynctasq.message import TaskMessage, encode
from asynctasq.tasks.definition import ASYNC_MODES, Invocation
from asynctasq.worker.errortext import cut, describe_error, error_text
from asynctasq.worker.recovery import log_failure, pause_seconds, persist
from asynctasq.worker.state import Job, WorkerState
from asynctasq.worker.telemetry import keep_acked, task_completed, task_failed, task_retrying

logger = logging.getLogger("asynctasq.worker")
task_logger = logging.getLogger("asynctasq.task")

INFO = logging.INFO
WARNING = logging.WARNING


def report(
    outcome: str,
    job: Job,
    message: TaskMessage | None,
    attempt: int,
    text: str,
    *,
    ids: tuple[str, str] | None = None,
) -> None:
    """Log one task outcome (cheaply skipped when its level is off).

    ``outcome`` sets the level: ``succeeded`` and ``retrying`` at INFO, ``dead-lettered``
    at WARNING. The line is ``task <id> <name> queue=<q> [correlation_id=<c>] attempt
    <n>/<max> <text>``, e.g.::

        task 3f2a... app.tasks:send queue=default attempt 1/3 succeeded in 0.2 ms
        task 3f2a... app.tasks:send queue=default attempt 1/3 failed after 1002.9 ms
            (TaskTimeoutError: ...); retrying in 1 s
        task 3f2a... app.tasks:send queue=default attempt 3/3 failed after 12.0 ms
            (KeyError: 'x'); dead-lettered: max attempts (3) reached

    (each one line). Without a message (an undecodable payload) there is no attempt part
    and the id and name are ``ids`` when they could be read, else ``-``.
    """
    level = WARNING if outcome == "dead-lettered" else INFO
    if not task_logger.isEnabledFor(level):
        return
    correlation = message.correlation_id if message else None
    task_id, name = (message.task_id, message.task_name) if message else ids or ("-", "-")
    task_logger.log(
        level,
        "task %s %s queue=%s%s%s %s",
        task_id,
        name,
        job.delivery.queue,
        f" correlation_id={correlation}" if correlation else "",
        f" attempt {attempt}/{message.max_attempts}" if message else "",
        text,
    )


def failed_after(duration: float, error: BaseException) -> str:
    """Return ``"failed after <ms> ms (<Type>: <message>)"`` for an outcome line."""
    return f"failed after {duration * 1000.0:.1f} ms ({describe_error(error)})"


def retrying_in(delay_seconds: float) -> str:
    """Return ``"retrying in <n> s"`` (``"retrying at once"`` for no delay)."""
    return f"retrying in {delay_seconds:g} s" if delay_seconds > 0 else "retrying at once"


def succeed(state: WorkerState, job: Job, attempt: int, duration: float) -> None:
    """Queue ``job`` for the next batched ack and report it."""
    state.queue_ack(job)
    task_completed(state, job, attempt, duration)
    report("succeeded", job, job.message, attempt, f"succeeded in {duration * 1000.0:.1f} ms")


async def dead_letter(
    state: WorkerState,
    job: Job,
    message: TaskMessage | None,
    attempts: int,
    error_type: str,
    error_message: str,
    duration: float | None = None,
    *,
    ids: tuple[str, str] | None = None,
) -> None:
    """Move ``job`` to the dead-letter store (retried until it lands or the lease is gone).

    Without a message, ``ids`` (task id, name) fill the entry when they could be read.
    """
    entry = dead_letter_entry(job, message, attempts, error_type, error_message, ids=ids)
    what = f"dead-letter of task {entry.task_id or '(undecodable)'}"
    if await persist(what, lambda: state.driver.dead_letter(job.delivery, entry), _deadline(job)):
        state.dead_lettered += 1
        task_failed(state, job, entry, message, duration)
    state.held.discard(job)


def dead_letter_entry(
    job: Job,
    message: TaskMessage | None,
    attempts: int,
    error_type: str,
    error_message: str,
    *,
    ids: tuple[str, str] | None = None,
) -> DeadLetterEntry:
    """Return the dead-letter entry of ``job``: its raw body, ids, error and attempts used.

    Without a message, ``ids`` (task id, name) fill the entry when they could be read. The
    text fields are cut to the protocol's limits (``MAX_ERROR_MESSAGE_BYTES`` ...) and made
    storable (:mod:`asynctasq.worker.errortext`), so no broker refuses the entry.
    """
    task_id, name = (message.task_id, message.task_name) if message else ids or ("", "")
    return DeadLetterEntry(
        queue=job.delivery.queue,
        body=job.delivery.body,
        task_id=cut(task_id, MAX_TASK_ID_BYTES),
        task_name=cut(name, MAX_TASK_NAME_BYTES),
        error_type=cut(error_type, MAX_ERROR_TYPE_BYTES),
        error_message=cut(error_message, MAX_ERROR_MESSAGE_BYTES),
        attempts=attempts,
        failed_at=time.time(),
    )


def next_attempt(message: TaskMessage, attempt: int, delay_seconds: float) -> Outgoing:
    """Return the message that runs attempt ``attempt + 1``, ``delay_seconds`` from now.

    Its lease length is the message's, at most ``MAX_DELAY_SECONDS`` (a message from
    elsewhere may carry more; dispatch refuses it).
    """
    return Outgoing(
        queue=message.queue,
        body=encode(attrs.evolve(message, attempt=attempt + 1)),
        delay_seconds=delay_seconds,
        visibility_timeout_seconds=min(
            message.visibility_timeout_seconds, float(MAX_DELAY_SECONDS)
        ),
        task_id=message.task_id,
    )


async def run_failed_hook(invocation: Invocation | None, mode: str, error: BaseException) -> None:
    """Call the task's ``failed(error)`` hook; its own errors are logged, never raised."""
    if invocation is None:
        return
    try:
        if mode in ASYNC_MODES:
            result = invocation.failed(error)
            if inspect.isawaitable(result):
                await result
        else:
            await asyncio.to_thread(invocation.failed, error)
    except Exception:
        logger.exception("the failed() hook of a task raised; ignored")


def wants_retry(invocation: Invocation | None, error: BaseException) -> bool:
    """Ask the task's ``should_retry(error)``; if it raises, log it and allow the retry."""
    if invocation is None:
        return True
    try:
        return bool(invocation.should_retry(error))
    except Exception:
        logger.exception("should_retry() of a task raised; treating it as True")
        return True


async def fail(
    state: WorkerState,
    job: Job,
    message: TaskMessage,
    attempt: int,
    error: BaseException,
    invocation: Invocation | None,
    mode: str,
    duration: float,
    *,
    retryable: bool = True,
) -> None:
    """Settle a failed execution: retry it, or run ``failed()`` and dead-letter it."""
    allowed = retryable and wants_retry(invocation, error)
    decision = retry.decide(
        attempt=attempt,
        max_attempts=message.max_attempts,
        strategy=message.retry_strategy,
        base_seconds=message.retry_delay_seconds,
        retry_allowed=allowed,
    )
    if isinstance(decision, retry.Retry):
        outgoing = next_attempt(message, attempt, decision.delay_seconds)
        # published before the store: once stored, the next attempt may start (and finish) on
        # another connection before this call returns, and its events must come after this one
        task_retrying(state, job, message, attempt, duration, error, decision.delay_seconds)
        stored = await persist(
            f"retry of task {message.task_id}",
            lambda: state.driver.retry(job.delivery, outgoing),
            _deadline(job),
        )
        state.held.discard(job)
        if stored:
            state.retried += 1
            if decision.delay_seconds > 0:
                state.maintenance_due_in(decision.delay_seconds)
            text = f"{failed_after(duration, error)}; {retrying_in(decision.delay_seconds)}"
            report("retrying", job, message, attempt, text)
        return
    await run_failed_hook(invocation, mode, error)
    await dead_letter(
        state, job, message, attempt, type(error).__name__, error_text(error), duration=duration
    )
    text = f"{failed_after(duration, error)}; dead-lettered: {decision.reason}"
    report("dead-lettered", job, message, attempt, text)


def _deadline(job: Job) -> Callable[[], float]:
    return lambda: job.deadline


async def run_ack_flusher(state: WorkerState) -> None:
    """Ack finished jobs in batches: whatever piled up since the last call, in one call.

    Returns once ``state.acking`` is False and nothing is left to ack. A failed ack is
    retried (capped backoff) for as long as the worker runs, even past the jobs' leases: a
    driver's ``ack`` skips a delivery another consumer has taken since (the protocol's
    rule), so a late ack is safe, and one that lands before the message was handed out
    again spares the task a second run. What is still unacked when the worker stops is
    logged by ``run_worker``; the broker delivers it again (at-least-once).
    """
    failures = 0
    while True:
        if not state.acks:
            if not state.acking:
                return
            state.ack_waiter = asyncio.get_running_loop().create_future()
            await state.ack_waiter
            continue
        if not await flush_acks(state, failures):  # the failed batch was put back
            failures += 1
            await asyncio.sleep(pause_seconds(failures))
        elif failures:
            logger.warning("acks work again after %d failures", failures)
            failures = 0


async def flush_acks(state: WorkerState, failures: int = 0) -> bool:
    """Ack every queued job in one call; on failure put the batch back for the next call.

    Args:
        state: the worker run.
        failures: how many ack calls in a row failed before this one (for the log line).

    Returns:
        False if the ack call failed, else True. Jobs that finish while the call is in
        flight are queued for the next call; they are not a failure.
    """
    batch, state.acks = state.acks, []
    if not batch:
        return True
    try:
        await state.driver.ack([job.delivery for job in batch])
    except asyncio.CancelledError:
        state.acks[:0] = batch  # the final flush acks them (twice is harmless)
        raise
    except Exception as exc:  # retried by the flusher, past the leases (see run_ack_flusher)
        log_failure(f"ack of {len(batch)} tasks", exc, failures + 1)
        state.acks[:0] = batch
        return False
    state.succeeded += len(batch)
    held = state.held
    for job in batch:
        held.discard(job)
    if state.kept:
        await keep_acked(state, batch)
    return True
