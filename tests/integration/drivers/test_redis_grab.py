"""An idle Redis consumer takes the element in its BLMOVE (the grab list), crash-safely.

The element that wakes an idle ``dequeue`` is moved into the driver's own grab list and
returned at once; its lease is written in the background (ADOPT). These tests check the
states on the real Redis: the grab list and its registration in ``asynctasq:grabs``, what
``maintain`` does with a lapsed one (a worker died between the move and the lease), what
happens to an element that lands while nobody waits, and ``close``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
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


def names() -> tuple[str, str]:
    base = f"g-{uuid.uuid4().hex[:12]}"
    return f"{base}-a", f"{base}-b"


@pytest.fixture
async def queues(raw: Redis) -> AsyncIterator[tuple[str, str]]:
    pair = names()
    yield pair
    for queue in pair:
        await raw.delete(*(f"queue:{queue}{s}" for s in ("", ":processing", ":delayed", ":dead")))


@pytest.fixture
async def driver(redis_url: str) -> AsyncIterator[RedisDriver]:
    opened = RedisDriver(RedisConfig(url=redis_url))
    await opened.open()
    yield opened
    await opened.close()


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Poll the broker state until ``check()`` is true (fails after ``seconds``).

    Redis has no notification for these states, so polling is the only way to await them.
    """
    with anyio.fail_after(seconds):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def grab_lists(raw: Redis, queue: str) -> list[bytes]:
    return [key async for key in raw.scan_iter(match=f"asynctasq:grab:*:{queue}")]


async def test_an_idle_dequeue_returns_the_pushed_message_leased_with_its_count(
    driver: RedisDriver, raw: Redis, queues: tuple[str, str]
) -> None:
    queue, _ = queues
    waiting = asyncio.create_task(driver.dequeue([queue], limit=5, wait_seconds=5))
    await until(lambda: _registered(raw, queue))  # the BLMOVE is about to block
    await driver.enqueue(Outgoing(queue, b"body", visibility_timeout_seconds=30))
    [delivery] = await waiting
    assert (delivery.body, delivery.delivery_count) == (b"body", 1)
    await driver.ack([delivery])  # waits for the lease to be written, then removes it
    assert await raw.llen(f"queue:{queue}") == 0
    assert await raw.zcard(f"queue:{queue}:processing") == 0
    [grab] = await grab_lists(raw, queue) or [None]
    assert grab is None or await raw.llen(grab) == 0


async def _registered(raw: Redis, queue: str) -> bool:
    members = await raw.zrange(form.GRABS_KEY, 0, -1)
    return any(member.endswith(f":{queue}".encode()) for member in members)


async def test_the_lease_of_a_grabbed_message_is_written_with_its_visibility_timeout(
    driver: RedisDriver, raw: Redis, queues: tuple[str, str]
) -> None:
    queue, _ = queues
    waiting = asyncio.create_task(driver.dequeue([queue], limit=1, wait_seconds=5))
    await until(lambda: _registered(raw, queue))
    await driver.enqueue(Outgoing(queue, b"x", visibility_timeout_seconds=40))
    [delivery] = await waiting
    await until(lambda: _zcard_is(raw, f"queue:{queue}:processing", 1))
    [(member, deadline)] = await raw.zrange(f"queue:{queue}:processing", 0, -1, withscores=True)
    assert member == delivery.receipt
    seconds, micros = await raw.time()
    left_ms = deadline - (seconds * 1000 + micros / 1000)
    assert 38_000 < left_ms <= 40_000


async def _zcard_is(raw: Redis, key: str, count: int) -> bool:
    return bool(await raw.zcard(key) == count)


async def test_a_wait_that_outlasts_one_blocking_command_still_gets_a_later_message(
    driver: RedisDriver, raw: Redis, queues: tuple[str, str]
) -> None:
    queue, _ = queues
    assert await driver.dequeue([queue], limit=1, wait_seconds=0.2) == []  # leaves a BLMOVE
    waiting = asyncio.create_task(driver.dequeue([queue], limit=1, wait_seconds=3))
    await asyncio.sleep(0.4)  # the earlier blocking command has timed out empty by now
    await driver.enqueue(Outgoing(queue, b"late"))
    assert [d.body for d in await waiting] == [b"late"]


