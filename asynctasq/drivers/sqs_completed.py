"""Completed-task records on SQS: one ``<queue>_completed`` queue per queue, best effort.

SQS can neither sort nor index a queue, so this store is bounded twice:

* by age: the driver creates ``_completed`` queues keeping messages one hour
  (:data:`~asynctasq.drivers.sqs_client.COMPLETED_RETENTION_SECONDS`); SQS drops older ones;
* by count: :meth:`CompletedQueues.tasks` peeks at the whole queue
  (:mod:`asynctasq.drivers.sqs_peek`), orders the records newest first and deletes those
  beyond ``limit``; :meth:`CompletedQueues.count` reports at most ``limit``.

Writing costs one ``SendMessageBatch`` per 10 records (one per ack batch of the worker).
Between two listings the queue holds whatever the last hour brought, so a listing of a busy
queue receives that many messages (10 per request); two listings at once each see part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from asynctasq.drivers import sqs_format as wire
from asynctasq.drivers import sqs_records as records
from asynctasq.drivers.protocol import CompletedTask
from asynctasq.drivers.sqs_client import SQSConnection
from asynctasq.drivers.sqs_peek import delete, peek, unhide
from asynctasq.drivers.sqs_receive import batch_failures

logger = logging.getLogger("asynctasq.drivers.sqs")

DEFAULT_COMPLETED_LIMIT = 100
"""Completed tasks shown (and kept past a listing) per queue."""


def _order(message: dict[str, Any], seq: int) -> tuple[int, int]:
    sent = int(message.get("Attributes", {}).get("SentTimestamp", 0))
    return sent, seq


class CompletedQueues:
    """The completed-task queues of one driver.

    Args:
        conn: the driver's connection.
        limit_bytes: the largest SQS message batch.

    """

    def __init__(self, conn: SQSConnection, limit_bytes: int) -> None:
        self._conn = conn
        self._limit = limit_bytes
        self._seq = 0

    def _next_seq(self) -> int:
        self._seq = max(self._seq + 1, time.time_ns())
        return self._seq

    async def keep(self, tasks: Sequence[CompletedTask]) -> None:
        """Send ``tasks`` to their queues' ``_completed`` queues, in order.

        Raises:
            DriverError: SQS failed (some records may be stored already).

        """
        groups: dict[str, list[wire.Send]] = {}
        for task in tasks:
            body = records.completed_body(task, self._next_seq())
            groups.setdefault(self._conn.completed_url(task.queue), []).append(wire.Send(body))
        for url, sends in groups.items():
            for part in wire.batches(sends, self._limit):
                entries = [send.entry(str(i)) for i, send in enumerate(part)]
                response = await self._conn.call(
                    "keep_completed", "send_message_batch", url, Entries=entries
                )
                failed = batch_failures(response)
                if failed:
                    logger.warning(
                        "keep_completed: %d of %d records not stored in %r: %s",
                        len(failed),
                        len(part),
                        url,
                        failed[0].get("Message", ""),
                    )

    async def tasks(self, queue: str, limit: int, keep: int) -> list[CompletedTask]:
        """Return up to ``limit`` records of ``queue``, newest first; delete all past ``keep``.

        Raises:
            DriverError: SQS failed.

        """
        url = self._conn.completed_url(queue)
        messages = await peek(self._conn, "completed_tasks", url)
        found: list[tuple[tuple[int, int], CompletedTask, dict[str, Any]]] = []
        for message in messages:
            try:
                task, seq = records.parse_completed(str(message.get("Body", "")))
            except ValueError as exc:
                logger.warning("skipping an unreadable completed-task record of %r: %s", queue, exc)
                continue
            found.append((_order(message, seq), task, message))
        found.sort(key=lambda item: item[0], reverse=True)
        beyond = [message for _, _, message in found[max(0, keep) :]]
        dropped = {id(message) for message in beyond}
        try:
            if beyond:
                await delete(self._conn, "completed_tasks", url, beyond)
        finally:
            kept = [message for message in messages if id(message) not in dropped]
            await unhide(self._conn, "completed_tasks", url, kept)
        return [task for _, task, _ in found[: max(0, min(limit, keep))]]

    async def count(self, queue: str, keep: int) -> int:
        """Return how many records ``queue`` has (SQS' approximate count), at most ``keep``.

        Raises:
            DriverError: SQS failed.

        """
        found = await self._conn.counts("completed_count", self._conn.completed_url(queue))
        return min(max(0, keep), sum(found))
