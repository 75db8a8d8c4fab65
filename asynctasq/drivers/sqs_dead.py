"""Dead letters on SQS: one ``<queue>_dead`` queue per queue, one JSON body per entry.

SQS cannot read a queue without receiving from it, so listing, requeueing and purging
*peek* (:mod:`asynctasq.drivers.sqs_peek`): they receive every message of the dead-letter
queue for a moment, oldest first, act, and make the ones they keep visible again at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from asynctasq.drivers import sqs_format as wire
from asynctasq.drivers.protocol import DeadLetterEntry, Outgoing
from asynctasq.drivers.sqs_client import SQSConnection
from asynctasq.drivers.sqs_peek import delete, peek, unhide
from asynctasq.drivers.sqs_receive import batch_failures

logger = logging.getLogger("asynctasq.drivers.sqs")


class DeadLetterQueues:
    """The dead-letter queues of one driver.

    Args:
        conn: the driver's connection.
        limit_bytes: the largest SQS message (an over-long error message is shortened).
        hop_seconds: the longest native delay per hop (for requeued messages).

    """

    def __init__(self, conn: SQSConnection, limit_bytes: int, hop_seconds: int) -> None:
        self._conn = conn
        self._limit = limit_bytes
        self._hop = hop_seconds

    async def store(self, entry: DeadLetterEntry, vt: int) -> None:
        """Send ``entry`` to the dead-letter queue of ``entry.queue``.

        Raises:
            DriverError: SQS failed.

        """
        send = wire.Send(wire.dead_body(entry, vt, self._limit))
        url = self._conn.dead_url(entry.queue)
        await self._conn.call("dead_letter", "send_message", url, **send.params())

    async def count(self, queue: str) -> int:
        """Return how many dead letters ``queue`` has (0 when its dead-letter queue is missing)."""
        return sum(await self._conn.counts("sizes", self._conn.dead_url(queue)))

    def _parsed(
        self, queue: str, messages: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], DeadLetterEntry, int]]:
        found = []
        for message in messages:
            try:
                entry, vt = wire.parse_dead(str(message.get("Body", "")))
            except ValueError as exc:
                logger.warning("skipping an unreadable dead letter on queue %r: %s", queue, exc)
                continue
            found.append((message, entry, vt))
        return found

    async def entries(self, queue: str, limit: int) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead letters of ``queue``, oldest first.

        Raises:
            DriverError: SQS failed.

        """
        if limit <= 0:
            return []
        url = self._conn.dead_url(queue)
        messages = await peek(self._conn, "dead_letters", url)
        try:
            return [entry for _, entry, _ in self._parsed(queue, messages)][:limit]
        finally:
            await unhide(self._conn, "dead_letters", url, messages)

    async def requeue(
        self,
        queue: str,
        task_ids: Sequence[str] | None,
        rewrite: Callable[[bytes], bytes] | None,
    ) -> int:
        """Send dead letters (all, or those with ``task_ids``) back to ``queue``, then delete them.

        ``rewrite(body)`` gives the body to send; an entry it raises for stays. Sent first,
        deleted after: a crash in between duplicates an entry, never loses it.

        Raises:
            DriverError: SQS failed.

        """
        wanted = None if task_ids is None else set(task_ids)
        url = self._conn.dead_url(queue)
        messages = await peek(self._conn, "requeue_dead", url)
        moving: list[dict[str, Any]] = []
        sends: list[wire.Send] = []
        for message, entry, vt in self._parsed(queue, messages):
            if wanted is not None and entry.task_id not in wanted:
                continue
            try:
                body = entry.body if rewrite is None else rewrite(entry.body)
            except Exception as exc:  # that entry stays dead-lettered
                logger.warning("dead letter %r not requeued: %s", entry.task_id, exc)
                continue
            outgoing = Outgoing(queue, body, visibility_timeout_seconds=vt, task_id=entry.task_id)
            sends.append(wire.outgoing(outgoing, self._hop, 0.0))
            moving.append(message)
        moved_ids = {id(m) for m in moving}
        try:
            main = self._conn.url(queue)
            for part in wire.batches(sends, self._limit):
                entries = [send.entry(str(i)) for i, send in enumerate(part)]
                response = await self._conn.call(
                    "requeue_dead", "send_message_batch", main, Entries=entries
                )
                if batch_failures(response):
                    raise self._conn.error("requeue_dead", RuntimeError(str(response["Failed"])))
            await delete(self._conn, "requeue_dead", url, moving)
        finally:
            await unhide(
                self._conn, "requeue_dead", url, [m for m in messages if id(m) not in moved_ids]
            )
        return len(moving)

    async def purge(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; return how many there were.

        Raises:
            DriverError: SQS failed.

        """
        url = self._conn.dead_url(queue)
        return await delete(
            self._conn, "purge_dead", url, await peek(self._conn, "purge_dead", url)
        )