async def test_a_message_grabbed_while_nobody_waits_goes_back_unchanged_to_the_front(
    driver: RedisDriver, raw: Redis, queues: tuple[str, str]
) -> None:
    first, second = queues
    await raw.lpush(f"queue:{second}", b"older")
    waiting = asyncio.create_task(driver.dequeue([first, second], limit=1, wait_seconds=5))
    # "older" is claimed at once; wait again so both queues have a blocking command
    [claimed] = await waiting
    assert claimed.body == b"older"
    waiting = asyncio.create_task(driver.dequeue([first, second], limit=1, wait_seconds=5))
    await until(lambda: _registered(raw, second))
    await driver.enqueue(Outgoing(first, b"wakes"))
    [woke] = await waiting
    assert woke.body == b"wakes"
    await raw.lpush(f"queue:{second}", b"next")  # lands in the still-pending BLMOVE
    await until(lambda: _llen_is(raw, f"queue:{second}", 1))
    assert await raw.lrange(f"queue:{second}", 0, -1) == [b"next"]
    for grab in await grab_lists(raw, second):
        assert await raw.llen(grab) == 0


async def _llen_is(raw: Redis, key: str, count: int) -> bool:
    return bool(await raw.llen(key) == count)


async def test_grabbed_beyond_the_limit_go_back_and_the_rest_are_leased(
    driver: RedisDriver, raw: Redis, queues: tuple[str, str]
) -> None:
    first, second = queues
    landed = []
    for queue, body in ((first, b"one"), (second, b"two")):
        element = driver._ids.element(body, 30)
        await raw.lpush(f"queue:{queue}", element)
        ready = form.ready_key(queue)
        grab = driver._grabs.key(ready)
        await raw.lmove(ready, grab, "RIGHT", "LEFT")
        landed.append((ready, element, grab))
    [delivery] = driver._grabs.take([first, second], landed, 1)
    assert (delivery.queue, delivery.body, delivery.delivery_count) == (first, b"one", 1)
    await driver.ack([delivery])
    await until(lambda: _llen_is(raw, f"queue:{second}", 1))
    assert await raw.lrange(f"queue:{second}", 0, -1) == [landed[1][1]]  # count unchanged
    assert await raw.zcard(f"queue:{first}:processing") == 0


async def test_maintain_returns_a_lapsed_grab_to_the_front_with_the_attempt_counted(
    driver: RedisDriver, raw: Redis, queues: tuple[str, str]
) -> None:
    queue, _ = queues
    dead_worker = f"asynctasq:grab:deadbeef{uuid.uuid4().hex[:8]}:{queue}"
    await raw.lpush(f"queue:{queue}", b"id1:5000:0:waiting")
    await raw.lpush(dead_worker, b"id2:5000:2:grabbed")
    await raw.zadd(form.GRABS_KEY, {dead_worker: 1})  # lapsed long ago
    live = f"asynctasq:grab:cafe{uuid.uuid4().hex[:8]}:{queue}"
    await raw.lpush(live, b"id3:5000:0:held")
    seconds, _ = await raw.time()
    await raw.zadd(form.GRABS_KEY, {live: (seconds + 60) * 1000})
    try:
        await driver.maintain([queue])
        assert await raw.lrange(f"queue:{queue}", 0, -1) == [
            b"id1:5000:0:waiting",
            b"id2:5000:3:grabbed",  # at the consuming end, served next, count raised
        ]
        assert await raw.exists(dead_worker) == 0
        assert await raw.zscore(form.GRABS_KEY, dead_worker) is None
        assert await raw.lrange(live, 0, -1) == [b"id3:5000:0:held"]  # still registered
        [delivery] = await driver.dequeue([queue], limit=1, wait_seconds=0)
        assert (delivery.body, delivery.delivery_count) == (b"grabbed", 4)
    finally:
        await raw.delete(dead_worker, live)
        await raw.zrem(form.GRABS_KEY, dead_worker, live)


