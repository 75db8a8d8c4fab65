"""Foreign data in Redis keys never breaks a script half-way: nothing is stranded or lost.

Redis does not roll a Lua script back, so an error after its first write would leave
messages half-moved. Elements someone pushed by hand are delivered with a synthesized header
(and dead-lettered by the worker); a key of the wrong type fails the call before anything
moved.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from asynctasq.config.records import RedisConfig
from asynctasq.drivers.protocol import DeadLetterEntry, Outgoing
from asynctasq.drivers.redis import RedisDriver
from asynctasq.errors import DriverError

pytestmark = pytest.mark.anyio

FOREIGN = [b"garbage-not-msgpack", b"abc:def:ghi:jkl", b"", b"x:0:1:zero lease", b"\xff:1:2"]


def keys_of(queue: str) -> list[str]:
    return [f"queue:{queue}{suffix}" for suffix in ("", ":processing", ":delayed", ":dead")]


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    async with Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
async def queue(raw: Redis) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:16]}"
    yield name
    await raw.delete(*keys_of(name), *keys_of(f"{name}-other"))


@pytest.fixture
async def driver(redis_url: str) -> AsyncIterator[RedisDriver]:
    opened = RedisDriver(RedisConfig(url=redis_url))
    await opened.open()
    yield opened
    await opened.close()


@pytest.mark.parametrize("foreign", FOREIGN)
async def test_a_foreign_element_between_two_messages_is_delivered_with_its_bytes_as_body(
    driver: RedisDriver, raw: Redis, queue: str, foreign: bytes
) -> None:
    await driver.enqueue(Outgoing(queue, b"first"))
    await raw.lpush(f"queue:{queue}", foreign)
    await driver.enqueue(Outgoing(queue, b"second"))
    got = await driver.dequeue([queue], limit=10, wait_seconds=0)
    assert [d.body for d in got] == [b"first", foreign, b"second"]
    assert [d.delivery_count for d in got] == [1, 1, 1]
    assert got[1].visibility_timeout_seconds == 3600.0
    assert len({d.receipt for d in got}) == 3
    assert (await driver.sizes(queue)).in_flight == 3
    entry = DeadLetterEntry(queue, foreign, "", "", "SerializationError", "bad", 1, 1.0)
    await driver.dead_letter(got[1], entry)
    await driver.ack([got[0], got[2]])
    sizes = await driver.sizes(queue)
    assert (sizes.ready, sizes.in_flight, sizes.dead) == (0, 0, 1)
    [kept] = await driver.dead_letters(queue)
    assert kept.body == foreign


async def test_two_equal_foreign_elements_stay_two_deliveries(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    await raw.lpush(f"queue:{queue}", b"same", b"same")
    got = await driver.dequeue([queue], limit=10, wait_seconds=0)
    assert [d.body for d in got] == [b"same", b"same"]
    assert (await driver.sizes(queue)).in_flight == 2


async def test_a_released_foreign_element_comes_back_with_the_same_count(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    await raw.lpush(f"queue:{queue}", b"junk")
    [first] = await driver.dequeue([queue], limit=1, wait_seconds=0)
    await driver.release([first])
    [again] = await driver.dequeue([queue], limit=1, wait_seconds=0)
    assert (again.body, again.delivery_count) == (b"junk", 1)


async def test_a_foreign_member_of_the_delayed_set_is_promoted_and_delivered(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    await raw.zadd(f"queue:{queue}:delayed", {b"garbage-in-delayed": 0, b"a:b": float("-inf")})
    await driver.enqueue(Outgoing(queue, b"good", delay_seconds=0.001))
    await raw.zadd(f"queue:{queue}:delayed", {b"never": float("inf")})
    while (await driver.sizes(queue)).ready < 3:
        await driver.maintain([queue])
    got = await driver.dequeue([queue], limit=10, wait_seconds=0)
    assert sorted(d.body for d in got) == [b"a:b", b"garbage-in-delayed", b"good"]
    assert await driver.maintain([queue]) is None  # only +inf is left: nothing ever due


async def test_a_foreign_member_of_the_processing_set_is_recovered_and_delivered(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    await raw.zadd(f"queue:{queue}:processing", {b"no header at all": 0})
    await driver.maintain([queue])
    [got] = await driver.dequeue([queue], limit=10, wait_seconds=0)
    assert got.body == b"no header at all"


async def test_a_ready_key_of_another_type_fails_the_claim_before_anything_moves(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    other = f"{queue}-other"
    await driver.enqueue(Outgoing(queue, b"good"))
    await raw.set(f"queue:{other}", "a string")
    with pytest.raises(DriverError, match=rf"WRONGTYPE asynctasq key queue:{other} holds a string"):
        await driver.dequeue([queue, other], limit=10, wait_seconds=0)
    sizes = await driver.sizes(queue)
    assert (sizes.ready, sizes.in_flight) == (1, 0)


@pytest.mark.parametrize("suffix", [":processing", ":delayed", ":dead", ""])
async def test_settling_into_a_key_of_another_type_fails_before_the_lease_is_removed(
    driver: RedisDriver, raw: Redis, queue: str, suffix: str
) -> None:
    await driver.enqueue(Outgoing(queue, b"good"))
    [got] = await driver.dequeue([queue], limit=1, wait_seconds=0)
    target = f"queue:{queue}{suffix}"
    if suffix != ":processing":
        await raw.hset(target, "k", "v")
    entry = DeadLetterEntry(queue, b"good", "", "", "E", "m", 1, 1.0)
    settle = {
        ":processing": lambda: driver.ack([got]),
        ":delayed": lambda: driver.retry(got, Outgoing(queue, b"next", delay_seconds=5)),
        ":dead": lambda: driver.dead_letter(got, entry),
        "": lambda: driver.retry(got, Outgoing(queue, b"next")),
    }[suffix]
    if suffix == ":processing":  # the lease itself is in a wrong-typed key: plain failure
        await raw.delete(target)
        await raw.hset(target, "k", "v")
    with pytest.raises(DriverError, match="WRONGTYPE"):
        await settle()
    if suffix != ":processing":
        assert await raw.zcard(f"queue:{queue}:processing") == 1  # the lease is still held


async def test_maintain_with_a_wrong_typed_key_moves_nothing(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    await driver.enqueue(Outgoing(queue, b"later", delay_seconds=0.001))
    await raw.set(f"queue:{queue}", "not a list")
    with pytest.raises(DriverError, match="WRONGTYPE"):
        await driver.maintain([queue])
    assert await raw.zcard(f"queue:{queue}:delayed") == 1


async def test_maintain_returns_the_seconds_until_the_next_delayed_message_is_due(
    driver: RedisDriver, queue: str
) -> None:
    assert await driver.maintain([queue]) is None
    await driver.enqueue(Outgoing(queue, b"in ten", delay_seconds=10))
    await driver.enqueue(Outgoing(f"{queue}-other", b"in five", delay_seconds=5))
    soonest = await driver.maintain([queue, f"{queue}-other"])
    assert soonest is not None
    assert 4.5 < soonest <= 5.001
    await driver.enqueue(Outgoing(queue, b"in two", delay_seconds=2))
    again = await driver.maintain([queue])
    assert again is not None
    assert 1.5 < again <= 2.001
