"""Consumers feeding a local buffer, handed out by ``dequeue`` in queue-priority order.

One consumer per queue, all on one channel with ``basic.qos(prefetch_count)`` per consumer:
the broker pushes at most ``prefetch_count`` unacknowledged messages per queue (buffered
here or being run). ``take`` hands out buffered deliveries, earlier queues first, never
more than asked. A delivery whose channel closed since it arrived is dropped: the broker
has requeued it already.

Delivery count. RabbitMQ marks a message ``redelivered`` when a consumer's channel closed
without acking it (a crashed or disconnected worker) — but classic queues keep no count.
So a redelivered message is not handed out as it is: it is *re-stamped* — a copy with its
``x-asynctasq-count`` header one higher is published at the front of the queue
(priority 1, with a confirm), then the redelivered copy is acked. The copy's delivery
reports ``count + 1``, so every lost delivery is counted, however many times a worker
crashes. Releases never go through the ``redelivered`` path (see
:mod:`~asynctasq.drivers.rabbitmq_settle`), so they are not counted. A copy coming back to
the driver that lost it is handled by :mod:`~asynctasq.drivers.rabbitmq_redeliveries`: it
waits for (and is settled by) the run still in progress, is settled as that run was if it
already finished (acked, or its retry or dead letter stored then), or, if it was only
prefetched, is buffered again uncounted. A crashed process remembers nothing: then every
message it held — running or only prefetched — comes back counted, so keep
``prefetch_count`` near the worker's concurrency.

Recovery. aio-pika's robust channel re-registers the consumers (and QoS) after a
reconnection, and after the broker cancels a consumer (queue deleted). A watchdog checks
every ``watch_seconds`` that each consumer is still registered on an open channel while
the connection is up; one missing on two checks in a row is registered again, and a
channel that stays closed is replaced (FIELD-CASES C32).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import Any

from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    ConsumerTag,
)

from asynctasq.drivers import rabbitmq_format as form
from asynctasq.drivers.protocol import Delivery
from asynctasq.drivers.rabbitmq_acks import Acks, Receipt
from asynctasq.drivers.rabbitmq_link import FAILURES, Link
from asynctasq.drivers.rabbitmq_redeliveries import Outcome, Redeliveries
from asynctasq.errors import DriverError

logger = logging.getLogger("asynctasq.drivers.rabbitmq")

RESTAMP_RETRY_SECONDS = 1.0
"""Pause before a redelivered message whose re-stamp failed is given back to the broker."""

DEFAULT_VT_MS = 3_600_000

STOP_SECONDS = 5.0
"""The longest ``stop`` waits for one consumer's cancel, and for pending re-stamps."""

SETTLE_SECONDS = 0.5
"""How long ``settle`` waits for messages the broker reports ready for a consumer with room."""

RESTAMP_FAILURES: tuple[type[BaseException], ...] = (*FAILURES, DriverError)


