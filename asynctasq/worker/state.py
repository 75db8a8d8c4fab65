"""The worker's records: its settings, its counters, one held delivery, the run's state.

Everything a worker run knows lives in one :class:`WorkerState`, passed explicitly to the
fetch, slot, lease, maintenance and ack loops; nothing is module-level.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs

from asynctasq.drivers.protocol import CompletedTask, Delivery, Driver
from asynctasq.errors import ConfigError
from asynctasq.events.bus import EventBus
from asynctasq.message import TaskMessage
from asynctasq.orm import ModelLoader
from asynctasq.tasks.registry import Registry
from asynctasq.worker.pool import WorkerPool
from asynctasq.worker.shutdown import Shutdown
from asynctasq.worker.threads import ThreadCall, ThreadRunner

MAX_BATCH = 100
"""The most deliveries one fetch claims (never more than the free slots)."""


@attrs.frozen
class WorkerSettings:
    """How one worker runs.

    Attributes:
        queues: queue names, highest priority first.
        concurrency: the most tasks in flight at once (>= 1).
        max_tasks: stop after this many deliveries were handled (>= 1), or ``None``.
        shutdown_grace_seconds: how long running tasks may finish after a stop request.
        batch_size: the most deliveries one fetch claims (also capped by the free slots).
        wait_seconds: how long one fetch blocks on the broker when nothing is ready.
        rotate_every: every this-many fetches a lower-priority queue is asked first.
    """

    queues: tuple[str, ...]
    concurrency: int
    max_tasks: int | None = None
    shutdown_grace_seconds: float = 30.0
    batch_size: int = MAX_BATCH
    wait_seconds: float = 1.0
    rotate_every: int = 8


MAX_CONCURRENCY = 10_000
"""The largest concurrency (``run_worker`` and ``--concurrency``): the most tasks one worker
process has in flight.

The worker makes one slot (a coroutine) per unit of concurrency when it starts: 10,000
took 56 MB, 1,000,000 did not answer SIGTERM within 3 s, and 10,000,000 grew to 5.8 GB and
ignored SIGTERM. Beyond 10,000 tasks in flight, broker round trips (each task is a claim,
lease renewals and an ack through a pool of ``max_connections``) are the limit: run more
worker processes instead.
"""


def check_settings(settings: WorkerSettings) -> None:
    """Raise ``ConfigError`` naming every worker setting that is out of range."""
    problems = []
    if not settings.queues or any(not name.strip() for name in settings.queues):
        problems.append(f"queues={list(settings.queues)!r}: give at least one non-empty name")
    if isinstance(settings.concurrency, bool) or settings.concurrency < 1:
        problems.append(f"concurrency={settings.concurrency!r}: must be at least 1")
    elif settings.concurrency > MAX_CONCURRENCY:
        problems.append(
            f"concurrency={settings.concurrency!r}: must be at most {MAX_CONCURRENCY} (each "
            "slot is a coroutine made at start; run more worker processes instead)"
        )
    if settings.max_tasks is not None and settings.max_tasks < 1:
        problems.append(f"max_tasks={settings.max_tasks!r}: must be at least 1 (or None)")
    if settings.shutdown_grace_seconds < 0:
        problems.append(f"shutdown_grace_seconds={settings.shutdown_grace_seconds!r}: must be >= 0")
    if settings.batch_size < 1:
        problems.append(f"batch_size={settings.batch_size!r}: must be at least 1")
    if settings.wait_seconds < 0:
        problems.append(f"wait_seconds={settings.wait_seconds!r}: must be >= 0")
    if problems:
        raise ConfigError("invalid worker settings: " + "; ".join(problems))


def new_worker_id() -> str:
    """Return ``hostname-pid-xxxxxx`` (six hex digits of a fresh uuid4)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@attrs.frozen
