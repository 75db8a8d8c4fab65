"""Executing one task: run its body by mode, enforce its timeout, return the error or None.

No broker calls here. Modes (SPEC §3):

* ``async``: awaited on the worker's loop inside ``asyncio.timeout``. A body that blocks the
  loop cannot be pre-empted; if it returns after its timeout it still counts as timed out
  (FIELD-CASES C16.2), and the lease loop logs the stall.
* ``sync``: run in a worker thread (:mod:`asynctasq.worker.threads`). At the timeout the run
  is reported as failed with ``TaskTimeoutError`` while the thread finishes on its own; the
  slot waits for that thread before its next task, so threads stay bounded (C16.1).
* ``async_process`` / ``sync_process``: run in a pool process (:mod:`asynctasq.worker.pool`,
  :mod:`asynctasq.tasks.infrastructure.process_pool_manager`). At the timeout the pool
  process is killed and the run fails with ``TaskTimeoutError``; a pool process that dies
  fails the run with ``PoolProcessDiedError``; both are retried like any failure. A task
  no pool can run fails with :class:`~asynctasq.errors.ProcessPoolUnavailableError` and
  is dead-lettered at once. A task waiting for a free pool process has not started: its
  ``started`` callback runs when a process takes it (until then a stop request gives its
  delivery back without using an attempt).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from asynctasq.errors import AsyncTasQError, ProcessPoolUnavailableError, TaskTimeoutError
from asynctasq.message import TaskMessage
from asynctasq.tasks.current import current_task
from asynctasq.tasks.definition import Invocation
from asynctasq.tasks.infrastructure.frames import Failed, Run
from asynctasq.worker.pool import WorkerPool
from asynctasq.worker.state import Job
from asynctasq.worker.threads import ThreadRunner


def _nothing() -> None:
    """The default ``started`` callback."""


def timeout_error(message: TaskMessage, elapsed_seconds: float) -> TaskTimeoutError:
    """Return the error recorded for an execution of ``message`` that ran out of time."""
    return TaskTimeoutError(
        f"task {message.task_name!r} ({message.task_id}) exceeded its timeout of "
        f"{message.timeout_seconds:g} s (ran {elapsed_seconds:.2f} s)"
    )


async def run_async(
    invocation: Invocation, message: TaskMessage, job: Job | None = None
) -> BaseException | None:
    """Await an async task's body within its timeout; return its error or ``None``.

    On success its return value is left in ``job.result`` (for ``task_completed``).
    """
    limit = message.timeout_seconds
    if limit is None:
        try:
            value = await invocation.execute()
        except Exception as exc:  # the task's failure is the outcome
            return exc
        if job is not None:
            job.result = value
        return None
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            value = await invocation.execute()
    except TimeoutError:
        return timeout_error(message, time.monotonic() - started)
    except Exception as exc:
        return exc
    elapsed = time.monotonic() - started
    if elapsed > limit:  # it blocked the loop past its deadline and then returned
        return timeout_error(message, elapsed)
    if job is not None:
        job.result = value
    return None


async def run_sync(
    invocation: Invocation, message: TaskMessage, job: Job, threads: ThreadRunner
) -> BaseException | None:
    """Run a sync task's body in a worker thread within its timeout.

    On timeout the thread's call is left in ``job.thread``: the caller waits for
    ``job.thread.finished`` before reusing its slot. On success the return value is left
    in ``job.result``.
    """
    call = threads.submit(invocation.execute)
    limit = message.timeout_seconds
    started = time.monotonic()
    try:
        if limit is None:
            job.result = await call.result
        else:
            async with asyncio.timeout(limit):
                job.result = await call.result
    except TimeoutError:
        job.thread = call
        return timeout_error(message, time.monotonic() - started)
    except asyncio.CancelledError:
        job.thread = call
        raise
    except Exception as exc:
        return exc
    return None


async def run_process(
    pool: WorkerPool | None,
    message: TaskMessage,
    started: Callable[[], None] = _nothing,
    job: Job | None = None,
) -> BaseException | None:
    """Run a process-pool task's body in a pool process; return its error or ``None``.

    The pool process receives the message (name, arguments, ids) and the attempt number;
    ``started()`` is called when a pool process takes it (a task waiting for a free
    process has not started), and the task's timeout counts from then: past it the
    process is killed. ``asyncio.CancelledError`` (a worker abort) kills the process and
    propagates; while the task waits for a process, nothing is killed.
    """
    reason = "" if pool is None else pool.unpoolable.get(message.task_name, "")
    if pool is None or pool.manager is None or reason:
        return ProcessPoolUnavailableError(
            reason or f"task {message.task_name!r} needs the process pool, which this worker lacks"
        )
    info = current_task()
    frame = Run(
        message=message,
        attempt=info.attempt if info is not None else message.attempt,
        worker_id=info.worker_id if info is not None else "",
    )
    try:
        reply = await pool.manager.run(frame, message.timeout_seconds, started)
    except TimeoutError as exc:  # args[0]: seconds it ran in its pool process
        ran = exc.args[0] if exc.args else message.timeout_seconds or 0.0
        return TaskTimeoutError(f"{timeout_error(message, ran)}; its pool process was killed")
    except AsyncTasQError as exc:  # died, arguments not picklable, no process available
        return exc
    if isinstance(reply, Failed):
        return reply.error
    if job is not None:  # the value the pool process sent back (``job.result``)
        job.result = reply.value
    return None


async def execute(
    invocation: Invocation,
    mode: str,
    message: TaskMessage,
    job: Job,
    threads: ThreadRunner,
    pool: WorkerPool | None = None,
    started: Callable[[], None] = _nothing,
) -> BaseException | None:
    """Run one execution of ``message`` in ``mode``; return its error, or ``None`` on success.

    ``mode`` is the registered task's own (the worker trusts its registry, not the message).
    ``pool`` runs the process-pool modes (``None``: the worker has none). ``started()`` is
    called when the body really begins: at once for ``async`` and ``sync``, when a pool
    process takes the task for the process modes (never if no process does).

    ``asyncio.CancelledError`` (a worker abort) propagates; every other exception of the
    body, and a timeout (as ``TaskTimeoutError``), is returned.
    """
    if mode == "async":
        started()
        return await run_async(invocation, message, job)
    if mode == "sync":
        started()
        return await run_sync(invocation, message, job, threads)
    return await run_process(pool, message, started, job)