class Consumers:
    """The consumers of one driver, their buffer and the deliveries handed out.

    Args:
        link: the driver's connection.
        prefetch_count: QoS per consumer (``RabbitMQConfig.prefetch_count``).
        watch_seconds: how often the watchdog checks the consumers.

    """

    def __init__(self, link: Link, prefetch_count: int, *, watch_seconds: float) -> None:
        self._link = link
        self.prefetch_count = prefetch_count
        self._watch_seconds = watch_seconds
        self._ids = form.MessageIds()
        self._channel: AbstractRobustChannel | None = None
        self._queues: dict[str, AbstractQueue] = {}
        self._tags: dict[str, ConsumerTag] = {}
        self._strikes: dict[str, int] = {}
        self._buffers: dict[str, deque[Delivery]] = {}
        self._handed: dict[str, set[Receipt]] = {}
        self._arrival: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self._restamps: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self.acks = Acks()
        self.redeliveries = Redeliveries()
        self._hinted = False

    # -- consuming -------------------------------------------------------------------

    async def start(self, queues: Sequence[str]) -> None:
        """Make sure each queue in ``queues`` has a consumer (declaring it if needed)."""
        if all(queue in self._tags for queue in queues):
            return
        async with self._lock:
            for queue in queues:
                if queue not in self._tags:
                    await self._consume(queue)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _consumer_channel(self) -> AbstractRobustChannel:
        if self._channel is None:
            await self._link.ready()
            channel = self._link.connection.channel(publisher_confirms=False)
            await channel.initialize(timeout=self._link.timeout_seconds)
            await channel.set_qos(prefetch_count=self.prefetch_count)
            self._channel = channel
        return self._channel

    async def _consume(self, queue: str) -> None:
        await self._link.ensure(queue)
        channel = await self._consumer_channel()
        declared = self._queues.get(queue)
        if declared is None or declared.channel is not channel:
            declared = await channel.declare_queue(
                queue, durable=True, arguments=form.MAIN_ARGUMENTS
            )
            self._queues[queue] = declared
        self._buffers.setdefault(queue, deque())
        self._handed.setdefault(queue, set())

        async def on_message(message: AbstractIncomingMessage) -> None:
            self._receive(queue, message)

        self._tags[queue] = await declared.consume(on_message)
        self._strikes[queue] = 0

    def _receive(self, queue: str, message: AbstractIncomingMessage) -> None:
        if not self.acks.track(message):
            return  # the channel closed already: the broker requeued it
        action = self.redeliveries.arrived(queue, message) if message.redelivered else "fresh"
        if action == "settle":  # its original finished while disconnected
            outcome = self.redeliveries.outcome(message)
            self._spawn(self._settle_copy(queue, message, outcome))
        elif action == "restamp":
            self._spawn(self._restamp(queue, message))
        if action != "fresh":
            return
        count = form.header_int(message, form.COUNT)
        lease = form.header_int(message, form.VT_MS, DEFAULT_VT_MS) / 1000
        receipt = Receipt(message, count, lease)
        self.redeliveries.buffered(receipt)
        self._buffers[queue].append(Delivery(queue, message.body, receipt, count + 1, lease))
        arrival, self._arrival = self._arrival, None
        if arrival is not None and not arrival.done():
            arrival.set_result(None)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._restamps.add(task)
        task.add_done_callback(self._restamps.discard)

    def _restamp_expired(self) -> None:
        for queue, message in self.redeliveries.expired():
            self._spawn(self._restamp(queue, message))

    async def _settle_copy(
        self, queue: str, message: AbstractIncomingMessage, outcome: Outcome
    ) -> None:
        """Settle the copy of a task finished while disconnected as its original was.

        ``outcome`` ``None``: ack it. Otherwise publish the retry or dead letter first
        (confirmed); if that fails, the outcome is remembered again and the copy given
        back, so it is settled the same way when it comes back.
        """
        operation = "ack"
        if outcome is not None:
            operation, triple = outcome
            try:
                await self._link.publish([triple])
            except RESTAMP_FAILURES as exc:
                logger.warning(
                    "could not store the %s of a task on queue %r finished while "
                    "disconnected (%s); giving its copy back to try again",
                    operation,
                    queue,
                    exc,
                )
                self.redeliveries.remember(message.message_id or None, outcome)
                await asyncio.sleep(RESTAMP_RETRY_SECONDS)
                with contextlib.suppress(*FAILURES):
                    self.acks.forget(message)
                    await message.nack(requeue=True)
                return
        if await self.acks.acknowledge([message]):
            logger.warning(
                "the redelivered copy of a task finished on queue %r while disconnected "
                "could not be acked; it comes back",
                queue,
            )
            self.redeliveries.remember(message.message_id or None, None)  # stored: ack it
        else:
            logger.info(
                "settled the redelivered copy of a task finished on queue %r while "
                "disconnected (%s)",
                queue,
                operation,
            )

    async def _restamp(self, queue: str, message: AbstractIncomingMessage) -> None:
        """Store a copy counting the lost delivery, at the front; then drop the original."""
        count = form.header_int(message, form.COUNT) + 1
        copy = form.copy_of(message, self._ids.next(), count=count, priority=form.FRONT)
        try:
            await self._link.publish([(queue, queue, copy)])
        except RESTAMP_FAILURES as exc:
            logger.warning(
                "could not count a redelivery on queue %r (%s); giving it back", queue, exc
            )
            await asyncio.sleep(RESTAMP_RETRY_SECONDS)
            with contextlib.suppress(*FAILURES):
                self.acks.forget(message)
                await message.nack(requeue=True)
            return
        logger.warning(
            "task %s on queue %r came back redelivered: the worker holding it was lost (it may "
            "not have started; RabbitMQ cannot tell); counted as delivery %d",
            form.task_id_of(message) or "?",
            queue,
            count + 1,
        )
        await self.acks.acknowledge([message])

    async def stop(self) -> list[Delivery]:
        """Cancel every consumer and return what was buffered and is still held, in order.

        The consumers start again on the next :meth:`start`.
        """
        async with self._lock:
            watchdog, self._watchdog = self._watchdog, None
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.gather(watchdog, return_exceptions=True)
            connected = self._link.connected  # if not, the broker dropped them already
            for queue, tag in list(self._tags.items()):
                with contextlib.suppress(*FAILURES):
                    async with asyncio.timeout(STOP_SECONDS if connected else 0):
                        await self._queues[queue].cancel(tag)
            self._tags.clear()
            for _ in range(3):  # deliveries that arrived before the cancel-ok
                await asyncio.sleep(0)
            if self._restamps:
                await asyncio.wait(self._restamps, timeout=STOP_SECONDS if connected else 0)
            leftovers = []
            for buffer in self._buffers.values():
                for delivery in buffer:
                    lost = delivery.receipt.lost
                    self.redeliveries.unbuffered(delivery.receipt, lost=lost)
                    if not lost:
                        leftovers.append(delivery)
            for buffer in self._buffers.values():
                buffer.clear()
        return leftovers

    async def close(self, *, graceful: bool = True) -> None:
        """Stop the watchdog and close the consumer channel (call :meth:`stop` first).

        Args:
            graceful: close the channel on the broker (waits for its answer, at most the
                operation timeout). False (the broker does not answer): leave the channel
                to the connection's close.

        """
        watchdog, self._watchdog = self._watchdog, None
        pending = [*self._restamps, *([watchdog] if watchdog is not None else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        channel, self._channel = self._channel, None
        self._queues.clear()
        self._tags.clear()
        if channel is not None and graceful:
            with contextlib.suppress(*FAILURES):
                async with asyncio.timeout(self._link.timeout_seconds):
                    await channel.close()

    # -- handing out -----------------------------------------------------------------

    def take(self, queues: Sequence[str], limit: int) -> list[Delivery]:
        """Hand out up to ``limit`` buffered deliveries, earlier queues first."""
        self._restamp_expired()
        taken: list[Delivery] = []
        for queue in queues:
            buffer = self._buffers.get(queue)
            while buffer and len(taken) < limit:
                delivery = buffer.popleft()
                if delivery.receipt.lost:
                    self.redeliveries.unbuffered(delivery.receipt, lost=True)
                    continue
                self._handed[queue].add(delivery.receipt)
                self.redeliveries.handed(delivery.receipt)
                taken.append(delivery)
            if len(taken) >= limit:
                break
        return taken

    async def wait(self, seconds: float) -> None:
        """Return when a delivery arrives, or after ``seconds``."""
        if self._arrival is None:
            self._arrival = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await asyncio.shield(self._arrival)

    async def barrier(self) -> None:
        """Make every message the broker pushed before now reach the buffer.

        ``basic.qos`` is answered by the channel itself, after the deliveries it already
        sent; the few loop turns let their callbacks run.
        """
        if self._channel is None or not self._tags:
            return
        await self._channel.set_qos(prefetch_count=self.prefetch_count)
        for _ in range(3):
            await asyncio.sleep(0)

    async def settle(self, queues: Sequence[str]) -> None:
        """Let what the broker pushed, or holds ready for a consumer with room, arrive.

        For ``dequeue(wait_seconds=0)``: "what is ready now" includes messages the broker
        reports ready while their consumer has room (they are on their way), up to
        :data:`SETTLE_SECONDS`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        while True:
            await self.barrier()
            coming = [queue for queue in queues if self.credit(queue) > 0]
            counts = [await self._link.count(queue) for queue in coming]
            remaining = deadline - loop.time()
            if not any(counts) or remaining <= 0:
                return
            await self.wait(min(remaining, 0.05))

    def hint_prefetch(self, queues: Sequence[str], limit: int) -> None:
        """Warn once if ``prefetch_count`` is far from what the worker asks for (``limit``).

        Too small: fewer tasks run at once than the worker could. Too large: messages wait
        in this buffer, and if the process crashes they come back with an attempt counted.
        """
        if self._hinted:
            return
        self._hinted = True
        prefetch = self.prefetch_count
        if limit > prefetch * len(queues):
            logger.warning(
                "rabbitmq.prefetch_count is %d: at most %d message(s) per queue are held at "
                "once, but %d were asked for; set ASYNCTASQ_RABBITMQ_PREFETCH_COUNT near the "
                "worker's concurrency to run more tasks in parallel",
                prefetch,
                prefetch,
                limit,
            )
        elif prefetch > limit:
            logger.warning(
                "rabbitmq.prefetch_count is %d, more than the %d messages asked for: the rest "
                "wait in this worker, and if its process dies they come back with an attempt "
                "counted although they never started (a task on its last attempt is then "
                "dead-lettered as WorkerLostError); a prefetch_count equal to the worker's "
                "concurrency avoids it",
                prefetch,
                limit,
            )

    def credit(self, queue: str) -> int:
        """Return how many more messages the broker may push to ``queue``'s consumer."""
        if queue not in self._tags:
            return 0
        held = len(self._buffers.get(queue, ())) + self.in_flight(queue)
        return max(0, self.prefetch_count - held)

    def holds(self, queue: str, receipt: Receipt) -> bool:
        """Return whether ``receipt`` was handed out, is unsettled and its channel is open."""
        handed = self._handed.get(queue)
        return handed is not None and receipt in handed and not receipt.lost

    def handed_out(self, queue: str, receipt: Receipt) -> bool:
        """Return whether ``receipt`` was handed out and not settled (even if lost)."""
        return receipt in self._handed.get(queue, ())

    def forget(self, queue: str, receipt: Receipt) -> None:
        """Stop tracking a handed-out delivery (settled, or found lost)."""
        handed = self._handed.get(queue)
        if handed is not None:
            handed.discard(receipt)
        self.redeliveries.settled(receipt)

    def buffered(self, queue: str) -> int:
        """Return how many live deliveries of ``queue`` wait in the buffer."""
        return sum(1 for d in self._buffers.get(queue, ()) if not d.receipt.lost)

    def buffered_total(self) -> int:
        """Return how many live deliveries wait in the buffer, all queues."""
        return sum(self.buffered(queue) for queue in self._buffers)

    def in_flight(self, queue: str) -> int:
        """Return how many live deliveries of ``queue`` are handed out and unsettled."""
        return sum(1 for receipt in self._handed.get(queue, ()) if not receipt.lost)

    def unsettled(self) -> int:
        """Return how many handed-out deliveries (all queues) are still held."""
        return sum(self.in_flight(queue) for queue in self._handed)

    # -- watchdog --------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._watch_seconds)
            try:
                async with self._lock:
                    await self._check()
            except Exception as exc:  # the watchdog itself must keep running
                logger.warning("consumer check failed: %s", exc)

    async def _check(self) -> None:
        self._restamp_expired()
        connection = self._link.connection
        if not connection.connected.is_set() or self._channel is None:
            return  # aio-pika is reconnecting
        underlay: Any = None
        with contextlib.suppress(*FAILURES):
            async with asyncio.timeout(self._link.timeout_seconds):
                underlay = await self._channel.get_underlay_channel()
        if underlay is None or underlay.is_closed:
            self._strikes[""] = self._strikes.get("", 0) + 1
            if self._strikes[""] >= 2:
                logger.warning("the consumer channel stayed closed; opening a new one")
                await self._replace_channel()
            return
        self._strikes[""] = 0
        for queue, tag in list(self._tags.items()):
            if tag in underlay.consumers:
                self._strikes[queue] = 0
                continue
            self._strikes[queue] = self._strikes.get(queue, 0) + 1
            if self._strikes[queue] >= 2:
                logger.warning("the consumer of queue %r was not restored; consuming again", queue)
                with contextlib.suppress(*FAILURES):
                    await self._queues[queue].cancel(tag)
                self._link.forget(queue)
                await self._consume(queue)

    async def _replace_channel(self) -> None:
        old, self._channel = self._channel, None
        queues = list(self._tags)
        self._tags.clear()
        self._queues.clear()
        if old is not None:
            with contextlib.suppress(*FAILURES):
                await old.close()
        for queue in queues:
            await self._consume(queue)