async def test_close_puts_back_what_is_left_in_the_grab_lists(
    redis_url: str, raw: Redis, queues: tuple[str, str]
) -> None:
    queue, _ = queues
    driver = RedisDriver(RedisConfig(url=redis_url))
    await driver.open()
    assert await driver.dequeue([queue], limit=1, wait_seconds=0.05) == []  # registers
    ready = form.ready_key(queue)
    grab = driver._grabs.key(ready)
    await raw.lpush(grab, b"id9:5000:1:stranded")
    await driver.close()
    assert await raw.lrange(ready, 0, -1) == [b"id9:5000:1:stranded"]
    assert await raw.exists(grab) == 0
    assert await raw.zscore(form.GRABS_KEY, grab) is None


@pytest.mark.parametrize(
    ("element", "member"),
    [
        (b"abc:1500:0:body", b"abc:1500:1:body"),
        (b"abc:1500:007:b:o:dy", b"abc:1500:8:b:o:dy"),
        (b"no header", b"F:3600000:1:no header"),
        (b"abc:0:1:zero lease", b"F:3600000:1:abc:0:1:zero lease"),
        (b"abc:1234567890123:1:long lease", b"F:3600000:1:abc:1234567890123:1:long lease"),
        (b"x" * 65 + b":10:1:long id", b"F:3600000:1:" + b"x" * 65 + b":10:1:long id"),
    ],
)
async def test_the_member_made_by_the_client_is_the_one_the_claim_script_makes(
    driver: RedisDriver, raw: Redis, queues: tuple[str, str], element: bytes, member: bytes
) -> None:
    queue, _ = queues
    assert form.next_member(element, b"F")[0] == member
    await raw.lpush(f"queue:{queue}", element)
    [claimed] = await driver.dequeue([queue], limit=1, wait_seconds=0)
    fresh_id = claimed.receipt.split(b":", 1)[0]
    assert claimed.receipt == form.next_member(element, fresh_id)[0]


async def test_a_wait_whose_reply_was_lost_retires_its_grab_list_and_maintain_recovers_it(
    driver: RedisDriver,
    raw: Redis,
    queues: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the BLMOVE runs on Redis (the element moves into the grab list), then its reply is
    # lost: without retiring, the list stays registered while the worker waits, stranding it
    monkeypatch.setattr("asynctasq.drivers.redis_wakeup.GRAB_MARGIN_SECONDS", 0.1)
    queue, _ = queues
    watch = driver._grabs.watch
    real_move = watch._move
    lost: list[bytes | None] = []

    async def move_then_lose_the_reply(key: str, grab: str, seconds: float) -> bytes | None:
        moved = await real_move(key, grab, seconds)
        if moved is not None and not lost:
            lost.append(moved)
            raise RedisConnectionError("reply lost (test)")
        return moved

    monkeypatch.setattr(watch, "_move", move_then_lose_the_reply)
    waiting = asyncio.create_task(driver.dequeue([queue], limit=1, wait_seconds=5))
    await until(lambda: _registered(raw, queue))
    await driver.enqueue(Outgoing(queue, b"orphan", visibility_timeout_seconds=30))
    with pytest.raises(DriverError, match="reply lost"):
        await waiting
    [first_grab] = await grab_lists(raw, queue)
    assert await raw.lrange(first_grab, 0, -1) == lost  # stranded there for now
    assert await driver.dequeue([queue], limit=1, wait_seconds=0.2) == []  # a new grab list
    registered = await raw.zrange(form.GRABS_KEY, 0, -1)
    assert first_grab.replace(b":g-", b".1:g-") in registered
    # the retired list's registration is not renewed: once it lapses, MAINTAIN returns it

    async def recovered() -> bool:
        await driver.maintain([queue])
        return bool(await raw.llen(f"queue:{queue}") == 1)

    await until(recovered, seconds=10)
    [delivery] = await driver.dequeue([queue], limit=1, wait_seconds=0)
    assert delivery.body == b"orphan"
    assert delivery.delivery_count == 2  # the lost grab is counted as a delivery
    assert await raw.llen(first_grab) == 0
