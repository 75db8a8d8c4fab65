"""Queue statistics and live workers, read from the broker through a handle.

::

    async with asynctasq.init({"driver": "redis"}) as handle:
        stats = await snapshot(handle)
        for queue in stats.queues:
            print(queue.queue, queue.ready, queue.delayed, queue.in_flight, queue.dead)
        for worker in stats.workers or ():
            print(worker.worker_id, worker.last_heartbeat)

What each driver can tell (the optional protocols of :mod:`asynctasq.drivers.protocol`):
every driver gives a queue's sizes; the queue list needs ``QueueCatalog`` (else: the queues
given, those live workers serve, and ``task_defaults.queue``), live workers need
``WorkerRegistry``, completed counts need ``CompletedStore``. What a driver cannot tell is
``None`` in the result and explained in ``Snapshot.notes``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import attrs

from asynctasq.drivers.protocol import (
    CompletedStore,
    CompletedTask,
    Driver,
    QueueCatalog,
    WorkerInfo,
    WorkerRegistry,
)
from asynctasq.errors import ConfigError
from asynctasq.handle import Handle, current_handle
from asynctasq.monitoring.names import name_list


@attrs.frozen
class QueueStats:
    """The state of one queue.

    Attributes:
        queue: the queue name.
        ready: messages waiting to be taken.
        delayed: messages not due yet (dispatch delays and retry backoffs).
        in_flight: messages a worker holds (leased, running or about to).
        dead: dead-lettered messages.
        completed: completed tasks kept (``repository.keep_completed_tasks``), or ``None``
            when the driver keeps none.

    """

    queue: str
    ready: int
    delayed: int
    in_flight: int
    dead: int
    completed: int | None = None


@attrs.frozen
class Snapshot:
    """Queue statistics and live workers at one moment.

    Attributes:
        driver: the driver name.
        taken_at: when it was read, epoch seconds (UTC).
        queues: one entry per queue, by name.
        workers: live workers by id, or ``None`` when the driver cannot list them.
        notes: what the driver could not tell, in words.

    """

    driver: str
    taken_at: float
    queues: tuple[QueueStats, ...]
    workers: tuple[WorkerInfo, ...] | None
    notes: tuple[str, ...] = ()


async def queue_stats(driver: Driver, queue: str) -> QueueStats:
    """Return the statistics of ``queue`` on an opened ``driver``.

    Raises:
        DriverError: the broker call failed.

    """
    sizes = await driver.sizes(queue)
    completed = await driver.completed_count(queue) if isinstance(driver, CompletedStore) else None
    return QueueStats(queue, sizes.ready, sizes.delayed, sizes.in_flight, sizes.dead, completed)


async def live_workers(driver: Driver) -> list[WorkerInfo] | None:
    """Return the live workers, or ``None`` when ``driver`` has no worker registry.

    Raises:
        DriverError: the broker call failed.

    """
    if not isinstance(driver, WorkerRegistry):
        return None
    return await driver.live_workers()


async def snapshot(
    handle: Handle | None = None,
    *,
    queues: Sequence[str] | None = None,
    driver: str | None = None,
) -> Snapshot:
    """Read every queue's statistics and the live workers.

    Args:
        handle: the handle whose driver to read (default: the current handle).
        queues: the queues to report; ``None`` means every queue the broker holds (plus
            those live workers serve and ``task_defaults.queue``).
        driver: a driver name other than ``config.driver``.

    Returns:
        A :class:`Snapshot`; queues sorted by name when discovered, in the given order
        otherwise.

    Raises:
        ConfigError: no current handle, or the driver is unknown or misconfigured.
        DriverError: the broker cannot be reached.
        TypeError: ``queues`` is a ``str`` (pass a list: ``queues=["emails"]``).

    """
    names = None if queues is None else name_list(queues, "queues")
    handle = handle or current_handle()
    opened = await handle.driver(driver)
    notes: list[str] = []
    workers = await live_workers(opened)
    if workers is None:
        notes.append(f"the {opened.name} driver does not record live workers")
    if names is None:
        names = await _discover(handle, opened, workers, notes)
    stats = [await queue_stats(opened, name) for name in names]
    if not isinstance(opened, CompletedStore):
        notes.append(f"the {opened.name} driver does not report kept completed tasks")
    return Snapshot(
        driver=opened.name,
        taken_at=time.time(),
        queues=tuple(stats),
        workers=None if workers is None else tuple(workers),
        notes=tuple(notes),
    )


async def _discover(
    handle: Handle, driver: Driver, workers: list[WorkerInfo] | None, notes: list[str]
) -> list[str]:
    names = {handle.config.task_defaults.queue}
    for worker in workers or ():
        names.update(worker.queues)
    if isinstance(driver, QueueCatalog):
        names.update(await driver.queue_names())
    else:
        notes.append(
            f"the {driver.name} driver cannot list its queues: showing the default queue and "
            "those live workers serve; name others with queues=[...] (--queues)"
        )
    return sorted(names)


async def completed_tasks(
    handle: Handle | None, queue: str, *, limit: int = 100, driver: str | None = None
) -> list[CompletedTask]:
    """Return up to ``limit`` kept completed tasks of ``queue``, newest first.

    Empty unless workers run with ``repository.keep_completed_tasks``.

    Raises:
        ConfigError: no current handle, or the driver does not keep completed tasks.
        DriverError: the broker call failed.

    """
    opened = await (handle or current_handle()).driver(driver)
    if not isinstance(opened, CompletedStore):
        raise ConfigError(
            f"the {opened.name} driver does not report kept completed tasks "
            "(it is not a CompletedStore)"
        )
    return await opened.completed_tasks(queue, limit=limit)