class WorkerStats:
    """What a worker run did, returned by ``run_worker``.

    Attributes:
        worker_id: ``hostname-pid-xxxxxx``.
        handled: deliveries taken to an end here (succeeded + retried + dead-lettered).
        succeeded: executions that returned normally and were acked.
        retried: failed executions stored again for a later attempt.
        dead_lettered: deliveries moved to the dead-letter store (failures, garbage,
            unknown task names, attempts used up by crashed workers).
        released: deliveries given back unfinished at shutdown.
        runtime_seconds: wall time of the run.
    """

    worker_id: str
    handled: int
    succeeded: int
    retried: int
    dead_lettered: int
    released: int
    runtime_seconds: float


@attrs.define(eq=False, slots=True)
class Job:
    """A delivery this worker holds a lease on, from claim to settlement.

    Attributes:
        delivery: what the driver handed out.
        extend_at: monotonic time the lease should next be renewed.
        deadline: monotonic estimate of the lease's expiry (renewals push it on).
        message: the decoded message once the slot read it.
        thread: the sync call running for it, if any.
        running_since: monotonic time its execution began, while it runs (else ``None``):
            a job cancelled at shutdown then used an attempt. A process-pool task's
            execution begins when a pool process takes it, not while it waits for one.
        ran: its execution began (it stays True while the outcome is being stored): the
            delivery used an attempt and must never be released as unstarted.
        started_at: wall-clock time (epoch seconds) its execution began, for the events'
            ``started_at`` (``task_started`` and the outcome carry the same value).
        result: the execution's return value until ``task_completed`` reads it.
    """

    delivery: Delivery
    extend_at: float
    deadline: float
    message: TaskMessage | None = None
    thread: ThreadCall | None = None
    running_since: float | None = None
    ran: bool = False
    started_at: float | None = None
    result: Any = None


def new_job(delivery: Delivery, now: float) -> Job:
    """Return the job for a just-claimed delivery (renewal due at a third of its lease)."""
    lease = delivery.visibility_timeout_seconds
    return Job(delivery, now + lease / 3.0, now + lease)


