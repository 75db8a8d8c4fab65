"""Dead letters on SQS: one ``<queue>_dead`` queue per queue, one JSON body per entry.

SQS cannot read a queue without receiving from it, so listing, requeueing and purging
*peek*: they receive every message of the dead-letter queue with a short visibility
timeout (:data:`PEEK_SECONDS`), sort them oldest first (``SentTimestamp``), act, and make
the ones they keep visible again at once. Two peeks at the same moment each see only part
of the queue. When fewer messages came than ``ApproximateNumberOfMessages`` promised, one
more receive long-polls for a second (short receives sample only some SQS servers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from asynctasq.drivers import sqs_format as wire
from asynctasq.drivers.protocol import DeadLetterEntry, Outgoing
from asynctasq.drivers.sqs_client import SQSConnection
from asynctasq.drivers.sqs_receive import batch_failures, chunks

logger = logging.getLogger("asynctasq.drivers.sqs")

PEEK_SECONDS = 30
"""Visibility timeout of dead letters while a listing, requeue or purge looks at them."""


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
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        url = self._conn.dead_url(queue)
        response = await self._conn.call(
            "sizes", "get_queue_attributes", url, missing_ok=True, AttributeNames=names
        )
        if response is None:
            return 0
        return sum(int(response.get("Attributes", {}).get(name, 0)) for name in names)

    async def _peek(self, operation: str, url: str) -> list[dict[str, Any]]:
        response = await self._conn.call(
            operation,
            "get_queue_attributes",
            url,
            missing_ok=True,
            AttributeNames=["ApproximateNumberOfMessages"],
        )
        if response is None:
            return []
        expected = int(response.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))
        found: list[dict[str, Any]] = []
        waited = False
        while True:
            messages = await self._receive(operation, url, 0)
            if not messages:
                if waited or len(found) >= expected:
                    break
                waited = True
                messages = await self._receive(operation, url, 1)
                if not messages:
                    break
            found += messages
        found.sort(key=lambda m: int(m.get("Attributes", {}).get("SentTimestamp", 0)))
        return found

    async def _receive(self, operation: str, url: str, wait: int) -> list[dict[str, Any]]:
        response = await self._conn.call(
            operation,
            "receive_message",
            url,
            MaxNumberOfMessages=wire.MAX_BATCH,
            WaitTimeSeconds=wait,
            VisibilityTimeout=PEEK_SECONDS,
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    async def _unhide(self, operation: str, url: str, messages: Sequence[dict[str, Any]]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ]
        for part in chunks(entries):
            await self._conn.call(
                operation, "change_message_visibility_batch", url, Entries=list(part)
            )

    async def _delete(self, operation: str, url: str, messages: Sequence[dict[str, Any]]) -> int:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        deleted = 0
        for part in chunks(entries):
            response = await self._conn.call(
                operation, "delete_message_batch", url, Entries=list(part)
            )
            deleted += len(part) - len(batch_failures(response))
        return deleted

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
        messages = await self._peek("dead_letters", url)
        try:
            return [entry for _, entry, _ in self._parsed(queue, messages)][:limit]
        finally:
            await self._unhide("dead_letters", url, messages)

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
        messages = await self._peek("requeue_dead", url)
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
            await self._delete("requeue_dead", url, moving)
        finally:
            await self._unhide("requeue_dead", url, [m for m in messages if id(m) not in moved_ids])
        return len(moving)

    async def purge(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; return how many there were.

        Raises:
            DriverError: SQS failed.

        """
        url = self._conn.dead_url(queue)
        return await self._delete("purge_dead", url, await self._peek("purge_dead", url))
