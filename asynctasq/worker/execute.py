"""Executing one task: run its body by mode, enforce its timeout, return the error or None.

No broker calls here. Modes (SPEC §3):

* ``async``: awaited on the worker's loop inside ``asyncio.timeout``. A body that blocks the
  loop cannot be pre-empted; if it returns after its timeout it still counts as timed out
  (FIELD-CASES C16.2), and the lease loop logs the stall.
* ``sync``: run in a worker thread (:mod:`asynctasq.worker.threads`). At the timeout the run
  is reported as failed with ``TaskTimeoutError`` while the thread finishes on its own; the
  slot waits for that thread before its next task, so threads stay bounded (C16.1).
* ``async_process`` / ``sync_process``: the process pool is not part of this version; such
  a task fails with :class:`~asynctasq.errors.ProcessPoolUnavailableError` and is
  dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import time

from asynctasq.errors import ProcessPoolUnavailableError, TaskTimeoutError
from asynctasq.message import TaskMessage
from asynctasq.tasks.definition import Invocation
from asynctasq.worker.state import Job
from asynctasq.worker.threads import ThreadRunner


def timeout_error(message: TaskMessage, elapsed_seconds: float) -> TaskTimeoutError:
    """Return the error recorded for an execution of ``message`` that ran out of time."""
    return TaskTimeoutError(
        f"task {message.task_name!r} ({message.task_id}) exceeded its timeout of "
        f"{message.timeout_seconds:g} s (ran {elapsed_seconds:.2f} s)"
    )


async def run_async(invocation: Invocation, message: TaskMessage) -> BaseException | None:
    """Await an async task's body within its timeout; return its error or ``None``."""
    limit = message.timeout_seconds
    if limit is None:
        try:
            await invocation.execute()
        except Exception as exc:  # the task's failure is the outcome
            return exc
        return None
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            await invocation.execute()
    except TimeoutError:
        return timeout_error(message, time.monotonic() - started)
    except Exception as exc:
        return exc
    elapsed = time.monotonic() - started
    if elapsed > limit:  # it blocked the loop past its deadline and then returned
        return timeout_error(message, elapsed)
    return None


async def run_sync(
    invocation: Invocation, message: TaskMessage, job: Job, threads: ThreadRunner
) -> BaseException | None:
    """Run a sync task's body in a worker thread within its timeout.

    On timeout the thread's call is left in ``job.thread``: the caller waits for
    ``job.thread.finished`` before reusing its slot.
    """
    call = threads.submit(invocation.execute)
    limit = message.timeout_seconds
    started = time.monotonic()
    try:
        if limit is None:
            await call.result
        else:
            async with asyncio.timeout(limit):
                await call.result
    except TimeoutError:
        job.thread = call
        return timeout_error(message, time.monotonic() - started)
    except asyncio.CancelledError:
        job.thread = call
        raise
    except Exception as exc:
        return exc
    return None


async def execute(
    invocation: Invocation, mode: str, message: TaskMessage, job: Job, threads: ThreadRunner
) -> BaseException | None:
    """Run one execution of ``message`` in ``mode``; return its error, or ``None`` on success.

    ``mode`` is the registered task's own (the worker trusts its registry, not the message).

    ``asyncio.CancelledError`` (a worker abort) propagates; every other exception of the
    body, and a timeout (as ``TaskTimeoutError``), is returned.
    """
    if mode == "async":
        return await run_async(invocation, message)
    if mode == "sync":
        return await run_sync(invocation, message, job, threads)
    return ProcessPoolUnavailableError(
        f"task {message.task_name!r} has mode {mode!r}: process-pool tasks are not supported "
        "by this version of the worker"
    )
