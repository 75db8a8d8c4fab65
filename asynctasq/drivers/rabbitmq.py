"""The RabbitMQ driver: aio-pika over a durable direct exchange (RabbitMQ >= 3.8, no plugins).

The pieces: :mod:`rabbitmq_link` (connection, topology, confirmed publishing),
:mod:`rabbitmq_consume` (consumers and their buffer, re-stamping, the watchdog),
:mod:`rabbitmq_redeliveries` (copies of messages this driver still runs),
:mod:`rabbitmq_acks` (batched acks), :mod:`rabbitmq_settle` (ack, release, retry,
dead-letter), :mod:`rabbitmq_delay` (delayed messages), :mod:`rabbitmq_dead` (dead
letters), :mod:`rabbitmq_inspect` (queue catalog, worker registry, completed tasks, over
:mod:`rabbitmq_monitor` and :mod:`rabbitmq_records`), :mod:`rabbitmq_format` (names,
headers), :mod:`rabbitmq_quiet` (aio-pika's repeated log lines during an outage). How the
protocol maps onto RabbitMQ:

* ``enqueue``: a persistent message published with ``mandatory`` and a publisher confirm;
  it returns once the broker confirmed it. ``enqueue_many`` sends all, then awaits all
  confirms together. A delayed message goes to ``{queue}_delayed`` with its due time.
* ``dequeue``: hands out what the queues' consumers received (earlier queues first, at
  most ``limit``); waits for the next arrival up to ``wait_seconds``. With
  ``wait_seconds=0`` it first makes sure what the broker already pushed has arrived.
  ``prefetch_count`` bounds how many unacked messages the broker pushes per queue.
* Leases: RabbitMQ has no per-message lease. A delivery stays with this driver until it
  is acked, or until the channel it came on closes (the worker died, the connection
  dropped, or the broker's ``consumer_timeout`` — 30 minutes by default — passed; raise it
  in ``rabbitmq.conf`` for longer tasks). Then the broker requeues it, marked
  ``redelivered``. A lost hold is detected as a closed channel. If the copy comes back
  here while the task still runs, it waits for that run and is settled by it (so a
  dropped connection does not run a task twice); ``extend`` renews the local lease that
  bounds that wait. A run that ends before its copy is back (the connection is still
  down) has its outcome remembered: the copy is acked, or its retry / dead letter stored,
  when it arrives here. A copy given to another worker runs there, counted.
* ``delivery_count``: kept in a header; a redelivered message is re-stamped with one more
  before anyone runs it (:mod:`rabbitmq_consume`).
* ``release`` (shutdown): cancels the consumers, then stores each unfinished or merely
  prefetched message again at the front of its queue (priority 1, same count, confirmed)
  and acks the original. Not ``basic.nack(requeue)``: that marks the message redelivered,
  indistinguishable from a crash, and would cost the task an attempt.
* ``retry`` / ``dead_letter``: publish the next attempt (or the entry to
  ``{queue}_dead``) with a confirm, *then* ack the old delivery: a crash in between may
  duplicate the task, never lose it.
* ``ack``: batched, one ``basic.ack(multiple)`` frame where the tags allow.
* ``maintain``: releases due delayed messages (every worker calls it).
* ``sizes``: ready, delayed and dead come from the broker (plus this driver's buffer);
  ``in_flight`` counts this driver's own unsettled deliveries (AMQP cannot ask a queue
  for its unacked total).
* ``max_message_bytes``: 16,711,680 bytes: RabbitMQ's default ``max_message_size`` since
  4.0 (16 MiB) less 64 KiB for properties and headers.
* ``QueueCatalog``, ``WorkerRegistry``, ``CompletedStore``: small durable queues written
  with confirms and read by peeking under a reader lock (:mod:`rabbitmq_inspect`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from asynctasq.config.records import Config, RabbitMQConfig
from asynctasq.drivers import rabbitmq_format as form
from asynctasq.drivers import rabbitmq_records as rec
from asynctasq.drivers.protocol import (
    CompletedTask,
    DeadLetterEntry,
    Delivery,
    Outgoing,
    QueueSizes,
    WorkerInfo,
)
from asynctasq.drivers.rabbitmq_acks import Receipt
from asynctasq.drivers.rabbitmq_consume import Consumers
from asynctasq.drivers.rabbitmq_dead import DeadLetters
from asynctasq.drivers.rabbitmq_delay import DelayedRelease
from asynctasq.drivers.rabbitmq_inspect import DEFAULT_COMPLETED_LIMIT, Inspection
from asynctasq.drivers.rabbitmq_link import FAILURES, Link
from asynctasq.drivers.rabbitmq_settle import Settlement, Triple
from asynctasq.errors import ConfigError, DriverError, MessageTooLargeError

logger = logging.getLogger("asynctasq.drivers.rabbitmq")

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024 - 64 * 1024
"""RabbitMQ's default ``max_message_size`` less room for properties and headers.

