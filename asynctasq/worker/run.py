"""``run_worker``: wire the worker's loops together and stop them in order.

A worker runs exactly the tasks it is given, as modules, ``@task`` functions or task
classes (or a ready :class:`~asynctasq.tasks.registry.Registry`); nothing registers itself
at import. In your own tests, with the in-process memory driver::

    import myapp.tasks
    from asynctasq import configured, run_worker

    async def test_welcome_mail_is_sent() -> None:
        async with configured(driver="memory") as handle:
            await myapp.tasks.send_welcome("a@example.com").dispatch()
            stats = await run_worker(handle, tasks=[myapp.tasks], queues=["default"], max_tasks=1)
        assert stats.succeeded == 1

The pieces, each a plain coroutine over one :class:`WorkerState`:

* :func:`~asynctasq.worker.fetch.run_fetcher` claims ``min(free slots, batch)`` deliveries
  per broker call into a local buffer;
* ``concurrency`` :func:`~asynctasq.worker.slot.run_slot` coroutines take them one at a
  time (decode, look the task up in the worker's registry, execute, settle);
* :func:`~asynctasq.worker.settle.run_ack_flusher` acks finished tasks in batches;
* :class:`~asynctasq.worker.lease_thread.LeaseThread` (network brokers) or
  :func:`~asynctasq.worker.lease.run_leases` (memory driver) renews leases at a third of
  their length;
* :func:`~asynctasq.worker.maintain.run_maintenance` promotes delayed and recovers expired
  deliveries every driver interval;
* :class:`~asynctasq.worker.stall.StallWatch` reports a blocked event loop.
* :func:`~asynctasq.worker.pool.open_worker_pool` starts the process pool when some
  task runs in it (``process=True``, ``AsyncProcessTask``, ``SyncProcessTask``).

Stopping (SPEC §4, FIELD-CASES C18): on the first stop request fetching stops, buffered
deliveries and process tasks still waiting for a free pool process are released at once
(not an attempt; they had not started), running tasks get
``shutdown_grace_seconds`` to finish and settle; then (or at once on a second request)
running tasks are cancelled and settled like a failure, ``TaskCancelledError`` "cancelled
at shutdown": retried at once while attempts remain, else dead-lettered
(:mod:`asynctasq.worker.cancelled`). Finished tasks are acked, and the function returns
:class:`WorkerStats`. It never closes the handle (its owner does).

ORM models passed as task arguments are loaded again before each execution
(:mod:`asynctasq.orm`); when the worker stops it disposes ``sqlalchemy_engine`` and closes
Tortoise if it initialised it (SPEC §8).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any

from asynctasq import context
from asynctasq.drivers import build_driver
from asynctasq.handle import Handle
from asynctasq.orm import ModelLoader
from asynctasq.tasks.infrastructure.guard import refuse_in_pool_process
from asynctasq.tasks.registry import Registry, TaskSource
from asynctasq.worker.cancelled import settle_cancelled
from asynctasq.worker.fetch import release_jobs, run_fetcher
from asynctasq.worker.heartbeat import announce_offline, announce_online, run_heartbeat
from asynctasq.worker.lease import run_leases
from asynctasq.worker.lease_thread import LeaseThread
from asynctasq.worker.maintain import run_maintenance
from asynctasq.worker.pool import WorkerPool, close_worker_pool, open_worker_pool
from asynctasq.worker.settle import flush_acks, run_ack_flusher
from asynctasq.worker.shutdown import Shutdown, signal_handlers, timed_stop_step
from asynctasq.worker.slot import run_slot
from asynctasq.worker.stall import StallWatch
from asynctasq.worker.startup import check_pool_size, check_queue_names, worker_registry
from asynctasq.worker.state import (
    MAX_BATCH,
    Job,
    WorkerSettings,
    WorkerState,
    WorkerStats,
    check_settings,
    new_worker_id,
)
from asynctasq.worker.telemetry import attach, tasks_cancelled
from asynctasq.worker.threads import ThreadRunner

logger = logging.getLogger("asynctasq.worker")

FINAL_ACK_SECONDS = 10.0
"""How long the last acks may take when stopping gracefully (one try when aborting)."""

LAST_ACK_SECONDS = 5.0
"""How long the one ack call after the ack loop ended may take (a broker not answering)."""


async def run_worker(
    handle: Handle,
    *,
    tasks: Registry | Iterable[TaskSource],
    queues: Sequence[str] | None = None,
    concurrency: int = 10,
    max_tasks: int | None = None,
    shutdown_grace_seconds: float = 30.0,
    driver: str | None = None,
    shutdown: Shutdown | None = None,
    handle_signals: bool = True,
    batch_size: int = MAX_BATCH,
    wait_seconds: float = 1.0,
    rotate_every: int = 8,
    lease_thread: bool | None = None,
) -> WorkerStats:
    """Run a worker on ``handle`` until stopped, or until ``max_tasks`` deliveries were handled.

    ::

        await run_worker(handle, tasks=[myapp.tasks], queues=["high", "default"], max_tasks=3)

    Args:
        handle: the initialised handle (``asynctasq.init()``, ``configured()``); its driver
            is used, and tasks run with it current (their own dispatches go through it).
        tasks: what this worker may run (required): loaded modules (their top-level tasks;
            a package's already-imported submodules too), ``@task`` functions and task
            classes, or a :class:`~asynctasq.tasks.registry.Registry` from
            ``build_registry``. A message naming any other task is dead-lettered with
            ``TaskNotFoundError``; it never makes the worker import anything. An empty
            list is allowed (logged as a warning: every message is then dead-lettered).
        queues: queue names, highest priority first (default ``[task_defaults.queue]``).
        concurrency: the most tasks in flight (>= 1); also the sync-task thread ceiling.
        max_tasks: stop after handling this many deliveries (>= 1); ``None`` runs until stopped.
        shutdown_grace_seconds: how long running tasks may finish after a stop request.
        driver: the driver name to consume from (default ``config.driver``).
        shutdown: a :class:`Shutdown` to stop the worker from code (one is made otherwise).
        handle_signals: route SIGTERM/SIGINT to the shutdown (main thread only).
        batch_size: the most deliveries claimed per broker call (never above free slots).
        wait_seconds: how long an idle fetch blocks on the broker.
        rotate_every: every this-many fetches a lower-priority queue is asked first.
        lease_thread: renew leases from a thread with its own driver (immune to a blocked
            loop); ``None`` does so for every driver but the in-process ``memory`` one.

    Returns:
        The run's :class:`WorkerStats`.

    Raises:
        ConfigError: a setting is out of range or two tasks share a name (before anything
            connects), or the driver is unknown.
        ProcessPoolUnavailableError: called in a pool process (a script that starts its
            worker at import, without ``if __name__ == "__main__":``), or the pool could
            not start (``PoolProcessRefusedError`` when its processes refused the task
            modules for that reason).
        TypeError: ``tasks`` is not a registry nor a list of modules, tasks and task classes.
        DriverError: the broker cannot be reached when the worker starts.
    """
    refuse_in_pool_process("run_worker() was called")
    settings = WorkerSettings(
        queues=tuple(queues) if queues is not None else (handle.config.task_defaults.queue,),
        concurrency=concurrency,
        max_tasks=max_tasks,
        shutdown_grace_seconds=shutdown_grace_seconds,
        batch_size=batch_size,
        wait_seconds=wait_seconds,
        rotate_every=rotate_every,
    )
    check_settings(settings)
    registry = worker_registry(tasks)
    models = ModelLoader(handle.config)  # checks sqlalchemy_engine; connects on first use
    state = WorkerState(
        worker_id=new_worker_id(),
        settings=settings,
        registry=registry,
        driver=await handle.driver(driver),
        shutdown=shutdown or Shutdown(),
        threads=ThreadRunner(concurrency),
        models=models,
    )
    attach(state, handle)
    check_queue_names(state.driver, settings.queues)
    renewer: LeaseThread | None = None
    if lease_thread if lease_thread is not None else state.driver.name != "memory":
        renewer = LeaseThread(state, lambda: build_driver(handle.config, driver))
        await renewer.start()
    check_pool_size(state.driver, concurrency, leases_on_loop=renewer is None)
    signals = signal_handlers(state.shutdown) if handle_signals else contextlib.nullcontext()
    # the handlers stay until the last stop step: a signal while stopping is a stop
    # request (a second one aborts), never the default action that kills the process
    with signals:
        logger.info(  # after the handlers: from this line on, a signal is a stop request
            "worker %s started: driver=%s queues=%s concurrency=%d tasks=%d%s",
            state.worker_id,
            state.driver.name,
            ",".join(settings.queues),
            concurrency,
            len(registry),
            f" max_tasks={max_tasks}" if max_tasks is not None else "",
        )
        try:  # a stop request while the pool starts ends the run there
            state.process_pool = await _open_pool(state, handle, registry)
            if not state.shutdown.draining.is_set():
                await announce_online(state, handle.config.events.heartbeat_interval)
                await _run(state, handle, renew_on_loop=renewer is None)
        finally:
            with timed_stop_step("leaving the worker registry"):
                await announce_offline(state)
            with timed_stop_step("closing the process pool"):
                await close_worker_pool(state.process_pool)
            with timed_stop_step("closing the ORM connections"):
                await models.aclose()  # disposes sqlalchemy_engine, closes Tortoise if here
            if renewer is not None:
                with timed_stop_step("stopping the lease renewal thread"):
                    await renewer.stop()
    stats = state.stats()
    logger.info(
        "worker %s stopped: %d succeeded, %d retried, %d dead-lettered, %d released",
        stats.worker_id,
        stats.succeeded,
        stats.retried,
        stats.dead_lettered,
        stats.released,
    )
    return stats


async def _open_pool(state: WorkerState, handle: Handle, registry: Registry) -> WorkerPool | None:
    """Start the process pool (:func:`open_worker_pool`) unless a stop request comes first.

    Starting pool processes can take seconds; a stop request meanwhile cancels it (the
    processes started so far are killed) and returns ``None``.

    Raises:
        ProcessPoolUnavailableError: the pool could not start.
    """
    opening = asyncio.ensure_future(open_worker_pool(handle, registry))
    stop = _spawn(_wait_event(state.shutdown.draining))
    try:
        await _first(opening, stop)
    finally:
        stop.cancel()
        if not opening.done():
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
    return None if opening.cancelled() else opening.result()


async def _run(state: WorkerState, handle: Handle, *, renew_on_loop: bool) -> None:
    acker = _spawn(run_ack_flusher(state))
    background = [_spawn(run_maintenance(state)), _spawn(StallWatch(state).run())]
    background.append(_spawn(run_heartbeat(state, handle.config.events.heartbeat_interval)))
    if renew_on_loop:
        background.append(_spawn(run_leases(state)))
    aborted: list[Job] = []
    fetcher = _spawn(run_fetcher(state))
    tasks_context = contextvars.copy_context()
    tasks_context.run(context.make_current, handle)  # tasks dispatch through the worker's handle
    slots = [  # each slot gets its own copy: current_task() is per slot
        _spawn(run_slot(state, aborted), tasks_context.copy())
        for _ in range(state.settings.concurrency)
    ]
    try:
        await _until_done_or_stopped(state, slots)
        await _drain(state, fetcher, slots, aborted)
        await _stop_fetcher(state, fetcher)
    finally:
        for task in [fetcher, *slots]:
            task.cancel()
        with timed_stop_step("the final acks"):
            await _final_acks(state, acker)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, fetcher, *slots, return_exceptions=True)
        state.threads.close()
    if not fetcher.cancelled() and fetcher.exception() is not None:
        raise fetcher.exception()  # type: ignore[misc]  # a bug in the fetch loop surfaces


def _spawn(
    coroutine: Coroutine[Any, Any, None], in_context: contextvars.Context | None = None
) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coroutine, context=in_context)


async def _first(*waitables: asyncio.Future[Any], limit_seconds: float | None = None) -> None:
    await asyncio.wait(waitables, timeout=limit_seconds, return_when=asyncio.FIRST_COMPLETED)


async def _until_done_or_stopped(state: WorkerState, slots: list[asyncio.Task[None]]) -> None:
    """Wait until every slot ended (``max_tasks`` reached) or a stop was requested."""
    stop = _spawn(_wait_event(state.shutdown.draining))
    every_slot = _spawn(_wait_all(slots))
    try:
        await _first(stop, every_slot)
    finally:
        stop.cancel()
        every_slot.cancel()


async def _drain(
    state: WorkerState,
    fetcher: asyncio.Task[None],
    slots: list[asyncio.Task[None]],
    aborted: list[Job],
) -> None:
    """After a stop request: end fetching, release the buffer, give running tasks their grace.

    Tasks waiting for a free pool process have not started: their slots are cancelled at
    once, so none starts late, and their deliveries are released with the buffer (no
    attempt used). The fetch loop ends before anything is released (a blocking fetch
    returns within ``wait_seconds``; what it brings is released at once), so our own
    fetch cannot take back what we release.
    """
    if not state.shutdown.draining.is_set():
        return
    began = time.monotonic()
    state.wake_slots(-1)
    unstarted = await _stop_pool_waiting(state, aborted)
    with timed_stop_step("ending the fetch loop and releasing its buffer"):
        await _stop_fetcher(state, fetcher)
        await release_jobs(state, unstarted, "waiting for a pool process at the stop request")
    running = [slot for slot in slots if not slot.done()]
    if running:
        grace = max(0.0, state.settings.shutdown_grace_seconds - (time.monotonic() - began))
        logger.warning("waiting up to %.3g s for %d running task(s) to finish", grace, state.busy)
        abort = _spawn(_wait_event(state.shutdown.aborting))
        every_slot = _spawn(_wait_all(running))
        try:
            await _first(abort, every_slot, limit_seconds=grace)
        finally:
            abort.cancel()
            every_slot.cancel()
    unfinished = [slot for slot in slots if not slot.done()]
    for slot in unfinished:
        slot.cancel()
    if unfinished:
        await asyncio.wait(unfinished)
    tasks_cancelled(state, aborted, "cancelled at shutdown")
    with timed_stop_step("giving back the tasks cancelled at shutdown"):
        await settle_cancelled(state, aborted)


async def _stop_pool_waiting(state: WorkerState, aborted: list[Job]) -> list[Job]:
    """Cancel the slots of tasks waiting for a free pool process; return their jobs.

    The caller releases them (unstarted) once the fetch loop has ended. A task that got
    its process meanwhile has begun (``job.ran``): it stays in ``aborted`` and is settled
    as cancelled with the others.
    """
    waiting = dict(state.pool_waiting)
    if not waiting:
        return []
    for slot in waiting.values():
        slot.cancel()
    await asyncio.wait(waiting.values())
    unstarted = [job for job in waiting if job in aborted and not job.ran]
    for job in unstarted:
        aborted.remove(job)
    return unstarted


async def _stop_fetcher(state: WorkerState, fetcher: asyncio.Task[None]) -> None:
    """Let the fetch loop end on its own, then release what is still buffered.

    A fetch blocked on the broker returns within ``wait_seconds`` and releases what it
    brought; an abort request, or a fetch stuck far longer, cancels it instead.
    """
    state.wake_fetcher()
    if not fetcher.done():
        abort = _spawn(_wait_event(state.shutdown.aborting))
        try:
            await _first(fetcher, abort, limit_seconds=state.settings.wait_seconds + 5.0)
        finally:
            abort.cancel()
    fetcher.cancel()
    await asyncio.gather(fetcher, return_exceptions=True)
    leftover = list(state.buffer)
    state.buffer.clear()
    await release_jobs(state, leftover, "worker stopping")


async def _final_acks(state: WorkerState, acker: asyncio.Task[None]) -> None:
    """Let the ack loop ack what finished (retrying a hiccup briefly), then stop it."""
    state.stop_acking()
    limit = 0.0 if state.shutdown.aborting.is_set() else FINAL_ACK_SECONDS
    if not acker.done():
        await asyncio.wait([acker], timeout=limit)
    acker.cancel()
    await asyncio.gather(acker, return_exceptions=True)
    with contextlib.suppress(TimeoutError):  # the jobs stay queued: reported below
        async with asyncio.timeout(LAST_ACK_SECONDS):
            await flush_acks(state)
    if state.acks:
        logger.error("%d finished tasks could not be acked; they will run again", len(state.acks))


async def _wait_event(event: asyncio.Event) -> None:
    await event.wait()


async def _wait_all(tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.wait(tasks)
