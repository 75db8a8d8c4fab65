"""Acknowledging consumed messages in as few frames as possible, and the driver's receipts.

RabbitMQ's ``basic.ack(multiple=True)`` acks every unacked delivery of a channel up to a
tag. The driver tracks, per channel, the tags it received and has not settled, so a batch
of acks becomes one ``multiple`` frame for the longest run with nothing else unsettled
below it, plus one frame for each of the rest (written together, one wait). Fewer frames
means less work for the broker, which is what bounds a drain.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import aiormq.abc
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError

from asynctasq.drivers.rabbitmq_link import FAILURES


class Receipt:
    """The driver's hold on one delivery: the received message, its count and its lease.

    RabbitMQ has no lease; the driver keeps one only to decide how long a redelivered copy
    of this message waits for this delivery to settle (see :mod:`rabbitmq_redeliveries`):
    ``renewed_at`` (monotonic seconds) moves on with each ``extend``, from any thread.
    """

    __slots__ = ("count", "lease_seconds", "message", "renewed_at")

    def __init__(self, message: AbstractIncomingMessage, count: int, lease_seconds: float) -> None:
        self.message = message
        self.count = count
        self.lease_seconds = lease_seconds
        self.renewed_at = time.monotonic()

    def renew(self) -> None:
        """Start the lease again (``extend``)."""
        self.renewed_at = time.monotonic()

    @property
    def leased(self) -> bool:
        """True until ``lease_seconds`` passed since the delivery or its last renewal."""
        return time.monotonic() < self.renewed_at + self.lease_seconds

    @property
    def lost(self) -> bool:
        """True once the channel it came on has closed (the broker requeued the message)."""
        try:
            self.message.channel  # noqa: B018 -- the property raises once the channel closed
        except ChannelInvalidStateError:
            return True
        return False


class Acks:
    """The unsettled delivery tags of each consumer channel, and acking them."""

    def __init__(self) -> None:
        self._unacked: dict[aiormq.abc.AbstractChannel, set[int]] = {}

    def track(self, message: AbstractIncomingMessage) -> bool:
        """Note a received message; return False if its channel closed already."""
        try:
            self._unacked.setdefault(message.channel, set()).add(message.delivery_tag or 0)
        except ChannelInvalidStateError:
            return False
        return True

    def forget(self, message: AbstractIncomingMessage) -> None:
        """Stop tracking a message settled another way (e.g. nacked)."""
        try:
            self._unacked.get(message.channel, set()).discard(message.delivery_tag or 0)
        except ChannelInvalidStateError:
            return

    async def acknowledge(self, messages: Sequence[AbstractIncomingMessage]) -> int:
        """Ack consumed messages in as few frames as possible; return how many were lost.

        Per channel, the longest run of this channel's unacked delivery tags that are all
        being acked goes in one ``basic.ack(multiple=True)``; the rest one frame each, all
        written before the last one is awaited. A message whose channel closed cannot be
        acked (the broker requeued it): it is counted as lost.
        """
        lost = 0
        tags: dict[aiormq.abc.AbstractChannel, set[int]] = {}
        for message in messages:
            try:
                tags.setdefault(message.channel, set()).add(message.delivery_tag or 0)
            except ChannelInvalidStateError:
                lost += 1
        for channel, acking in tags.items():
            unacked = self._unacked.setdefault(channel, set())
            others = unacked - acking
            cut = min(others) if others else None
            run = [tag for tag in acking if cut is None or tag < cut]
            singles = sorted(tag for tag in acking if cut is not None and tag > cut)
            try:
                if run:
                    await channel.basic_ack(max(run), multiple=len(run) > 1, wait=not singles)
                for number, tag in enumerate(singles, 1):
                    await channel.basic_ack(tag, wait=number == len(singles))
            except FAILURES:
                lost += len(acking)
            unacked -= acking
        for channel in [channel for channel in self._unacked if channel.is_closed]:
            del self._unacked[channel]
        return lost
