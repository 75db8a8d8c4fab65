"""``MonitoringService``: the monitoring functions bound to one handle (and driver).

For code that prefers an object (a dashboard, a FastAPI route) to the plain functions of
:mod:`asynctasq.monitoring.stats` and :mod:`asynctasq.monitoring.dead_letters`::

    monitor = MonitoringService(handle)
    snapshot = await monitor.snapshot()
    await monitor.requeue_dead_letters("emails")

It holds no state but the handle: every call reads the broker afresh.
"""

from __future__ import annotations

from collections.abc import Sequence

from asynctasq.drivers.protocol import CompletedTask, DeadLetterEntry, WorkerInfo
from asynctasq.handle import Handle, current_handle
from asynctasq.monitoring import dead_letters, stats


class MonitoringService:
    """Queue statistics, live workers, completed tasks and the dead-letter workflow.

    Args:
        handle: the handle whose driver to read (default: the current handle, looked up
            now).
        driver: a driver name other than ``config.driver``.

    Raises:
        ConfigError: no handle given and none is current.

    Each method raises ``ConfigError`` when the driver lacks the capability (naming it) and
    ``DriverError`` when the broker call fails.

    """

    def __init__(self, handle: Handle | None = None, *, driver: str | None = None) -> None:
        self.handle = handle or current_handle()
        self.driver = driver

    async def snapshot(self, queues: Sequence[str] | None = None) -> stats.Snapshot:
        """Return every queue's statistics and the live workers (see ``stats.snapshot``)."""
        return await stats.snapshot(self.handle, queues=queues, driver=self.driver)

    async def queue_stats(self, queue: str) -> stats.QueueStats:
        """Return one queue's statistics."""
        return await stats.queue_stats(await self.handle.driver(self.driver), queue)

    async def workers(self) -> list[WorkerInfo] | None:
        """Return the live workers, or ``None`` when the driver does not record them."""
        return await stats.live_workers(await self.handle.driver(self.driver))

    async def completed_tasks(self, queue: str, *, limit: int = 100) -> list[CompletedTask]:
        """Return up to ``limit`` kept completed tasks of ``queue``, newest first."""
        return await stats.completed_tasks(self.handle, queue, limit=limit, driver=self.driver)

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead letters of ``queue``, oldest first."""
        return await dead_letters.list_dead_letters(
            self.handle, queue, limit=limit, driver=self.driver
        )

    async def find_dead_letter(self, queue: str, task_id: str) -> DeadLetterEntry | None:
        """Return the dead letter of ``task_id`` on ``queue``, or ``None``."""
        return await dead_letters.find_dead_letter(self.handle, queue, task_id, driver=self.driver)

    async def requeue_dead_letters(self, queue: str, task_ids: Sequence[str] | None = None) -> int:
        """Requeue dead letters (all, or ``task_ids``) at attempt 1; return how many."""
        return await dead_letters.requeue_dead_letters(
            self.handle, queue, task_ids, driver=self.driver
        )

    async def purge_dead_letters(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; return how many there were."""
        return await dead_letters.purge_dead_letters(self.handle, queue, driver=self.driver)
