"""Deliveries a stopping worker cancelled: started ones used an attempt, unstarted did not.

When the grace period ends (or a second signal asks to stop at once), running tasks are
cancelled. Releasing them as if they never ran would let a task longer than the shutdown
grace restart at attempt 1 on every deploy, forever. So a delivery whose execution had
begun is settled like a failure with :class:`~asynctasq.errors.TaskCancelledError`
("cancelled at shutdown"):

* attempts left -> ``driver.retry(delivery, next attempt)`` with no delay (it runs again
  as soon as a worker takes it; ``should_retry`` is not asked: the task did not fail);
* no attempt left -> dead-lettered with that reason (``failed()`` is not called: the worker
  is stopping and will not wait for more user code).

A delivery whose execution had ended but whose outcome (a retry, a dead letter) was still
being stored — the broker kept refusing it — also used its attempt. It is neither released
(that would undo the count and run the attempt again as if it never happened) nor settled
again: it is left to its lease. When the lease expires the broker delivers it again with
the attempt counted, and the next worker retries it or, if that was its last attempt,
dead-letters it as ``WorkerLostError`` (the real error is in this worker's log).

A delivery that never began (claimed, still being decoded, or storing a dead letter for a
message that could not run) is released without using an attempt, as buffered ones are.
Each broker call is made once: if it fails the lease expires and the broker delivers the
message again, with the attempt counted by its raised delivery count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from asynctasq import retry
from asynctasq.message import TaskMessage
from asynctasq.worker.errortext import describe_error
from asynctasq.worker.fetch import release_jobs
from asynctasq.worker.recovery import log_failure
from asynctasq.worker.settle import (
    dead_letter_entry,
    failed_after,
    next_attempt,
    report,
    retrying_in,
)
from asynctasq.worker.state import Job, WorkerState
from asynctasq.worker.telemetry import cancelled_error, task_failed, task_retrying

logger = logging.getLogger("asynctasq.worker")

REASON = "cancelled at shutdown"


async def settle_cancelled(state: WorkerState, jobs: Sequence[Job]) -> None:
    """Settle the cancelled ``jobs``: each started one used an attempt, the others did not.

    Running ones are retried or dead-lettered, those storing an outcome are left to their
    lease, the ones that never ran are released (see the module doc).
    """
    unstarted = [job for job in jobs if not job.ran or job.message is None]
    await release_jobs(state, unstarted, "cancelled before they started")
    settling = []
    for job in jobs:
        if not job.ran or job.message is None:
            continue
        if job.running_since is not None:
            settling.append(_settle(state, job, job.message, job.running_since))
        else:
            _leave_to_lease(state, job, job.message)
    # at once, not one after another: with a broker not answering, N cancelled tasks cost
    # one call timeout rather than N (a second stop signal must exit quickly, SPEC §4)
    await asyncio.gather(*settling)


def _leave_to_lease(state: WorkerState, job: Job, message: TaskMessage) -> None:
    """Let the lease of a job whose outcome could not be stored expire (attempt counted)."""
    attempt = retry.effective_attempt(message.attempt, job.delivery.delivery_count)
    logger.warning(
        "task %s %s queue=%s attempt %d/%d: its outcome could not be stored before the "
        "worker stopped; left to its lease (%g s): the broker then delivers it again with "
        "this attempt counted",
        message.task_id,
        message.task_name,
        job.delivery.queue,
        attempt,
        message.max_attempts,
        job.delivery.visibility_timeout_seconds,
    )
    state.held.discard(job)


async def _settle(state: WorkerState, job: Job, message: TaskMessage, since: float) -> None:
    attempt = retry.effective_attempt(message.attempt, job.delivery.delivery_count)
    error = cancelled_error(message, attempt, REASON)
    duration = time.monotonic() - since
    ran = failed_after(duration, error)
    try:
        if attempt < message.max_attempts:
            await state.driver.retry(job.delivery, next_attempt(message, attempt, 0.0))
            state.retried += 1
            task_retrying(state, job, message, attempt, duration, error, 0.0)
            report("retrying", job, message, attempt, f"{ran}; {retrying_in(0)}")
        else:
            entry = dead_letter_entry(job, message, attempt, type(error).__name__, str(error))
            await state.driver.dead_letter(job.delivery, entry)
            state.dead_lettered += 1
            task_failed(state, job, entry, message, duration)
            text = f"{ran}; dead-lettered: max attempts ({message.max_attempts}) reached"
            report("dead-lettered", job, message, attempt, text)
    except Exception as exc:  # the lease expires; the redelivery counts this attempt
        log_failure(f"settling cancelled task {message.task_id} ({describe_error(error)})", exc, 1)
    state.held.discard(job)
