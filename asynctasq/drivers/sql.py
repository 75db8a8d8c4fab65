"""The logic the PostgreSQL, MySQL and SQLite drivers share, over named queries.

Every rule is written once here, as calls to the queries each dialect's ``.sql`` file
names alike (:mod:`asynctasq.drivers.queries`); :mod:`~asynctasq.drivers.sql_connector`
runs them on one client. One table holds the queue; another the dead letters (SPEC §5); two
more, named after the queue table, the live workers and the completed-task records
(:mod:`~asynctasq.drivers.sql_inspect`).

A row's life (its ``status``, one vocabulary for every SQL driver, :data:`STATUSES`):

* ``pending``: enqueued; deliverable once ``available_at`` (enqueue time + delay, on the
  database's clock) has passed. Consumers take the oldest ``available_at`` first, ids
  breaking ties, so a queue is FIFO, due delayed rows join it by due time, and released
  or recovered rows (which keep their ``available_at``) are served next.
* ``leased``: claimed (``FOR UPDATE SKIP LOCKED``, or under SQLite's write lock) with a
  fresh random ``lease_id`` and ``locked_until = now + visibility timeout``;
  ``current_attempt`` counts deliveries. ``extend`` moves ``locked_until``; ack, retry,
  release and dead-letter act only while the row still carries the holder's ``lease_id``,
  so a consumer whose lease was lost can never touch the next holder's delivery.
  ``maintain`` returns rows whose lease expired to ``pending`` (the count stays raised).
* gone (acked), or ``completed`` with ``completed_at`` when
  ``repository.keep_completed_tasks`` is on. Retry rewrites the row in place as a fresh
  ``pending`` message (new payload, count 0) in one statement; dead-lettering deletes it
  and inserts the dead-letter row in one transaction.

Source: SPEC §4-5; FIELD-CASES C01, C02, C05, C06, C34.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from asynctasq.drivers.protocol import DeadLetterEntry, Delivery, Outgoing, QueueSizes
from asynctasq.drivers.sql_claim import claim, pause
from asynctasq.drivers.sql_connector import Connector, Session
from asynctasq.drivers.sql_dead import dead_entry, requeue
from asynctasq.drivers.sql_inspect import SQLInspection
from asynctasq.drivers.sql_schema import check_schema, migrate_schema
from asynctasq.drivers.sql_wakeup import Wakeup
from asynctasq.errors import MessageTooLargeError

logger = logging.getLogger(__name__)

STATUSES = ("pending", "leased", "completed")
"""The ``status`` values of a queue row, the same in every SQL dialect."""

MAINTENANCE_SECONDS = 1.0
"""How often workers recover expired leases (delayed rows need no promotion)."""


def _receipt(delivery: Delivery) -> dict[str, Any]:
    row_id, lease = delivery.receipt
    return {"id": row_id, "lease": lease, "now": time.time()}


class SQLDriver(SQLInspection):
    """A driver over one SQL database.

    Also a ``DeadLetterStore``, a ``QueueCatalog``, a ``WorkerRegistry`` and a
    ``CompletedStore`` (:class:`~asynctasq.drivers.sql_inspect.SQLInspection`).

    Built per dialect by :mod:`~asynctasq.drivers.postgres`, :mod:`~asynctasq.drivers.mysql`
    and :mod:`~asynctasq.drivers.sqlite`.

    Args:
        connector: the database client behind the named queries.
        keep_completed: keep acked rows as ``completed`` instead of deleting them
            (``repository.keep_completed_tasks``).
        maintenance_interval_seconds: how often workers should call :meth:`maintain`.
        completed_limit: completed-task records kept per queue (``None``: all).

    """

    def __init__(
        self,
        connector: Connector,
        *,
        keep_completed: bool = False,
        maintenance_interval_seconds: float = MAINTENANCE_SECONDS,
        completed_limit: int | None = None,
    ) -> None:
        self.name = connector.name
        self.maintenance_interval_seconds: float | None = maintenance_interval_seconds
        self._db = connector
        self._keep_completed = keep_completed
        self.completed_limit = completed_limit
        self._wakeup = Wakeup()

    @property
    def max_message_bytes(self) -> int | None:
        """The largest body the database takes (known exactly once opened, for MySQL)."""
        return self._db.max_message_bytes

    @property
    def pool_size(self) -> int | None:
        """The most pooled connections (``max_pool_size``), or ``None`` (SQLite: one)."""
        return self._db.pool_size

    @contextlib.contextmanager
    def _edge(self, operation: str) -> Iterator[None]:
        try:
            yield
        except self._db.failures as exc:
            raise self._db.error(operation, exc) from exc

    async def open(self) -> None:
        """Connect and check that the schema exists and is current.

        Raises:
            DriverError: the database cannot be reached, or its tables are missing or out
                of date (the message says to run ``asynctasq migrate --driver <name>``).

        """
        with self._edge("open"):
            await self._db.open()
            try:
                await check_schema(self._db)
            except BaseException:
                await self._db.close()
                raise

    async def close(self) -> None:
        """Wake every waiting ``dequeue`` and close every connection (idempotent)."""
        self._wakeup.notify()
        await self._db.close()

    async def migrate(self) -> list[str]:
        """Create the tables, indexes (and PostgreSQL's notify trigger) that are missing.

        Idempotent; safe while workers run. Uses its own connection: call it on an
        unopened driver (``asynctasq migrate`` does).

        Returns:
            One line per schema object: ``"created table task_queue"`` or
            ``"table task_queue already exists"``.

        Raises:
            DriverError: the database cannot be reached or refused a statement.

        """
        with self._edge("migrate"):
            await self._db.open(create=True)
            try:
                return await self._db.transaction(lambda session: migrate_schema(self._db, session))
            finally:
                await self._db.close()

    def _checked(self, message: Outgoing) -> dict[str, Any]:
        limit = self.max_message_bytes
        if limit is not None and len(message.body) > limit:
            raise MessageTooLargeError(
                f"message for queue {message.queue!r} is {len(message.body)} bytes; "
                f"the {self.name} driver accepts at most {limit} bytes"
            )
        return {
            "queue": message.queue,
            "task_id": message.task_id,
            "payload": message.body,
            "delay": max(0.0, message.delay_seconds),
            "visibility_timeout": message.visibility_timeout_seconds,
            "now": time.time(),
        }

    async def enqueue(self, message: Outgoing) -> None:
        """Insert one row (deliverable at database time + delay).

        Raises:
            MessageTooLargeError: the body is larger than ``max_message_bytes``.
            DriverError: the database failed.

        """
        await self.enqueue_many([message])

    async def enqueue_many(self, messages: Sequence[Outgoing]) -> None:
        """Insert many rows in one statement (one transaction), in order.

        Raises:
            MessageTooLargeError: a body is larger than ``max_message_bytes``.
            DriverError: the database failed.

        """
        rows = [self._checked(message) for message in messages]
        if not rows:
            return
        with self._edge("enqueue"):
            await self._db.execute_many("enqueue", rows)
        for queue in {message.queue for message in messages}:
            self._wakeup.notify(queue)

    async def dequeue(
        self, queues: Sequence[str], *, limit: int, wait_seconds: float
    ) -> list[Delivery]:
        """Lease up to ``limit`` rows, earlier queues first, oldest ``available_at`` first.

        When nothing is ready, waits up to ``wait_seconds`` for a notification
        (PostgreSQL LISTEN/NOTIFY; until the next delayed row is due) or polls with an
        adaptive back-off (MySQL, SQLite), then claims again.

        Raises:
            DriverError: the database failed.

        """
        if not queues or limit <= 0:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        with self._edge("dequeue"):
            if wait_seconds > 0:
                await self._db.listen(self._wakeup)
            with self._wakeup.watch(queues) as watch:
                while True:
                    claimed = await claim(self._db, queues, limit)
                    if claimed:
                        self._wakeup.worked()
                        return claimed
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return []
                    await watch.wait(await pause(self._db, self._wakeup, queues, remaining))

    async def _settle(self, operation: str, query: str, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        with self._edge(operation):
            done = await self._db.execute_many(query, [_receipt(d) for d in deliveries])
        if done < len(deliveries):
            lost = len(deliveries) - done
            logger.warning(
                "%s: %d of %d leases were already lost", operation, lost, len(deliveries)
            )
        return done

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Delete finished rows (or mark them ``completed``); lost leases are logged.

        Raises:
            DriverError: the database failed.

        """
        await self._settle("ack", "complete" if self._keep_completed else "ack", deliveries)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Make rows ``pending`` again at once, their delivery count undone.

        They keep their ``available_at``, so they are served before younger rows.

        Raises:
            DriverError: the database failed.

        """
        if await self._settle("release", "release", deliveries):
            for queue in {delivery.queue for delivery in deliveries}:
                self._wakeup.notify(queue)

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Move each held lease to database time + the row's visibility timeout.

        Raises:
            DriverError: the database failed.

        """
        await self._settle("extend", "extend", deliveries)

    async def retry(self, delivery: Delivery, message: Outgoing) -> None:
        """Rewrite the leased row as ``message`` (a fresh pending row) in one statement.

        Nothing is stored if the lease was lost (another consumer holds the row).

        Raises:
            MessageTooLargeError: the new body is larger than ``max_message_bytes``.
            DriverError: the database failed.

        """
        params = {**self._checked(message), **_receipt(delivery)}
        with self._edge("retry"):
            stored = await self._db.execute("retry", params)
        if not stored:
            logger.warning("retry: lease on queue %r was already lost; not stored", delivery.queue)
            return
        self._wakeup.notify(message.queue)

    async def dead_letter(self, delivery: Delivery, entry: DeadLetterEntry) -> None:
        """Delete the leased row and insert ``entry`` into the dead-letter table, atomically.

        Raises:
            DriverError: the database failed.

        """
        values = {
            "queue": entry.queue,
            "task_id": entry.task_id,
            "task_name": entry.task_name,
            "payload": entry.body,
            "error_type": entry.error_type,
            "error_message": entry.error_message,
            "attempts": entry.attempts,
            "failed_at": entry.failed_at,
            "visibility_timeout": delivery.visibility_timeout_seconds,
            **_receipt(delivery),
        }

        async def move(session: Session) -> bool:
            if not await session.execute("drop_lease", values):
                return False
            await session.execute("insert_dead", values)
            return True

        with self._edge("dead_letter"):
            stored = await self._db.transaction(move)
        if not stored:
            logger.warning(
                "dead_letter: lease on queue %r was already lost; not stored", delivery.queue
            )

    async def maintain(self, queues: Sequence[str]) -> None:
        """Return rows whose lease expired to ``pending`` (each exactly once).

        Delayed rows need no promotion: a claim takes any row whose time has come.

        Raises:
            DriverError: the database failed.

        """
        if not queues:
            return
        with self._edge("maintain"):
            rows = await self._db.claim("reclaim", {"queues": list(queues), "now": time.time()})
        if rows:
            logger.info("recovered %d expired leases on queues %s", len(rows), ", ".join(queues))
            self._wakeup.notify()

    async def sizes(self, queue: str) -> QueueSizes:
        """Return ready, delayed, in-flight and dead-letter counts of ``queue``.

        Raises:
            DriverError: the database failed.

        """
        with self._edge("sizes"):
            [row] = await self._db.fetch("sizes", {"queue": queue, "now": time.time()})
        ready, delayed, in_flight, dead = (int(value or 0) for value in row)
        return QueueSizes(ready, delayed, in_flight, dead)

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead letters of ``queue``, oldest first.

        Raises:
            DriverError: the database failed.

        """
        if limit <= 0:
            return []
        with self._edge("dead_letters"):
            rows = await self._db.fetch("dead_letters", {"queue": queue, "limit": limit})
        return [dead_entry(row) for row in rows]

    async def requeue_dead(
        self,
        queue: str,
        task_ids: Sequence[str] | None = None,
        *,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> int:
        """Move dead letters (all, or those with the given task ids) to the back of the queue.

        In one transaction: each becomes a fresh pending row (its body passed through
        ``rewrite`` when given; an entry ``rewrite`` raises for stays) and its dead letter
        is deleted.

        Raises:
            DriverError: the database failed.

        """

        async def move(session: Session) -> int:
            return await requeue(session, queue, task_ids, rewrite, self._checked)

        with self._edge("requeue_dead"):
            moved = await self._db.transaction(move)
        if moved:
            self._wakeup.notify(queue)
        return moved

    async def queue_names(self) -> list[str]:
        """Return the queues with a pending, leased or dead-lettered row, sorted.

        Raises:
            DriverError: the database failed.

        """
        with self._edge("queue_names"):
            rows = await self._db.fetch("queue_names", {})
        return sorted(str(row[0]) for row in rows)

    async def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; return how many there were.

        Raises:
            DriverError: the database failed.

        """
        with self._edge("purge_dead"):
            return await self._db.execute("purge_dead", {"queue": queue})