Source: rabbitmq-server PR 11455, "Reduce default maximum message size to 16MB" (4.0.0);
3.8-3.13 accept 128 MiB."""

SHUTDOWN_SECONDS = 5.0
"""The longest each broker call of a stopping worker may take: ``release``,
``remove_worker`` and the give-back in ``close``. Past it the broker requeues what the
connection held when the connection closes. Once one of them timed out, ``close`` does
not try again (the broker is unreachable), so a stop with the broker down takes seconds,
not the 30 s operation timeout per call."""

_T = TypeVar("_T")


def default_connection_name() -> str:
    """Return ``"asynctasq <host> pid <pid> <random>"``, unique per driver."""
    return f"asynctasq {socket.gethostname()} pid {os.getpid()} {os.urandom(3).hex()}"


class RabbitMQDriver:
    """The RabbitMQ driver. Built by :func:`build`.

    Also a ``DeadLetterStore``, ``QueueCatalog``, ``WorkerRegistry`` and ``CompletedStore``.

    Args:
        config: the ``rabbitmq`` group: url, exchange_name, prefetch_count (QoS per
            consumer), delayed_task_interval (becomes ``maintenance_interval_seconds``).
        connection_name: the client-provided connection name (default: host, pid, random).
        max_message_bytes: the largest body accepted, or ``None`` for no check.
        reconnect_seconds: pause between reconnection attempts after a connection loss.
        operation_timeout_seconds: the longest a broker call may take (waiting for a
            reconnection included) before ``DriverError``.
        watch_seconds: how often the consumer watchdog runs.
        completed_limit: completed tasks kept per queue (``x-max-length`` of the
            ``{queue}_completed`` queues this driver creates).

    Attributes:
        connection_name: the name the broker shows for this driver's connection.
        prefetch_count: the most unacknowledged messages the broker pushes per queue.
        completed_limit: as the argument; applies to completed queues created afterwards.

    """

    name = "rabbitmq"

    def __init__(
        self,
        config: RabbitMQConfig,
        *,
        connection_name: str | None = None,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        reconnect_seconds: float = 1.0,
        operation_timeout_seconds: float = 30.0,
        watch_seconds: float = 2.0,
        completed_limit: int = DEFAULT_COMPLETED_LIMIT,
    ) -> None:
        self.maintenance_interval_seconds: float | None = config.delayed_task_interval
        self.max_message_bytes = max_message_bytes
        self.prefetch_count = config.prefetch_count
        self.connection_name = connection_name or default_connection_name()
        self._link = Link(
            config,
            connection_name=self.connection_name,
            reconnect_seconds=reconnect_seconds,
            operation_timeout_seconds=operation_timeout_seconds,
        )
        self._consumers = Consumers(self._link, config.prefetch_count, watch_seconds=watch_seconds)
        self._delayed = DelayedRelease(self._link)
        self._dead = DeadLetters(self._link)
        self._settle = Settlement(self._link, self._consumers)
        self._inspect = Inspection(self._link, completed_limit)
        self._link.on_declared = self._inspect.record_queue
        self._ids = form.MessageIds()
        self._opened = False
        self._unreachable = False  # a shutdown call timed out: close does not try again

    @property
    def completed_limit(self) -> int:
        """Completed tasks kept per queue (for completed queues created from now on)."""
        return self._inspect.completed_limit

    @completed_limit.setter
    def completed_limit(self, value: int) -> None:
        self._inspect.completed_limit = value

    async def open(self) -> None:
        """Connect, open the channels and declare the exchange (idempotent).

        Raises:
            DriverError: the broker cannot be reached, refuses the login, or is too old.

        """
        if not self._opened:
            await self._link.open()
            self._opened = True
            self._unreachable = False

    async def close(self) -> None:
        """Give buffered messages back, then close the connection (idempotent)."""
        if not self._opened:
            return
        self._opened = False
        if self._unreachable or not self._link.connected:
            if buffered := self._consumers.buffered_total():
                logger.warning(
                    "not giving %d prefetched messages back (%s); the broker requeues them "
                    "when it sees the connection closed",
                    buffered,
                    "the broker did not answer" if self._link.connected else "connection down",
                )
        else:
            try:
                await self._shutdown_call("close", self._settle.release([]))
            except DriverError as exc:
                logger.warning(
                    "could not give buffered messages back (%s); the broker requeues them "
                    "when the connection closes",
                    exc,
                )
        if unsettled := self._consumers.unsettled():
            logger.warning("closing with %d unsettled deliveries; they will run again", unsettled)
        reachable = self._link.connected and not self._unreachable
        await self._consumers.close(graceful=reachable)
        await self._link.close()

    def check_queues(self, queues: Sequence[str]) -> None:
        """Refuse queue names this driver cannot use (a worker calls it before it starts).

        Raises:
            ConfigError: a name ends in ``_delayed``, ``_dead`` or ``_completed``, is one of
                the exchange's monitoring queues, starts with ``amq.``, or is too long.

        """
        problems = [
            f"{queue!r}: {problem}"
            for queue in queues
            if (problem := rec.queue_name_problem(queue, self._link.config.exchange_name))
        ]
        if problems:
            raise ConfigError("queue names the RabbitMQ driver cannot use: " + "; ".join(problems))

    def _triple(self, message: Outgoing) -> Triple:
        self._link.check_queue(message.queue)
        limit = self.max_message_bytes
        if limit is not None and len(message.body) > limit:
            raise MessageTooLargeError(
                f"message for queue {message.queue!r} is {len(message.body)} bytes; "
                f"the RabbitMQ driver accepts at most {limit} bytes"
            )
        key, amqp = form.outgoing(message, self._ids.next(), int(time.time() * 1000))
        return message.queue, key, amqp

    async def enqueue(self, message: Outgoing) -> None:
        """Publish one message and wait for the broker's confirm.

        Raises:
            MessageTooLargeError: the body is larger than ``max_message_bytes``.
            ConfigError: the queue's name is taken (see :meth:`check_queues`).
            DriverError: the broker failed or did not confirm.

        """
        triple = self._triple(message)
        try:
            await self._link.publish([triple])
        except FAILURES as exc:
            raise self._link.error("enqueue", exc) from exc

    async def enqueue_many(self, messages: Sequence[Outgoing]) -> None:
        """Publish many messages, then wait for all their confirms together.

        Raises:
            MessageTooLargeError: a body is larger than ``max_message_bytes`` (nothing sent).
            ConfigError: a queue's name is taken (see :meth:`check_queues`; nothing sent).
            DriverError: the broker failed; some messages may be stored.

        """
        triples = [self._triple(message) for message in messages]
        if not triples:
            return
        try:
            await self._link.publish(triples)
        except FAILURES as exc:
            raise self._link.error("enqueue_many", exc) from exc

    async def dequeue(
        self, queues: Sequence[str], *, limit: int, wait_seconds: float
    ) -> list[Delivery]:
        """Hand out up to ``limit`` received messages, earlier queues first.

        Raises:
            DriverError: the broker failed.

        """
        if not queues or limit <= 0:
            return []
        try:
            await self._consumers.start(queues)
            self._consumers.hint_prefetch(queues, limit)
            if wait_seconds <= 0:
                await self._consumers.settle(queues)
                return self._consumers.take(queues, limit)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_seconds
            taken = self._consumers.take(queues, limit)
            while not taken and (remaining := deadline - loop.time()) > 0:
                await self._consumers.wait(remaining)
                taken = self._consumers.take(queues, limit)
        except FAILURES as exc:
            raise self._link.error("dequeue", exc) from exc
        return taken

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Ack finished messages; a delivery whose channel closed is skipped and logged.

        The broker redelivers such a message (its ack cannot reach it); if the copy comes
        back to this driver it is acked instead of run again.
        """
        await self._settle.ack(deliveries)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Stop consuming; put unfinished and prefetched messages back at the front at once.

        Their next delivery reports the same ``delivery_count``. Consuming starts again
        on the next ``dequeue``.

        A stopping worker calls it: it waits at most :data:`SHUTDOWN_SECONDS`.

        Raises:
            DriverError: the broker failed or did not answer in time (the messages then come
                back when the connection closes, counted as a lost delivery).

        """
        await self._shutdown_call("release", self._settle.release(deliveries))

    async def _shutdown_call(self, operation: str, call: Coroutine[Any, Any, None]) -> None:
        """Await ``call`` for at most :data:`SHUTDOWN_SECONDS`.

        Raises:
            DriverError: the broker failed or did not answer in time (then later shutdown
                calls are skipped).

        """
        try:
            async with asyncio.timeout(SHUTDOWN_SECONDS):
                await call
        except TimeoutError as exc:
            self._unreachable = True
            raise DriverError(
                "rabbitmq",
                operation,
                f"no answer from the broker within {SHUTDOWN_SECONDS:g} s (stopping)",
            ) from exc
        except FAILURES as exc:
            raise self._link.error(operation, exc) from exc

    async def _replace(self, operation: str, delivery: Delivery, triple: Triple) -> None:
        try:
            await self._settle.replace(operation, delivery, triple)
        except FAILURES as exc:
            raise self._link.error(operation, exc) from exc

    async def retry(self, delivery: Delivery, message: Outgoing) -> None:
        """Publish the next attempt (ready or delayed) with a confirm, then ack ``delivery``.

        Raises:
            MessageTooLargeError: the new body is larger than ``max_message_bytes``.
            DriverError: the broker failed (nothing acked; call again).

        """
        await self._replace("retry", delivery, self._triple(message))

    async def dead_letter(self, delivery: Delivery, entry: DeadLetterEntry) -> None:
        """Publish ``entry`` to ``{queue}_dead`` with a confirm, then ack ``delivery``.

        Raises:
            DriverError: the broker failed (nothing acked; call again).

        """
        vt_ms = form.to_ms(delivery.visibility_timeout_seconds)
        await self._replace("dead_letter", delivery, self._dead.message(entry, vt_ms))

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Renew each delivery's lease (no broker call: RabbitMQ has no lease).

        A delivery is held until acked or until its channel closes; the lease only bounds
        how long a redelivered copy waits for it (:mod:`rabbitmq_redeliveries`).
        """
        for delivery in deliveries:
            if isinstance(delivery.receipt, Receipt):
                delivery.receipt.renew()

    async def maintain(self, queues: Sequence[str]) -> float | None:
        """Release due delayed messages of ``queues`` (see :mod:`rabbitmq_delay`).

        Returns:
            Seconds until the earliest delayed message seen is due, or ``None`` if none.

        Raises:
            DriverError: the broker failed.

        """
        soonest: float | None = None
        try:
            for queue in queues:
                due_in = await self._delayed.run(queue)
                if due_in is not None and (soonest is None or due_in < soonest):
                    soonest = due_in
        except FAILURES as exc:
            raise self._link.error("maintain", exc) from exc
        return soonest

    async def sizes(self, queue: str) -> QueueSizes:
        """Return ready, delayed, in-flight (this driver's) and dead-letter counts.

        Raises:
            DriverError: the broker failed.

        """
        try:
            await self._link.ensure(queue)
            await self._consumers.barrier()
            ready = await self._link.count(queue) + self._consumers.buffered(queue)
            delayed = await self._link.count(form.delayed_name(queue))
            dead = await self._link.count(form.dead_name(queue))
        except FAILURES as exc:
            raise self._link.error("sizes", exc) from exc
        return QueueSizes(ready, delayed, self._consumers.in_flight(queue), dead)

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead letters of ``queue``, oldest first.

        Raises:
            DriverError: the broker failed.

        """
        if limit <= 0:
            return []
        try:
            return await self._dead.entries(queue, limit=limit)
        except FAILURES as exc:
            raise self._link.error("dead_letters", exc) from exc

    async def requeue_dead(
        self,
        queue: str,
        task_ids: Sequence[str] | None = None,
        *,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> int:
        """Move dead letters (all, or those with the given task ids) to the back of the queue.

        ``rewrite(body)`` gives the body to store instead; an entry it raises for stays.
        Each copy is confirmed before its dead letter is acked (a crash may duplicate one,
        never lose it).

        Raises:
            DriverError: the broker failed.

        """
        try:
            return await self._dead.requeue(queue, task_ids, rewrite)
        except FAILURES as exc:
            raise self._link.error("requeue_dead", exc) from exc

    async def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; return how many there were.

        Raises:
            DriverError: the broker failed.

        """
        try:
            return await self._dead.purge(queue)
        except FAILURES as exc:
            raise self._link.error("purge_dead", exc) from exc

    async def _inspecting(self, operation: str, call: Coroutine[Any, Any, _T]) -> _T:
        try:
            return await call
        except FAILURES as exc:
            raise self._link.error(operation, exc) from exc

    async def queue_names(self) -> list[str]:
        """Return the catalogued queues holding a message (any state) or consumed, sorted.

        Raises:
            DriverError: the broker failed, or other readers held the lock too long.

        """
        return await self._inspecting("queue_names", self._inspect.queue_names())

    async def record_heartbeat(self, worker: WorkerInfo, *, ttl_seconds: float) -> None:
        """Record ``worker`` (``last_heartbeat`` = this machine's clock) for ``ttl_seconds``.

        Raises:
            DriverError: the broker failed.

        """
        call = self._inspect.record_heartbeat(worker, ttl_seconds=ttl_seconds)
        await self._inspecting("record_heartbeat", call)

    async def remove_worker(self, worker_id: str) -> None:
        """Record that ``worker_id`` stopped (nothing changes if it is unknown).

        A stopping worker calls it: it waits at most :data:`SHUTDOWN_SECONDS` (the record
        of a worker that could not say goodbye expires with its last heartbeat).

        Raises:
            DriverError: the broker failed or did not answer in time.

        """
        await self._shutdown_call("remove_worker", self._inspect.remove_worker(worker_id))

    async def live_workers(self) -> list[WorkerInfo]:
        """Return the workers whose last heartbeat is within its ttl (broker clock), by id.

        Raises:
            DriverError: the broker failed, or other readers held the lock too long.

        """
        return await self._inspecting("live_workers", self._inspect.live_workers())

    async def keep_completed(self, tasks: Sequence[CompletedTask]) -> None:
        """Store ``tasks`` in their ``{queue}_completed`` queues (newest kept), confirmed.

        Raises:
            DriverError: the broker failed.

        """
        if tasks:
            await self._inspecting("keep_completed", self._inspect.keep_completed(tasks))

    async def completed_tasks(self, queue: str, *, limit: int = 100) -> list[CompletedTask]:
        """Return up to ``limit`` kept completed tasks of ``queue``, newest first.

        Raises:
            DriverError: the broker failed, or other readers held the lock too long.

        """
        if limit <= 0:
            return []
        call = self._inspect.completed_tasks(queue, limit=limit)
        return await self._inspecting("completed_tasks", call)

    async def completed_count(self, queue: str) -> int:
        """Return how many completed tasks of ``queue`` are kept.

        Raises:
            DriverError: the broker failed, or other readers held the lock too long.

        """
        return await self._inspecting("completed_count", self._inspect.completed_count(queue))


def build(config: Config) -> RabbitMQDriver:
    """Return an unopened RabbitMQ driver for ``config.rabbitmq``."""
    return RabbitMQDriver(config.rabbitmq)
