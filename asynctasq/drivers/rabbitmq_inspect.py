"""The RabbitMQ driver's queue catalog, worker registry and completed-task store (AMQP only).

RabbitMQ >= 3.8 without plugins has no way to list queues or to read a queue without taking
its messages, so each of these is a small durable queue written with confirms and read by
peeking under a reader lock (:mod:`rabbitmq_monitor`; names and layouts in
:mod:`rabbitmq_records`):

* Queue catalog: each driver records a queue name the first time it declares the queue's
  topology (and again after re-declaring it). A read keeps the newest record per name and
  deletes the older ones, and deletes the records of queues that no longer exist. Listed:
  the names whose ready, delayed, dead or completed queue holds a message, or whose ready
  queue has a consumer (AMQP reports no unacked count, so a queue whose only messages are
  running is known by its consumer).
* Worker registry: a heartbeat is a message expiring after the worker's ttl, judged by the
  broker's clock (RabbitMQ drops expired messages before delivering them, wherever they
  are in the queue); ``remove_worker`` publishes a ``removed`` record. A read keeps the
  newest record per worker and deletes the older ones; ``last_heartbeat`` is the worker's
  own clock (RabbitMQ stamps no time on a message).
* Completed tasks: ``{queue}_completed``, bounded with ``x-max-length: completed_limit``
  and ``drop-head`` when first declared (a queue declared earlier with another bound keeps
  its own, with a warning). A read returns the newest first.

Costs: a catalog record per queue per driver start; one confirmed publish per heartbeat and
per acked batch of completed tasks; a read moves the whole queue over the network once
(about 0.2 s per 1,000 messages against a local broker) and waits for the other readers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import aiormq.abc
from aio_pika import Message

from asynctasq.drivers import rabbitmq_format as form
from asynctasq.drivers import rabbitmq_records as rec
from asynctasq.drivers.protocol import CompletedTask, WorkerInfo
from asynctasq.drivers.rabbitmq_link import Link
from asynctasq.drivers.rabbitmq_monitor import MonitorQueues

logger = logging.getLogger("asynctasq.drivers.rabbitmq")

DEFAULT_COMPLETED_LIMIT = 1000
"""Completed tasks kept per queue when ``repository.keep_completed_tasks`` is on."""


class Inspection:
    """Catalog, registry and completed-task operations of one driver.

    Args:
        link: the driver's connection.
        completed_limit: ``x-max-length`` of the completed queues this driver declares.

    Each method raises what aio-pika raised; the driver translates it.

    """

    def __init__(self, link: Link, completed_limit: int = DEFAULT_COMPLETED_LIMIT) -> None:
        self._link = link
        self._queues = MonitorQueues(link)
        self._ids = form.MessageIds()
        self._ttl_ms: dict[str, int] = {}
        self.completed_limit = completed_limit

    @property
    def _exchange(self) -> str:
        return self._link.config.exchange_name

    async def record_queue(self, queue: str) -> None:
        """Add ``queue`` to the catalog; a failure is logged, never raised (hook of ensure)."""
        name = rec.catalog_name(self._exchange)
        try:
            message = rec.catalog_record(queue, self._ids.next())
            await self._queues.publish(name, rec.bounded(rec.CATALOG_MAX_LENGTH), [message])
        except Exception as exc:
            logger.warning(
                "queue %r is not in the catalog %r (%s); `asynctasq stats` may omit it",
                queue,
                name,
                self._link.detail(exc),
            )

    async def queue_names(self) -> list[str]:
        """Return the catalogued queues holding anything or consumed, sorted."""
        async with (
            self._queues.reading(),
            self._queues.peek(rec.catalog_name(self._exchange)) as held,
        ):
            newest: dict[str, aiormq.abc.DeliveredMessage] = {}
            stale: list[aiormq.abc.DeliveredMessage] = []
            for message in held.messages:
                try:
                    queue = rec.read_catalog(message.body)
                except ValueError as exc:
                    logger.warning("deleting an unreadable catalog record: %s", exc)
                    stale.append(message)
                    continue
                if queue in newest:
                    stale.append(newest[queue])
                newest[queue] = message
            listed = []
            for queue, message in newest.items():
                state = await self._state(queue)
                if state is None:
                    stale.append(message)  # every queue of it is gone
                elif state:
                    listed.append(queue)
            for message in stale:
                await held.drop(message)
        return sorted(listed)

    async def _state(self, queue: str) -> bool | None:
        """Return ``None`` if none of ``queue``'s queues exists, else whether it is in use."""
        names = [queue, form.delayed_name(queue), form.dead_name(queue), rec.completed_name(queue)]
        counts = await self._queues.counts(names)
        if all(found is None for found in counts.values()):
            return None
        ready = counts[queue]
        consumed = ready is not None and ready[1] > 0
        return consumed or any(found is not None and found[0] > 0 for found in counts.values())

    async def record_heartbeat(self, worker: WorkerInfo, *, ttl_seconds: float) -> None:
        """Publish a heartbeat of ``worker`` stamped now, expiring after ``ttl_seconds``."""
        ttl_ms = form.to_ms(ttl_seconds)
        self._ttl_ms[worker.worker_id] = ttl_ms
        message = rec.heartbeat(worker, time.time(), ttl_ms, self._ids.next())
        await self._publish_worker(message)

    async def remove_worker(self, worker_id: str) -> None:
        """Publish a ``removed`` record of ``worker_id``, living as long as its heartbeats."""
        ttl_ms = self._ttl_ms.pop(worker_id, rec.REMOVED_TTL_MS)
        await self._publish_worker(rec.removed(worker_id, ttl_ms, self._ids.next()))

    async def _publish_worker(self, message: Message) -> None:
        name = rec.workers_name(self._exchange)
        await self._queues.publish(name, rec.bounded(rec.WORKERS_MAX_LENGTH), [message])

    async def live_workers(self) -> list[WorkerInfo]:
        """Return the workers whose newest record is an unexpired heartbeat, by worker id."""
        async with (
            self._queues.reading(),
            self._queues.peek(rec.workers_name(self._exchange)) as held,
        ):
            newest: dict[str, tuple[aiormq.abc.DeliveredMessage, WorkerInfo | None]] = {}
            stale: list[aiormq.abc.DeliveredMessage] = []
            for message in held.messages:
                try:
                    worker_id, info = rec.read_worker(message.body)
                except ValueError as exc:
                    logger.warning("deleting an unreadable worker record: %s", exc)
                    stale.append(message)
                    continue
                if worker_id in newest:
                    stale.append(newest[worker_id][0])
                newest[worker_id] = (message, info)
            for message in stale:
                await held.drop(message)
        return [info for _, (_, info) in sorted(newest.items()) if info is not None]

    async def keep_completed(self, tasks: Sequence[CompletedTask]) -> None:
        """Publish ``tasks`` to their queues' completed queues (the oldest dropped beyond)."""
        by_queue: dict[str, list[Message]] = {}
        for task in tasks:
            by_queue.setdefault(task.queue, []).append(rec.completed(task, self._ids.next()))
        arguments = rec.bounded(self.completed_limit)
        for queue, messages in by_queue.items():
            await self._queues.publish(rec.completed_name(queue), arguments, messages)

    async def completed_tasks(self, queue: str, *, limit: int) -> list[CompletedTask]:
        """Return up to ``limit`` kept completed tasks of ``queue``, newest first."""
        async with self._queues.reading(), self._queues.peek(rec.completed_name(queue)) as held:
            found: list[CompletedTask] = []
            for message in reversed(held.messages):
                if len(found) >= limit:
                    break
                try:
                    found.append(rec.read_completed(message.body))
                except ValueError as exc:
                    logger.warning("skipping an unreadable completed task on %r: %s", queue, exc)
        return found

    async def completed_count(self, queue: str) -> int:
        """Return how many completed tasks of ``queue`` are kept."""
        name = rec.completed_name(queue)
        async with self._queues.reading():
            found = (await self._queues.counts([name]))[name]
        return 0 if found is None else found[0]