@attrs.define(eq=False)
class WorkerState:
    """Shared state of one worker run (one event loop).

    Attributes:
        worker_id: this worker's id.
        settings: its settings.
        registry: the tasks it runs (the only ones a message can reach).
        driver: the opened driver.
        shutdown: the stop switch.
        threads: the sync-task threads.
        process_pool: the pool for process-pool tasks, or ``None`` when none is needed.
        models: loads the ORM models task arguments name (:mod:`asynctasq.orm`).
        buffer: claimed deliveries no slot has started yet.
        held: every job whose lease this worker holds (buffered, running, awaiting ack).
        running: jobs a slot is executing, for the stall report.
        pool_waiting: jobs waiting for a free pool process -> the slot task holding each:
            not started, so a stop request cancels that slot and releases the job.
        acks: finished jobs waiting for the next batched ack.
        executing: task id -> resolved when this worker's run of it is settled (True if it
            succeeded): a second delivery of a task still running here waits for it.
        busy: slots currently working on a job.
        claimed: deliveries claimed so far (for ``max_tasks``).
        fetching: False once the fetch loop has ended.
        acking: False once no more jobs will finish (the ack loop then ends when empty).
        events: the handle's event bus (``None``: no events).
        keep_completed: record completed tasks (``repository.keep_completed_tasks``).
        kept: completed-task records waiting for their job's ack.
        wall_started_at: when the run started, epoch seconds.
    """

    worker_id: str
    settings: WorkerSettings
    registry: Registry
    driver: Driver
    shutdown: Shutdown
    threads: ThreadRunner
    process_pool: WorkerPool | None = None
    models: ModelLoader = attrs.field(factory=ModelLoader)
    buffer: deque[Job] = attrs.field(factory=deque)
    held: set[Job] = attrs.field(factory=set)
    running: set[Job] = attrs.field(factory=set)
    pool_waiting: dict[Job, asyncio.Task[Any]] = attrs.field(factory=dict)
    executing: dict[str, asyncio.Future[bool]] = attrs.field(factory=dict)
    acks: list[Job] = attrs.field(factory=list)
    busy: int = 0
    claimed: int = 0
    fetching: bool = True
    acking: bool = True
    succeeded: int = 0
    retried: int = 0
    dead_lettered: int = 0
    released: int = 0
    started_at: float = attrs.field(factory=time.monotonic)
    idle_slots: deque[asyncio.Future[None]] = attrs.field(factory=deque)
    room_waiter: asyncio.Future[None] | None = None
    ack_waiter: asyncio.Future[None] | None = None
    lease_waiter: asyncio.Future[None] | None = None
    lease_wake_at: float = 0.0
    events: EventBus | None = None
    keep_completed: bool = False
    kept: dict[Job, CompletedTask] = attrs.field(factory=dict)
    wall_started_at: float = attrs.field(factory=time.time)
    maintenance_timer: asyncio.TimerHandle | None = None
    maintenance_waiter: asyncio.Future[None] | None = None

    def room(self) -> int:
        """Deliveries the fetch loop may claim now: free slots, within ``max_tasks``."""
        free = self.settings.concurrency - self.busy - len(self.buffer)
        if self.settings.max_tasks is not None:
            free = min(free, self.settings.max_tasks - self.claimed)
        return free

    def wake_slots(self, count: int) -> None:
        """Wake up to ``count`` idle slots (all when ``count`` is negative)."""
        while self.idle_slots and count != 0:
            waiter = self.idle_slots.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    async def wait_for_work(self) -> None:
        """Park an idle slot until the fetch loop hands out work or ends."""
        waiter = asyncio.get_running_loop().create_future()
        self.idle_slots.append(waiter)
        await waiter

    def wake_fetcher(self) -> None:
        """Tell the fetch loop a slot was freed."""
        waiter = self.room_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_for_room(self) -> None:
        """Park the fetch loop until a slot is freed or a stop is requested."""
        self.room_waiter = asyncio.get_running_loop().create_future()
        await self.room_waiter

    def queue_ack(self, job: Job) -> None:
        """Add a finished job to the next batched ack."""
        self.acks.append(job)
        waiter = self.ack_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def hold(self, jobs: Sequence[Job]) -> None:
        """Track newly claimed ``jobs`` for renewal; wake the lease loop if one is due sooner."""
        self.held.update(jobs)
        soonest = min(job.extend_at for job in jobs)
        waiter = self.lease_waiter
        if soonest < self.lease_wake_at and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def sleep_until_lease_due(self, seconds: float) -> None:
        """Sleep ``seconds`` in the lease loop, or less if :meth:`hold` wakes it."""
        loop = asyncio.get_running_loop()
        self.lease_wake_at = time.monotonic() + seconds
        self.lease_waiter = waiter = loop.create_future()
        timer = loop.call_later(seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()

    async def sleep_until_maintenance_due(self, seconds: float) -> None:
        """Sleep ``seconds`` in the maintenance loop (less if :meth:`maintenance_due_in` asks)."""
        loop = asyncio.get_running_loop()
        self.maintenance_waiter = waiter = loop.create_future()
        self.maintenance_timer = loop.call_later(seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            self.maintenance_timer.cancel()
            self.maintenance_timer = self.maintenance_waiter = None

    def maintenance_due_in(self, seconds: float) -> None:
        """Have the maintenance loop call the driver within ``seconds``, unless it will sooner.

        Called when this worker stores a message delayed by ``seconds``.
        """
        timer, waiter = self.maintenance_timer, self.maintenance_waiter
        if timer is None or waiter is None or waiter.done():
            return
        loop = asyncio.get_running_loop()
        if loop.time() + seconds < timer.when():
            timer.cancel()
            self.maintenance_timer = loop.call_later(seconds, _resolve, waiter)

    def stop_acking(self) -> None:
        """Let the ack loop end once it has acked everything queued."""
        self.acking = False
        waiter = self.ack_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def stats(self) -> WorkerStats:
        """Return the counters as :class:`WorkerStats`."""
        return WorkerStats(
            worker_id=self.worker_id,
            handled=self.succeeded + self.retried + self.dead_lettered,
            succeeded=self.succeeded,
            retried=self.retried,
            dead_lettered=self.dead_lettered,
            released=self.released,
            runtime_seconds=time.monotonic() - self.started_at,
        )


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def deliveries_of(jobs: Sequence[Job]) -> list[Delivery]:
    """Return the deliveries of ``jobs``, in order."""
    return [job.delivery for job in jobs]
