"""A claim whose reply is lost never strands its messages (the driver's claim record).

redis-py retries a command on a connection error, and a worker's fetch loop calls
``dequeue`` again after a failure: either way the claim script may run twice, or a copy of an
earlier call may reach Redis late (a stalled connection). These tests drop a real claim's
reply on the client side, after Redis ran the script, and check the states on the server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from asynctasq.config.records import RedisConfig
from asynctasq.drivers import redis_format as form
from asynctasq.drivers.protocol import Outgoing
from asynctasq.drivers.redis import RedisDriver
from asynctasq.errors import DriverError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    async with Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
async def queue(raw: Redis) -> AsyncIterator[str]:
    name = f"c-{uuid.uuid4().hex[:12]}"
    yield name
    await raw.delete(*(f"queue:{name}{s}" for s in ("", ":processing", ":delayed", ":dead")))


@pytest.fixture
async def driver(redis_url: str, raw: Redis) -> AsyncIterator[RedisDriver]:
    opened = RedisDriver(RedisConfig(url=redis_url))
    await opened.open()
    yield opened
    await opened.close()
    await raw.delete(opened._claim_key)


def out(queue: str, body: bytes) -> Outgoing:
    return Outgoing(queue=queue, body=body, visibility_timeout_seconds=60.0)


def lose_replies(driver: RedisDriver, count: int) -> list[Any]:
    """Make the next ``count`` claim calls run on Redis, then fail as if the reply was lost."""
    real = driver._claim
    answers: list[Any] = []

    async def claim_then_lose_the_reply(keys: list[str], args: list[Any]) -> Any:
        answer = await real(keys, args)
        if len(answers) < count:
            answers.append(answer)
            raise RedisConnectionError("reply lost (test)")
        return answer

    driver._claim = claim_then_lose_the_reply  # type: ignore[assignment]
    return answers


async def test_the_next_dequeue_gets_what_a_claim_with_a_lost_reply_took(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    await driver.enqueue_many([out(queue, b"a"), out(queue, b"b")])
    lost = lose_replies(driver, 1)
    with pytest.raises(DriverError, match="reply lost"):
        await driver.dequeue([queue], limit=10, wait_seconds=0)
    assert len(lost[0]) == 4  # Redis ran it: both leased
    assert await raw.zcard(form.processing_key(queue)) == 2
    got = await driver.dequeue([queue], limit=10, wait_seconds=0)
    assert sorted(d.body for d in got) == [b"a", b"b"]
    assert [d.delivery_count for d in got] == [1, 1]  # one delivery, not two
    assert await raw.zcard(form.processing_key(queue)) == 2
    await driver.ack(got)
    assert await raw.zcard(form.processing_key(queue)) == 0
    assert (await driver.sizes(queue)).ready == 0


async def test_a_late_copy_of_an_earlier_claim_moves_nothing(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    await driver.enqueue(out(queue, b"first"))
    [first] = await driver.dequeue([queue], limit=1, wait_seconds=0)  # claim 1
    await driver.enqueue(out(queue, b"second"))
    [second] = await driver.dequeue([queue], limit=1, wait_seconds=0)  # claim 2
    await driver.enqueue(out(queue, b"third"))
    keys = [form.ready_key(queue), form.processing_key(queue), driver._claim_key]
    late = await driver._claim(keys, [10, b"late", form.FOREIGN_LEASE_MS, 1, 60_000])
    assert late == []
    again = await driver._claim(keys, [10, b"again", form.FOREIGN_LEASE_MS, 2, 60_000])
    assert again == [form.processing_key(queue).encode(), second.receipt]  # claim 2's answer
    assert await raw.llen(form.ready_key(queue)) == 1  # "third" still ready
    assert await raw.zcard(form.processing_key(queue)) == 2  # "first" and "second" leased
    [third] = await driver.dequeue([queue], limit=10, wait_seconds=0)
    assert (first.body, second.body, third.body) == (b"first", b"second", b"third")


async def test_a_repeated_claim_number_returns_the_same_deliveries_across_queues(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    other = f"{queue}-other"
    try:
        await driver.enqueue(out(other, b"x"))
        lose_replies(driver, 1)
        with pytest.raises(DriverError):
            await driver.dequeue([queue, other], limit=5, wait_seconds=0)
        # the fetch loop's next call may ask in another order (fairness rotation)
        [got] = await driver.dequeue([other, queue], limit=5, wait_seconds=0)
        assert (got.queue, got.body, got.delivery_count) == (other, b"x", 1)
    finally:
        await raw.delete(form.ready_key(other), form.processing_key(other))


async def test_close_gives_back_what_a_claim_with_a_lost_reply_took(
    redis_url: str, raw: Redis, queue: str
) -> None:
    driver = RedisDriver(RedisConfig(url=redis_url))
    await driver.open()
    await driver.enqueue(out(queue, b"stranded"))
    lose_replies(driver, 1)
    with pytest.raises(DriverError):
        await driver.dequeue([queue], limit=1, wait_seconds=0)
    assert await raw.zcard(form.processing_key(queue)) == 1
    await driver.close()
    await raw.delete(driver._claim_key)
    assert await raw.zcard(form.processing_key(queue)) == 0
    [element] = await raw.lrange(form.ready_key(queue), 0, -1)
    assert form.delivery(queue, element).delivery_count == 0  # the lost claim is not counted
    assert element.endswith(b":stranded")


async def test_close_with_a_claim_that_never_reached_redis_voids_it(
    redis_url: str, raw: Redis, queue: str
) -> None:
    driver = RedisDriver(RedisConfig(url=redis_url))
    await driver.open()
    await driver.enqueue(out(queue, b"waiting"))
    driver._claims_in_doubt.append(next(driver._claim_numbers))  # sent, never arrived
    in_doubt = driver._claims_in_doubt[0]
    await driver.close()
    keys = [form.ready_key(queue), form.processing_key(queue), driver._claim_key]
    late = await raw.eval(  # the copy arrives after the driver closed
        driver._claim.script, len(keys), *keys, 10, b"late", form.FOREIGN_LEASE_MS, in_doubt, 60_000
    )
    await raw.delete(driver._claim_key)
    assert late == []
    assert await raw.llen(form.ready_key(queue)) == 1
    assert await raw.zcard(form.processing_key(queue)) == 0
