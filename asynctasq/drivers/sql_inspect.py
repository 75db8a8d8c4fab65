"""The SQL drivers' worker registry and completed-task store (PostgreSQL, MySQL, SQLite).

A mixin of :class:`~asynctasq.drivers.sql.SQLDriver` (which provides the connector and the
error translation), over two tables ``asynctasq migrate`` creates next to the queue table
and named after it (:func:`~asynctasq.drivers.sql_connector.side_tables`):

* ``<queue_table>_workers``: one row per worker, upserted by each heartbeat with
  ``last_heartbeat = now`` and ``expires_at = now + ttl`` on the database's clock (SQLite:
  this machine's), so workers on machines with skewed clocks agree on who is live. Reads
  skip expired rows; each heartbeat deletes them.
* ``<queue_table>_completed``: the records the worker hands :meth:`keep_completed` after
  acking (task name, attempt, worker, times, duration), newest = highest id. All are kept
  unless ``completed_limit`` is set (then each write trims its queues to that many). The
  acked row itself stays in the queue table with status ``completed`` (with its payload)
  when ``repository.keep_completed_tasks`` is on; this table is what monitoring reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence

from asynctasq.drivers.protocol import CompletedTask, WorkerInfo
from asynctasq.drivers.sql_connector import Connector, Row

logger = logging.getLogger("asynctasq.drivers.sql")


def _worker(row: Row) -> WorkerInfo:
    """Return a ``live_workers`` row as a record (times in epoch seconds)."""
    return WorkerInfo(
        worker_id=str(row[0]),
        hostname=str(row[1]),
        pid=int(row[2]),
        queues=tuple(str(queue) for queue in json.loads(str(row[3]))),
        concurrency=int(row[4]),
        driver=str(row[5]),
        started_at=float(row[6]),
        last_heartbeat=float(row[7]),
        active=int(row[8]),
        processed=int(row[9]),
        failed=int(row[10]),
    )


def _completed(row: Row) -> CompletedTask:
    """Return a ``completed_tasks`` row as a record (times in epoch seconds)."""
    return CompletedTask(
        queue=str(row[0]),
        task_id=str(row[1]),
        task_name=str(row[2]),
        attempt=int(row[3]),
        worker_id=str(row[4]),
        dispatched_at=float(row[5]),
        started_at=float(row[6]),
        completed_at=float(row[7]),
        duration_ms=float(row[8]),
    )


class SQLInspection:
    """Worker-registry and completed-task methods of the SQL driver.

    The class using it sets ``_db``, ``completed_limit`` and ``_edge``.

    Attributes:
        completed_limit: completed records kept per queue, the newest; ``None`` (the
            default) keeps all (the table can be queried and pruned with SQL).

    """

    _db: Connector
    completed_limit: int | None

    def _edge(self, operation: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError  # provided by the driver

    async def record_heartbeat(self, worker: WorkerInfo, *, ttl_seconds: float) -> None:
        """Upsert ``worker`` with ``last_heartbeat`` = database now, live ``ttl_seconds``.

        Also deletes the rows of workers whose ttl passed.

        Raises:
            DriverError: the database failed (or the table is missing: run migrate).

        """
        now = time.time()
        values = {
            "worker_id": worker.worker_id,
            "hostname": worker.hostname,
            "pid": worker.pid,
            "queues": json.dumps(list(worker.queues)),
            "concurrency": worker.concurrency,
            "driver": worker.driver,
            "started_at": worker.started_at,
            "ttl": max(0.0, ttl_seconds),
            "active": worker.active,
            "processed": worker.processed,
            "failed": worker.failed,
            "now": now,
        }
        with self._edge("record_heartbeat"):
            await self._db.execute("prune_workers", {"now": now})
            await self._db.execute("record_heartbeat", values)

    async def remove_worker(self, worker_id: str) -> None:
        """Delete ``worker_id``'s row (nothing if there is none).

        Raises:
            DriverError: the database failed.

        """
        with self._edge("remove_worker"):
            await self._db.execute("remove_worker", {"worker_id": worker_id})

    async def live_workers(self) -> list[WorkerInfo]:
        """Return the workers whose ttl has not passed (database clock), by worker id.

        Raises:
            DriverError: the database failed.

        """
        with self._edge("live_workers"):
            rows = await self._db.fetch("live_workers", {"now": time.time()})
        workers = []
        for row in rows:
            try:
                workers.append(_worker(row))
            except (ValueError, TypeError) as exc:
                logger.warning("skipping an unreadable worker row %r: %s", row[0], exc)
        return sorted(workers, key=lambda w: w.worker_id)

    async def keep_completed(self, tasks: Sequence[CompletedTask]) -> None:
        """Insert ``tasks`` (in order); with ``completed_limit``, trim their queues to it.

        Raises:
            DriverError: the database failed.

        """
        if not tasks:
            return
        rows = [
            {
                "queue": task.queue,
                "task_id": task.task_id,
                "task_name": task.task_name,
                "attempt": task.attempt,
                "worker_id": task.worker_id,
                "dispatched_at": task.dispatched_at,
                "started_at": task.started_at,
                "completed_at": task.completed_at,
                "duration_ms": task.duration_ms,
            }
            for task in tasks
        ]
        with self._edge("keep_completed"):
            await self._db.execute_many("keep_completed", rows)
            if self.completed_limit is not None:
                for queue in dict.fromkeys(task.queue for task in tasks):
                    keep = {"queue": queue, "keep": max(0, self.completed_limit)}
                    await self._db.execute("prune_completed", keep)

    async def completed_tasks(self, queue: str, *, limit: int = 100) -> list[CompletedTask]:
        """Return up to ``limit`` completed records of ``queue``, newest first.

        Raises:
            DriverError: the database failed.

        """
        if limit <= 0:
            return []
        with self._edge("completed_tasks"):
            rows = await self._db.fetch("completed_tasks", {"queue": queue, "limit": limit})
        return [_completed(row) for row in rows]

    async def completed_count(self, queue: str) -> int:
        """Return how many completed records of ``queue`` are kept.

        Raises:
            DriverError: the database failed.

        """
        with self._edge("completed_count"):
            [row] = await self._db.fetch("completed_count", {"queue": queue})
        return int(row[0] or 0)
