"""Raw ceilings for ``redis_bench.py``: plain redis-py asyncio doing the same Redis moves.

Each function measures what the same Redis allows from one Python process for one
pattern of the queue, with no queue library in between:

* :func:`lpush_single` — one ``LPUSH`` per message, awaited one at a time (single dispatch);
* :func:`lpush_pipelined` — 100 ``LPUSH`` commands per pipeline (batch dispatch);
* :func:`claim_ack` — ``RPOP key 100`` then one pipeline with ``ZADD`` of the 100 to a
  processing set and ``ZREM`` of them (claim + ack of a batch in two round trips);
* :func:`push_to_pop_ms` — a paced ``LPUSH`` seen by another connection blocked in
  ``BLMOVE`` ready -> processing, in the same process;
* :func:`push_to_pop_ms_two_processes` — the same with the consumer in its own process (the
  least a push-to-start hand-over between a dispatcher and a worker process can cost).

Rates are messages per second; latencies milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time

from redis.asyncio import Redis

BATCH = 100


async def lpush_single(client: Redis, key: str, payload: bytes, count: int) -> float:
    """Return the rate of ``count`` awaited single ``LPUSH`` calls (messages/s)."""
    started = time.perf_counter()
    for _ in range(count):
        await client.lpush(key, payload)
    return count / (time.perf_counter() - started)


async def lpush_pipelined(client: Redis, key: str, payload: bytes, rounds: int) -> float:
    """Return the rate of ``rounds`` pipelines of ``BATCH`` single ``LPUSH`` (messages/s)."""
    started = time.perf_counter()
    for _ in range(rounds):
        async with client.pipeline(transaction=False) as pipe:
            for _ in range(BATCH):
                pipe.lpush(key, payload)
            await pipe.execute()
    return rounds * BATCH / (time.perf_counter() - started)


async def lpush_variadic(client: Redis, key: str, payload: bytes, rounds: int) -> float:
    """Return the rate of ``rounds`` single ``LPUSH key v1 .. v100`` calls (messages/s)."""
    values = [payload] * BATCH
    started = time.perf_counter()
    for _ in range(rounds):
        await client.lpush(key, *values)
    return rounds * BATCH / (time.perf_counter() - started)


async def fill(client: Redis, key: str, payload: bytes, count: int) -> None:
    """Push ``count`` distinct elements of ``len(payload)`` bytes (untimed)."""
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        await client.lpush(key, *(_distinct(payload, start + i) for i in range(size)))


def _distinct(payload: bytes, number: int) -> bytes:
    head = b"%d:" % number  # zset members must differ, as the driver's element ids make them
    return head + payload[len(head) :]


async def claim_ack(client: Redis, key: str, processing: str, payload: bytes, count: int) -> float:
    """Fill ``key`` with ``count`` elements, then time claiming and acking them in batches.

    Returns:
        Messages per second over the timed loop (fill excluded).
    """
    await fill(client, key, payload, count)
    done = 0
    started = time.perf_counter()
    while done < count:
        items: list[bytes] = await client.rpop(key, BATCH) or []  # type: ignore[assignment]
        if not items:
            break
        deadline = time.time() + 60.0
        async with client.pipeline(transaction=False) as pipe:
            pipe.zadd(processing, dict.fromkeys(items, deadline))
            pipe.zrem(processing, *items)
            await pipe.execute()
        done += len(items)
    return done / (time.perf_counter() - started)


async def push_to_pop_ms(
    url: str, key: str, processing: str, payload: bytes, count: int, interval: float
) -> list[float]:
    """Push ``count`` messages every ``interval`` s; return each one's push-to-pop time (ms).

    A second connection waits in ``BLMOVE key processing RIGHT LEFT``; the push time travels
    in the first 8 bytes of the payload.
    """
    producer, consumer = Redis.from_url(url), Redis.from_url(url)
    latencies: list[float] = []

    async def consume() -> None:
        while len(latencies) < count:
            item = await consumer.blmove(key, processing, 5, "RIGHT", "LEFT")
            if item is None:
                return
            seen = time.time()
            assert isinstance(item, bytes)
            (sent,) = struct.unpack_from("d", item)
            latencies.append((seen - sent) * 1000.0)

    try:
        await consumer.ping()
        await producer.ping()
        waiter = asyncio.create_task(consume())
        await asyncio.sleep(0.05)  # the consumer is blocked in BLMOVE
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for number in range(count):
            pause = begin + number * interval - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            await producer.lpush(key, struct.pack("d", time.time()) + payload[8:])
        await asyncio.wait_for(waiter, 10.0)
    finally:
        await producer.aclose()
        await consumer.aclose()
    return latencies


_CONSUMER = """
import asyncio, json, struct, sys, time
from redis.asyncio import Redis
try:
    import uvloop
    run = uvloop.run
except ImportError:
    run = asyncio.run
url, key, processing, count, out = sys.argv[1:6]
async def main():
    client = Redis.from_url(url)
    await client.ping()
    print("ready", flush=True)
    seen = []
    while len(seen) < int(count):
        item = await client.blmove(key, processing, 5, "RIGHT", "LEFT")
        if item is None:
            break
        seen.append((time.time() - struct.unpack_from("d", item)[0]) * 1000.0)
    await client.aclose()
    with open(out, "w") as f:
        json.dump(seen, f)
run(main())
"""


async def push_to_pop_ms_two_processes(
    url: str,
    key: str,
    processing: str,
    payload: bytes,
    count: int,
    interval: float,
    python: str,
    out: str,
) -> list[float]:
    """Like :func:`push_to_pop_ms`, with the ``BLMOVE`` consumer in its own process.

    The same shape as asynctasq's latency figure (a dispatcher process, a worker process),
    so it is the ceiling that figure is compared with: what a plain redis-py producer and
    consumer in two processes on this machine cannot beat.
    """
    consumer = await asyncio.create_subprocess_exec(
        python,
        "-c",
        _CONSUMER,
        url,
        key,
        processing,
        str(count),
        out,
        stdout=asyncio.subprocess.PIPE,
    )
    assert consumer.stdout is not None
    await asyncio.wait_for(consumer.stdout.readline(), 20.0)  # connected
    await asyncio.sleep(0.05)  # and blocked in BLMOVE
    producer = Redis.from_url(url)
    try:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for number in range(count):
            pause = begin + number * interval - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            await producer.lpush(key, struct.pack("d", time.time()) + payload[8:])
        await asyncio.wait_for(consumer.wait(), 20.0)
    finally:
        await producer.aclose()
        if consumer.returncode is None:
            consumer.kill()
            await consumer.wait()
    with open(out, encoding="utf-8") as found:  # noqa: ASYNC230 - once, after the run
        return list(json.load(found))
