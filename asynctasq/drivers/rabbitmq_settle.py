"""Settling deliveries on RabbitMQ: ack, release, and replace (retry / dead-letter).

Every settlement acts on the message this driver still holds for the delivery: its own,
or — when its channel was lost — the redelivered copy parked for it
(:mod:`rabbitmq_redeliveries`). Neither held: the broker has the message again and gives
it to a consumer; the outcome (ack, retry or dead letter) is remembered, so a copy that
comes back to this driver is settled that way instead of run (one that goes to another
worker runs there, counted).

* ``replace``: publish the next attempt (or the dead letter) with a confirm, *then* ack the
  old delivery — a crash in between may duplicate the task, never lose it;
* ``release``: cancel the consumers, publish copies of the unfinished and the buffered
  messages at the front of their queues (priority 1, same count, confirmed), then ack the
  originals. Not ``basic.nack(requeue)``: that marks a message redelivered, which would be
  counted as a crash and cost the task an attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aio_pika import Message
from aio_pika.abc import AbstractIncomingMessage

from asynctasq.drivers import rabbitmq_format as form
from asynctasq.drivers.protocol import Delivery
from asynctasq.drivers.rabbitmq_acks import Receipt
from asynctasq.drivers.rabbitmq_consume import Consumers
from asynctasq.drivers.rabbitmq_link import Link

logger = logging.getLogger("asynctasq.drivers.rabbitmq")

Triple = tuple[str, str, Message]
"""``(queue, routing key, message)`` as :meth:`Link.publish` takes them."""


class Settlement:
    """The driver's settling calls over its link and consumers.

    Args:
        link: the driver's connection.
        consumers: the driver's consumers (holding the deliveries and parked copies).

    """

    def __init__(self, link: Link, consumers: Consumers) -> None:
        self._link = link
        self._consumers = consumers
        self._ids = form.MessageIds()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Ack finished messages (their parked copies for lost ones); log what was lost.

        A lost delivery without a copy here is remembered: its copy, should it come back to
        this driver, is acked on arrival instead of run again.
        """
        messages = []
        for delivery in deliveries:
            receipt: Receipt = delivery.receipt
            message = self._settling(delivery)
            if message is not None:
                messages.append(message)
            elif receipt.lost and self._consumers.handed_out(delivery.queue, receipt):
                self._consumers.redeliveries.finished_while_lost(receipt)
            self._consumers.forget(delivery.queue, receipt)
        acks = self._consumers.acks
        lost = len(deliveries) - len(messages) + await acks.acknowledge(messages)
        if lost:
            logger.warning(
                "ack: %d of %d deliveries were lost with their channel; the broker redelivers them",
                lost,
                len(deliveries),
            )

    def _settling(self, delivery: Delivery) -> AbstractIncomingMessage | None:
        """Return the message to settle ``delivery`` on: its own, or its parked copy.

        ``None`` when neither is held (the lease was lost and no copy came back here).
        """
        receipt: Receipt = delivery.receipt
        if self._consumers.holds(delivery.queue, receipt):
            return receipt.message
        if self._consumers.handed_out(delivery.queue, receipt):
            return self._consumers.redeliveries.claim(receipt)
        return None

    async def give_back(self, held: Sequence[tuple[Delivery, AbstractIncomingMessage]]) -> None:
        """Store copies at the front of their queues (same count, confirmed), then ack."""
        if not held:
            return
        copies = []
        for delivery, message in held:
            count = delivery.receipt.count
            amqp = form.copy_of(message, self._ids.next(), count=count, priority=form.FRONT)
            copies.append((delivery.queue, delivery.queue, amqp))
        await self._link.publish(copies)
        messages = [message for _, message in held]
        if lost := await self._consumers.acks.acknowledge(messages):
            logger.warning("%d released messages could not be acked; they come back", lost)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Stop consuming; put unfinished and prefetched messages back at the front at once.

        Their next delivery reports the same ``delivery_count``. Consuming starts again
        on the next ``dequeue``.

        Raises:
            Exception: what aio-pika raised (the driver translates it); the messages then
                come back when the connection closes, counted as a lost delivery.

        """
        if not self._link.connected:
            raise ConnectionError(
                "the connection is down: the broker requeues the messages it had sent"
            )
        leftovers = await self._consumers.stop()
        held = [(d, m) for d in deliveries if (m := self._settling(d)) is not None]
        await self.give_back([*held, *((d, d.receipt.message) for d in leftovers)])
        for delivery in deliveries:
            self._consumers.forget(delivery.queue, delivery.receipt)
        if leftovers:
            logger.info(
                "gave %d prefetched messages (never handed out) back to the front of their "
                "queues, uncounted",
                len(leftovers),
            )

    async def replace(self, operation: str, delivery: Delivery, triple: Triple) -> None:
        """Publish ``triple`` (confirmed), then ack ``delivery``.

        A delivery lost with its channel (no copy held here yet) is not stored now: the
        broker delivers its copy again, and ``triple`` is published for that copy when it
        arrives here (instead of running the task again).

        Raises:
            Exception: what aio-pika raised while publishing (nothing acked; call again).

        """
        receipt: Receipt = delivery.receipt
        message = self._settling(delivery)
        if message is None:
            remembered = self._consumers.handed_out(delivery.queue, receipt)
            if remembered:
                outcome = (operation, triple)
                self._consumers.redeliveries.finished_while_lost(receipt, outcome)
            logger.warning(
                "%s: the delivery on queue %r was lost with its channel; %s",
                operation,
                delivery.queue,
                "stored when the broker delivers it to this worker again (another worker "
                "would run it again, counted)"
                if remembered
                else "not stored",
            )
            self._consumers.forget(delivery.queue, receipt)
            return
        try:
            await self._link.publish([triple])
        except BaseException:
            if message is not receipt.message:  # keep the parked copy for the next try
                self._consumers.redeliveries.park(delivery.queue, receipt, message)
            raise
        if await self._consumers.acks.acknowledge([message]):
            logger.warning(
                "%s: stored, but the old delivery on queue %r was lost before its ack; "
                "the broker redelivers it (the task may run twice)",
                operation,
                delivery.queue,
            )
        self._consumers.forget(delivery.queue, receipt)
