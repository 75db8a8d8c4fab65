"""The AWS SQS driver (aioboto3), tested against moto's server.

Queue ``name`` is ``queue_url_prefix + name``; its dead letters are on ``name + "_dead"``
(connection, credentials and queue creation: :mod:`asynctasq.drivers.sqs_client`; wire
format: :mod:`asynctasq.drivers.sqs_format`; receiving: :mod:`asynctasq.drivers.sqs_receive`;
dead letters: :mod:`asynctasq.drivers.sqs_dead`; live workers, as tags of the queue
``asynctasq-workers``: :mod:`asynctasq.drivers.sqs_workers`; completed-task records on
``name + "_completed"``: :mod:`asynctasq.drivers.sqs_completed`).

Behaviour choices (where SQS differs from the other brokers):

* Delays: native ``DelaySeconds`` (whole seconds, rounded up) up to ``delay_hop_seconds``
  (900, SQS' limit); a longer delay or retry backoff is sent as hops of at most that many
  seconds, each re-sent by the consumer that receives it early (never delivered early,
  never rejected: FIELD-CASES C11). Nothing needs ``maintain()``: it does nothing.
* Leases: each message gets its own visibility timeout (whole seconds, 1 s to 12 h) right
  after it is received; ``extend`` renews it, and the driver tracks each lease's deadline
  itself because SQS accepts stale receipt handles.
* ``delivery_count`` is SQS' ``ApproximateReceiveCount`` plus the ``asynctasq-base`` of a
  released copy. ``release`` therefore re-sends each message as a copy (the count undone)
  and deletes the original, rather than ``ChangeMessageVisibility`` to 0, which SQS would
  count as a receive, so a graceful restart would look like a lost attempt. The copy goes
  to the back of the queue (SQS standard queues keep no order anyway).
* ``ack`` is one ``DeleteMessageBatch`` per 10 messages; ``retry`` sends the next attempt,
  then deletes the old one (a crash in between may duplicate the task, never lose it).
* Sizes come from ``GetQueueAttributes`` and are approximate on SQS (exact on moto).
* ``max_message_bytes``: the largest task body that fits the 256 KiB message limit once
  base64-encoded with its attributes (196,224 bytes); bodies are checked at dispatch.
* Queue names (``QueueCatalog``) come from ``ListQueues`` under the prefix: every queue
  that exists there, empty ones too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from asynctasq.config.records import Config, SQSConfig
from asynctasq.drivers import sqs_format as wire
from asynctasq.drivers.protocol import (
    CompletedTask,
    DeadLetterEntry,
    Delivery,
    Outgoing,
    QueueSizes,
    WorkerInfo,
)
from asynctasq.drivers.sqs_client import SQSConnection
from asynctasq.drivers.sqs_completed import DEFAULT_COMPLETED_LIMIT, CompletedQueues
from asynctasq.drivers.sqs_dead import DeadLetterQueues
from asynctasq.drivers.sqs_receive import Lease, Receiver, batch_failures, chunks
from asynctasq.drivers.sqs_workers import WorkerTags
from asynctasq.errors import DriverError, MessageTooLargeError

logger = logging.getLogger("asynctasq.drivers.sqs")

SEND_CONCURRENCY = 8
"""Most ``SendMessageBatch`` calls of one ``enqueue_many`` in flight at once."""


def _held(deliveries: Sequence[Delivery], operation: str) -> dict[str, list[Lease]]:
    """Group the still-held leases of ``deliveries`` by queue URL; log the lost ones."""
    now = time.monotonic()
    groups: dict[str, list[Lease]] = {}
    lost = 0
    for delivery in deliveries:
        lease: Lease = delivery.receipt
        if lease.held(now):
            groups.setdefault(lease.url, []).append(lease)
        else:
            lost += 1
    if lost:
        logger.warning("%s: %d of %d leases were already lost", operation, lost, len(deliveries))
    return groups


class SQSDriver:
    """The SQS driver. Built by :func:`build`.

    Also a ``DeadLetterStore``, a ``QueueCatalog``, a ``WorkerRegistry`` and a
    ``CompletedStore`` (each with SQS' limits, in the modules named above).

    Args:
        config: the ``sqs`` group: region_name, queue_url_prefix, credentials, endpoint_url,
            create_queues, delay_hop_seconds.
        pool_size: the most HTTP connections of the client.
        message_limit_bytes: the largest SQS message, body and attributes (256 KiB).
        hop_seconds: overrides ``config.delay_hop_seconds`` (tests).

    Attributes:
        completed_limit: completed-task records shown, and kept past a listing, per queue.

    """

    name = "sqs"
    maintenance_interval_seconds: float | None = None

    def __init__(
        self,
        config: SQSConfig,
        *,
        pool_size: int = 100,
        message_limit_bytes: int = wire.MESSAGE_LIMIT_BYTES,
        hop_seconds: int | None = None,
    ) -> None:
        self.max_message_bytes: int | None = wire.max_body_bytes(message_limit_bytes)
        self.pool_size: int | None = pool_size  # optional protocol attribute
        self._limit = message_limit_bytes
        self._hop = min(wire.MAX_DELAY_SECONDS, hop_seconds or config.delay_hop_seconds)
        self._conn = SQSConnection(config, pool_size=pool_size)
        self._receiver = Receiver(self._conn, self._hop, self.release)
        self._dead = DeadLetterQueues(self._conn, message_limit_bytes, self._hop)
        self._workers = WorkerTags(self._conn)
        self._completed = CompletedQueues(self._conn, message_limit_bytes)
        self.completed_limit = DEFAULT_COMPLETED_LIMIT

    async def open(self) -> None:
        """Create the client and check the endpoint answers (idempotent).

        Raises:
            DriverError: the endpoint cannot be reached or no credentials were found.

        """
        await self._conn.open()

    async def close(self) -> None:
        """Let background polls end (releasing what they bring), then close the client."""
        await self._receiver.close()
        await self._conn.close()

    def _send(self, message: Outgoing, base: int = 0) -> wire.Send:
        send = wire.outgoing(message, self._hop, time.time(), base)
        if send.size > self._limit:
            raise MessageTooLargeError(
                f"message for queue {message.queue!r} is {len(message.body)} bytes "
                f"({send.size} bytes as sent: base64 body and attributes); SQS accepts at most "
                f"{self._limit} bytes per message (256 KiB), task bodies up to "
                f"{self.max_message_bytes} bytes"
            )
        return send

    async def enqueue(self, message: Outgoing) -> None:
        """Send one message (``SendMessage``); a delay over the hop limit becomes hops.

        Raises:
            MessageTooLargeError: the message exceeds the 256 KiB limit.
            DriverError: SQS failed.

        """
        send = self._send(message)
        await self._conn.call(
            "enqueue", "send_message", self._conn.url(message.queue), **send.params()
        )

    async def _send_batch(self, operation: str, url: str, sends: Sequence[wire.Send]) -> None:
        entries = [send.entry(str(i)) for i, send in enumerate(sends)]
        response = await self._conn.call(operation, "send_message_batch", url, Entries=entries)
        failed = batch_failures(response)
        if failed:
            first = failed[0]
            raise DriverError(
                "sqs",
                operation,
                f"{len(failed)} of {len(sends)} messages were not stored in {url!r}: "
                f"{first.get('Code', '')}: {first.get('Message', '')}",
            )

    async def enqueue_many(self, messages: Sequence[Outgoing]) -> None:
        """Send many messages with ``SendMessageBatch`` (10 or 256 KiB per call, 8 at once).

        Not transactional: on an error some messages may be stored already.

        Raises:
            MessageTooLargeError: a message exceeds the 256 KiB limit (nothing is sent).
            DriverError: SQS failed.

        """
        groups: dict[str, list[wire.Send]] = {}
        for message in messages:
            groups.setdefault(self._conn.url(message.queue), []).append(self._send(message))
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(url: str, part: list[wire.Send]) -> None:
            async with gate:
                await self._send_batch("enqueue_many", url, part)

        calls = [
            send(url, part)
            for url, sends in groups.items()
            for part in wire.batches(sends, self._limit)
        ]
        await asyncio.gather(*calls)

    async def dequeue(
        self, queues: Sequence[str], *, limit: int, wait_seconds: float
    ) -> list[Delivery]:
        """Lease up to ``limit`` messages, earlier queues first, long-polling when idle.

        Raises:
            DriverError: SQS failed.

        """
        return await self._receiver.dequeue(queues, limit, wait_seconds)

    async def _delete(self, operation: str, url: str, leases: Sequence[Lease]) -> int:
        entries = [{"Id": str(i), "ReceiptHandle": lease.handle} for i, lease in enumerate(leases)]
        responses = await asyncio.gather(
            *(
                self._conn.call(operation, "delete_message_batch", url, Entries=list(part))
                for part in chunks(entries)
            )
        )
        for lease in leases:
            lease.drop()
        return sum(len(r.get("Successful", [])) for r in responses)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Delete finished messages (``DeleteMessageBatch``); lost leases are skipped, logged.

        Raises:
            DriverError: SQS failed.

        """
        groups = _held(deliveries, "ack")
        results = await asyncio.gather(*(self._delete("ack", u, ls) for u, ls in groups.items()))
        failed = sum(len(ls) for ls in groups.values()) - sum(results)
        if failed:
            logger.warning("ack: %d messages could not be deleted (lease lost)", failed)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Re-send unfinished messages as copies that keep their delivery count, then delete.

        Raises:
            DriverError: SQS failed.

        """
        groups: dict[str, list[tuple[Delivery, Lease]]] = {}
        held = _held(deliveries, "release")
        kept = {id(lease) for leases in held.values() for lease in leases}
        for delivery in deliveries:
            if id(delivery.receipt) in kept:
                groups.setdefault(delivery.receipt.url, []).append((delivery, delivery.receipt))
        for url, pairs in groups.items():
            sends = [
                self._send(
                    Outgoing(d.queue, d.body, visibility_timeout_seconds=lease.vt), lease.count - 1
                )
                for d, lease in pairs
            ]
            for part in wire.batches(sends, self._limit):
                await self._send_batch("release", url, part)
            await self._delete("release", url, [lease for _, lease in pairs])

    async def _drop_after_store(self, operation: str, lease: Lease) -> None:
        try:
            await self._delete(operation, lease.url, [lease])
        except DriverError as exc:  # stored already: the old message comes back later
            logger.warning("%s: stored, but the old message was not deleted: %s", operation, exc)

    async def retry(self, delivery: Delivery, message: Outgoing) -> None:
        """Send the next attempt (delays over the hop limit as hops), then delete the old one.

        Nothing is sent when the lease was already lost (logged).

        Raises:
            MessageTooLargeError: the new message exceeds the 256 KiB limit.
            DriverError: SQS failed (nothing was deleted).

        """
        if not _held([delivery], "retry"):
            return
        send = self._send(message)
        await self._conn.call(
            "retry", "send_message", self._conn.url(message.queue), **send.params()
        )
        await self._drop_after_store("retry", delivery.receipt)

    async def dead_letter(self, delivery: Delivery, entry: DeadLetterEntry) -> None:
        """Send ``entry`` to ``<queue>_dead``, then delete the message; nothing if lease lost.

        Raises:
            DriverError: SQS failed (nothing was deleted).

        """
        if not _held([delivery], "dead_letter"):
            return
        lease: Lease = delivery.receipt
        await self._dead.store(entry, lease.vt)
        await self._drop_after_store("dead_letter", lease)

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Renew each held lease to now + its visibility timeout (``ChangeMessageVisibilityBatch``).

        A lease already lost, or one SQS refuses (past 12 hours), stays lost (logged).

        Raises:
            DriverError: SQS failed.

        """
        for url, leases in _held(deliveries, "extend").items():
            for part in chunks(leases):
                now = time.monotonic()
                entries = [
                    {"Id": str(i), "ReceiptHandle": lease.handle, "VisibilityTimeout": lease.vt}
                    for i, lease in enumerate(part)
                ]
                response = await self._conn.call(
                    "extend", "change_message_visibility_batch", url, Entries=entries
                )
                failed = {int(f["Id"]): f for f in batch_failures(response)}
                for i, lease in enumerate(part):
                    if i not in failed:
                        lease.deadline = now + lease.vt
                if failed:
                    first = next(iter(failed.values()))
                    logger.warning(
                        "extend: %d leases could not be renewed (%s: %s)",
                        len(failed),
                        first.get("Code", ""),
                        first.get("Message", ""),
                    )

    async def maintain(self, queues: Sequence[str]) -> None:
        """Do nothing: SQS makes delayed and expired messages visible by itself."""

    async def sizes(self, queue: str) -> QueueSizes:
        """Return approximate ready, delayed, in-flight and dead-letter counts of ``queue``.

        Raises:
            DriverError: SQS failed.

        """
        ready, delayed, in_flight = await self._conn.counts("sizes", self._conn.url(queue))
        return QueueSizes(ready, delayed, in_flight, await self._dead.count(queue))

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead letters of ``queue``, oldest first.

        Raises:
            DriverError: SQS failed.

        """
        return await self._dead.entries(queue, limit)

    async def requeue_dead(
        self,
        queue: str,
        task_ids: Sequence[str] | None = None,
        *,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> int:
        """Send dead letters (all, or ``task_ids``) back to ``queue`` as fresh messages.

        Raises:
            DriverError: SQS failed.

        """
        return await self._dead.requeue(queue, task_ids, rewrite)

    async def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; return how many there were.

        Raises:
            DriverError: SQS failed.

        """
        return await self._dead.purge(queue)

    async def queue_names(self) -> list[str]:
        """Return the queues that exist under ``queue_url_prefix`` (``ListQueues``), sorted.

        Raises:
            DriverError: SQS failed.

        """
        return await self._conn.queue_names()

    async def record_heartbeat(self, worker: WorkerInfo, *, ttl_seconds: float) -> None:
        """Tag the registry queue with ``worker``, live ``ttl_seconds`` (this machine's clock).

        Raises:
            DriverError: SQS failed (e.g. 50 workers are registered already).

        """
        await self._workers.record(worker, ttl_seconds)

    async def remove_worker(self, worker_id: str) -> None:
        """Remove ``worker_id``'s tag from the registry queue.

        Raises:
            DriverError: SQS failed.

        """
        await self._workers.remove(worker_id)

    async def live_workers(self) -> list[WorkerInfo]:
        """Return the workers whose ttl has not passed, by worker id.

        Raises:
            DriverError: SQS failed.

        """
        return await self._workers.live()

    async def keep_completed(self, tasks: Sequence[CompletedTask]) -> None:
        """Send ``tasks`` to their queues' ``_completed`` queues (kept one hour).

        Raises:
            DriverError: SQS failed.

        """
        await self._completed.keep(tasks)

    async def completed_tasks(self, queue: str, *, limit: int = 100) -> list[CompletedTask]:
        """Return up to ``limit`` records of ``queue``, newest first (at most ``completed_limit``).

        Deletes the records past ``completed_limit`` on the way.

        Raises:
            DriverError: SQS failed.

        """
        if limit <= 0:
            return []
        return await self._completed.tasks(queue, limit, self.completed_limit)

    async def completed_count(self, queue: str) -> int:
        """Return how many records ``queue`` has (approximate), at most ``completed_limit``.

        Raises:
            DriverError: SQS failed.

        """
        return await self._completed.count(queue, self.completed_limit)


def build(config: Config) -> SQSDriver:
    """Return an unopened SQS driver for ``config.sqs``."""
    return SQSDriver(config.sqs)
