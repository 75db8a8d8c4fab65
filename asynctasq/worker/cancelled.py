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

A delivery that never began (claimed, still being decoded, or settling an earlier
outcome) is released without using an attempt, as buffered ones are. Each broker call is
made once: if it fails the lease expires and the broker delivers the message again, with
the attempt counted by its raised delivery count.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from asynctasq import retry
from asynctasq.errors import TaskCancelledError
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

REASON = "cancelled at shutdown"


async def settle_cancelled(state: WorkerState, jobs: Sequence[Job]) -> None:
    """Retry or dead-letter the started ``jobs``; release the others (no attempt used)."""
    unstarted = [job for job in jobs if job.running_since is None or job.message is None]
    await release_jobs(state, unstarted, "cancelled before they started")
    for job in jobs:
        if job.running_since is not None and job.message is not None:
            await _settle(state, job, job.message, job.running_since)


async def _settle(state: WorkerState, job: Job, message: TaskMessage, since: float) -> None:
    attempt = retry.effective_attempt(message.attempt, job.delivery.delivery_count)
    error = TaskCancelledError(
        f"{REASON}: the worker stopped during attempt {attempt} of {message.max_attempts}"
    )
    ran = failed_after(time.monotonic() - since, error)
    try:
        if attempt < message.max_attempts:
            await state.driver.retry(job.delivery, next_attempt(message, attempt, 0.0))
            state.retried += 1
            report("retrying", job, message, attempt, f"{ran}; {retrying_in(0)}")
        else:
            entry = dead_letter_entry(job, message, attempt, type(error).__name__, str(error))
            await state.driver.dead_letter(job.delivery, entry)
            state.dead_lettered += 1
            text = f"{ran}; dead-lettered: max attempts ({message.max_attempts}) reached"
            report("dead-lettered", job, message, attempt, text)
    except Exception as exc:  # the lease expires; the redelivery counts this attempt
        log_failure(f"settling cancelled task {message.task_id} ({describe_error(error)})", exc, 1)
    state.held.discard(job)
