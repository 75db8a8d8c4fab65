"""Print the Redis driver's rates next to plain redis-py doing the same pattern.

Not a test (pytest does not collect it). Run from the repository root:
``.venv/bin/python -m tests.integration.drivers.measure_redis``. Needs the local Redis at
127.0.0.1:6379; uses and deletes keys ``queue:measure-*``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable

from redis.asyncio import Redis

from asynctasq.config.records import RedisConfig
from asynctasq.drivers.protocol import Outgoing
from asynctasq.drivers.redis import RedisDriver

URL = "redis://127.0.0.1:6379"
BODY = b"x" * 200
SINGLE = 5000
BATCH = 100
BATCHES = 200
TOTAL = BATCH * BATCHES


async def rate(count: int, run: Awaitable[None]) -> float:
    started = time.perf_counter()
    await run
    return count / (time.perf_counter() - started)


async def raw_single(raw: Redis, key: str) -> None:
    for _ in range(SINGLE):
        await raw.lpush(key, BODY)


async def driver_single(driver: RedisDriver, queue: str) -> None:
    for _ in range(SINGLE):
        await driver.enqueue(Outgoing(queue, BODY))


async def raw_batched(raw: Redis, key: str) -> None:
    for _ in range(BATCHES):
        async with raw.pipeline(transaction=False) as pipe:
            for _ in range(BATCH):
                pipe.lpush(key, BODY)
            await pipe.execute()


async def driver_batched(driver: RedisDriver, queue: str) -> None:
    for _ in range(BATCHES):
        await driver.enqueue_many([Outgoing(queue, BODY)] * BATCH)


async def raw_claim_ack(raw: Redis, key: str, processing: str) -> None:
    """The same moves without scripts: pop 100, add them to the in-flight set, remove them."""
    for _ in range(BATCHES):
        items = await raw.rpop(key, BATCH) or []
        async with raw.pipeline(transaction=False) as pipe:
            pipe.zadd(processing, dict.fromkeys(items, time.time()))
            pipe.zrem(processing, *items)
            await pipe.execute()


async def driver_claim_ack(driver: RedisDriver, queue: str) -> None:
    for _ in range(BATCHES):
        got = await driver.dequeue([queue], limit=BATCH, wait_seconds=0)
        await driver.ack(got)


async def measure(raw: Redis, driver: RedisDriver, queue: str) -> dict[str, tuple[float, float]]:
    key, processing = f"queue:{queue}", f"queue:{queue}:processing"
    figures = {
        "enqueue single": (
            await rate(SINGLE, driver_single(driver, queue)),
            await rate(SINGLE, raw_single(raw, key)),
        ),
        "enqueue batch 100": (
            await rate(TOTAL, driver_batched(driver, queue)),
            await rate(TOTAL, raw_batched(raw, key)),
        ),
    }
    await raw.delete(key)
    await driver.enqueue_many([Outgoing(queue, BODY)] * TOTAL)
    ours = await rate(TOTAL, driver_claim_ack(driver, queue))
    await raw.lpush(key, *([BODY] * TOTAL))
    figures["dequeue+ack batch 100"] = (
        ours,
        await rate(TOTAL, raw_claim_ack(raw, key, processing)),
    )
    return figures


async def main() -> None:
    raw = Redis.from_url(URL)
    driver = RedisDriver(RedisConfig(url=URL))
    await driver.open()
    queue = f"measure-{uuid.uuid4().hex[:8]}"
    try:
        for name, (ours, ceiling) in (await measure(raw, driver, queue)).items():
            ratio = ours / ceiling
            print(f"{name:22} driver {ours:8.0f}/s  raw {ceiling:8.0f}/s  ratio {ratio:5.0%}")
    finally:
        await raw.delete(f"queue:{queue}", f"queue:{queue}:processing")
        await raw.aclose()
        await driver.close()


if __name__ == "__main__":
    asyncio.run(main())
