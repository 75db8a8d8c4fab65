"""The monitoring queues' plumbing: declare once, publish with confirms, peek under a lock.

AMQP 0-9-1 cannot read a queue without taking its messages, so a read *peeks*: it consumes
the whole queue on a channel of its own without acking, and closing that channel puts every
message back in its place (RabbitMQ requeues to the original position), in order, with
its remaining per-message TTL. A reader may ack (delete) the records it found superseded.
Only the monitoring queues (:mod:`rabbitmq_records`) are ever peeked here, never a task
queue, so consumers of tasks are not affected.

While a peek holds the messages, another peek of the same queue would see none of them.
Readers therefore take a lock first: the exclusive, non-durable queue
``{exchange}.reader-lock``. RabbitMQ lets one connection declare it at a time (others get
``RESOURCE_LOCKED`` and try again, every 5 to 100 ms) and deletes it when its connection
dies, so a crashed reader never keeps the lock. Inside one driver an ``asyncio.Lock``
serializes readers (an exclusive queue does not exclude its own connection). Writers take
no lock: messages published during a peek land behind the held ones.

A queue bounded with ``x-max-length`` counts only ready messages: while a peek holds them,
writers may add more than the bound; RabbitMQ drops the oldest again when the peek ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiormq.abc
from aio_pika import Message
from aio_pika.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed
from aiormq.exceptions import ChannelLockedResource

from asynctasq.drivers import rabbitmq_records as rec
from asynctasq.drivers.rabbitmq_link import Link

logger = logging.getLogger("asynctasq.drivers.rabbitmq")

QUIET_SECONDS = 0.05
"""A peek stops waiting when no message arrived for this long (expired ones never come)."""

LOCK_PAUSES = (0.005, 0.01, 0.02, 0.05, 0.1)
"""Pauses between attempts to take the reader lock (the last one repeats)."""


class Held:
    """The messages a peek holds, oldest first; :meth:`drop` deletes one for good."""

    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.messages: list[aiormq.abc.DeliveredMessage] = []
        self._channel = channel

    async def drop(self, message: aiormq.abc.DeliveredMessage) -> None:
        """Ack ``message``: it is deleted instead of going back when the peek ends."""
        if message.delivery_tag is not None:
            await self._channel.basic_ack(message.delivery_tag)


class MonitorQueues:
    """Declares, writes and peeks the monitoring queues of one driver.

    Args:
        link: the driver's connection.

    """

    def __init__(self, link: Link) -> None:
        self._link = link
        self._declared: set[str] = set()
        self._readers = asyncio.Lock()

    async def publish(
        self, name: str, arguments: dict[str, Any], messages: Sequence[Message]
    ) -> None:
        """Publish ``messages`` to queue ``name`` (declared with ``arguments`` first, once).

        If the queue was deleted meanwhile, it is declared again and the returned messages
        published once more.

        Raises:
            Exception: what aio-pika raised (the caller translates it).

        """
        await self._declare(name, arguments)
        returned = await self._link.publish_direct(name, messages)
        if returned:
            self._declared.discard(name)
            await self._declare(name, arguments)
            if await self._link.publish_direct(name, returned):
                raise ChannelNotFoundEntity(f"queue {name!r} vanished while publishing to it")

    async def _declare(self, name: str, arguments: dict[str, Any]) -> None:
        if name in self._declared:
            return
        try:
            async with self._link.raw_channel() as channel:
                await channel.queue_declare(
                    name, durable=True, arguments=arguments, timeout=self._link.timeout_seconds
                )
        except ChannelPreconditionFailed as exc:
            logger.warning(
                "queue %r exists with other arguments than %s; using it as it is (%s)",
                name,
                arguments,
                exc,
            )
        self._declared.add(name)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """Hold the reader lock (see the module doc) for the block.

        Raises:
            TimeoutError: other readers held it for the whole operation timeout.
            Exception: what aiormq raised.

        """
        name = rec.lock_name(self._link.config.exchange_name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._link.timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                await self._readers.acquire()
        except TimeoutError as exc:
            raise TimeoutError(f"other readers of this driver took {name!r} too long") from exc
        try:
            attempt = 0
            while not await self._try_lock(name):
                pause = LOCK_PAUSES[min(attempt, len(LOCK_PAUSES) - 1)]
                if loop.time() + pause > deadline:
                    raise TimeoutError(
                        f"other readers held {name!r} for {self._link.timeout_seconds:g} s"
                    )
                await asyncio.sleep(pause)
                attempt += 1
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # the broker deletes it with the connection
                    async with self._link.raw_channel() as channel:
                        await channel.queue_delete(name, timeout=self._link.timeout_seconds)
        finally:
            self._readers.release()

    async def _try_lock(self, name: str) -> bool:
        try:
            async with self._link.raw_channel() as channel:
                await channel.queue_declare(
                    name, exclusive=True, durable=False, timeout=self._link.timeout_seconds
                )
        except ChannelLockedResource:
            return False
        return True

    @contextlib.asynccontextmanager
    async def peek(self, name: str) -> AsyncIterator[Held]:
        """Hold every ready message of queue ``name`` for the block (none if it is missing).

        The messages go back to their places when the block ends, but those dropped.
        Take :meth:`reading` first.

        Raises:
            Exception: what aiormq raised (the caller translates it).

        """
        async with self._link.raw_channel() as channel:
            held = Held(channel)
            try:
                declared = await channel.queue_declare(
                    name, passive=True, timeout=self._link.timeout_seconds
                )
            except ChannelNotFoundEntity:
                expected = 0
            else:
                expected = int(declared.message_count or 0)
            if expected:
                held.messages = await self._collect(channel, name, expected)
            yield held

    async def _collect(
        self, channel: aiormq.abc.AbstractChannel, name: str, expected: int
    ) -> list[aiormq.abc.DeliveredMessage]:
        """Consume ``name`` without acking until ``expected`` arrived or it went quiet."""
        received: list[aiormq.abc.DeliveredMessage] = []
        arrived = asyncio.Event()

        async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
            received.append(message)
            arrived.set()

        await channel.basic_qos(prefetch_count=0, timeout=self._link.timeout_seconds)
        await channel.basic_consume(name, on_message, timeout=self._link.timeout_seconds)
        while len(received) < expected:
            arrived.clear()
            try:
                async with asyncio.timeout(QUIET_SECONDS):
                    await arrived.wait()
            except TimeoutError:
                break
        return sorted(received, key=lambda message: message.delivery_tag or 0)

    async def counts(self, names: Sequence[str]) -> dict[str, tuple[int, int] | None]:
        """Return ``(ready messages, consumers)`` of each queue; ``None`` if it is missing.

        Raises:
            Exception: what aiormq raised (the caller translates it).

        """
        found: dict[str, tuple[int, int] | None] = {}
        pending = list(names)
        while pending:
            async with self._link.raw_channel() as channel:
                while pending:
                    try:
                        declared = await channel.queue_declare(
                            pending[0], passive=True, timeout=self._link.timeout_seconds
                        )
                    except ChannelNotFoundEntity:
                        found[pending.pop(0)] = None
                        break  # the broker closed the channel: open another
                    ready, consumers = declared.message_count, declared.consumer_count
                    found[pending.pop(0)] = (int(ready or 0), int(consumers or 0))
        return found
