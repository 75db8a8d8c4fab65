"""Raw ceilings for ``rabbitmq_bench.py``: plain aio-pika doing the same broker moves.

Each function measures what the same RabbitMQ allows one Python process for one pattern,
with no queue library in between (persistent messages of the same size, a durable queue):

* :func:`publish_single` — one publish with a publisher confirm, awaited one at a time;
* :func:`publish_batched` — 100 publishes sent together, then their 100 confirms awaited;
* :func:`consume_ack` — a consumer with ``prefetch`` acking each message in its callback
  (the consume-and-ack ceiling of a drain), timed from the first message to the last; or,
  as a side figure, acking once per 100 messages with ``multiple`` (what batched acks allow);
* :func:`publish_to_consume_ms` — a paced publish seen by a consumer on another
  connection (the least a dispatch-to-start hand-over can cost).

Rates are messages per second; latencies milliseconds.
"""

from __future__ import annotations

import asyncio
import time

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

BATCH = 100


def message(payload: bytes) -> aio_pika.Message:
    """Return a persistent message carrying ``payload``."""
    return aio_pika.Message(payload, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


async def declare(channel: AbstractChannel, queue: str) -> None:
    """Declare ``queue`` durable (as a raw user would)."""
    await channel.declare_queue(queue, durable=True)


async def publish_single(channel: AbstractChannel, queue: str, payload: bytes, count: int) -> float:
    """Return the rate of ``count`` confirmed publishes awaited one at a time (messages/s)."""
    exchange = channel.default_exchange
    started = time.perf_counter()
    for _ in range(count):
        await exchange.publish(message(payload), queue)
    return count / (time.perf_counter() - started)


async def publish_batched(
    channel: AbstractChannel, queue: str, payload: bytes, rounds: int
) -> float:
    """Return the rate of ``rounds`` batches of ``BATCH`` publishes, confirms awaited together."""
    exchange = channel.default_exchange
    started = time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*(exchange.publish(message(payload), queue) for _ in range(BATCH)))
    return rounds * BATCH / (time.perf_counter() - started)


async def fill(channel: AbstractChannel, queue: str, payload: bytes, count: int) -> None:
    """Publish ``count`` messages to ``queue`` in confirmed batches of 1000 (untimed)."""
    exchange = channel.default_exchange
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        await asyncio.gather(*(exchange.publish(message(payload), queue) for _ in range(size)))


async def consume_ack(
    url: str, queue: str, payload: bytes, count: int, prefetch: int, every: int = 1
) -> float:
    """Fill ``queue``, then consume and ack ``count`` messages; return first-to-last rate.

    ``every`` > 1 acks once per that many messages (``multiple=True``) instead of each one.
    """
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await declare(channel, queue)
        await fill(channel, queue, payload, count)
        await channel.set_qos(prefetch_count=prefetch)
        times: list[float] = []
        done = asyncio.get_running_loop().create_future()

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            times.append(time.perf_counter())
            if len(times) % every == 0 or len(times) == count:
                await incoming.ack(multiple=every > 1)
            if len(times) == count and not done.done():
                done.set_result(None)

        declared = await channel.get_queue(queue)
        tag = await declared.consume(on_message)
        await asyncio.wait_for(done, 120)
        await declared.cancel(tag)
        return (count - 1) / (times[-1] - times[0])
    finally:
        await connection.close()


async def publish_to_consume_ms(
    url: str, queue: str, payload: bytes, count: int, interval: float
) -> list[float]:
    """Publish ``count`` stamped messages every ``interval`` s; return publish-to-callback ms."""
    consumer, producer = await aio_pika.connect(url), await aio_pika.connect(url)
    try:
        receiving = await consumer.channel()
        await declare(receiving, queue)
        await receiving.set_qos(prefetch_count=10)
        seen: list[float] = []
        sent_at: dict[bytes, float] = {}
        done = asyncio.get_running_loop().create_future()

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            now = time.perf_counter()
            await incoming.ack()
            seen.append((now - sent_at[incoming.body[:12]]) * 1000.0)
            if len(seen) == count and not done.done():
                done.set_result(None)

        declared = await receiving.get_queue(queue)
        await declared.consume(on_message)
        sending = await producer.channel()
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for number in range(count):
            pause = begin + number * interval - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            head = b"%012d" % number
            sent_at[head] = time.perf_counter()
            await sending.default_exchange.publish(message(head + payload[12:]), queue)
        await asyncio.wait_for(done, 60)
        return seen
    finally:
        await producer.close()
        await consumer.close()
