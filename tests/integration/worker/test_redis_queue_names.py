"""Redis queue names that would be another queue's key are refused at dispatch and start.

``queue:{name}`` is a queue's ready list and ``queue:{name}:dead`` (``:processing``,
``:delayed``, ``:completed``) its other keys, so a queue named ``a:dead`` would be queue
``a``'s dead-letter list: dispatching there stored tasks among ``a``'s dead letters and a
worker serving it consumed them; ``a:processing`` failed with ``WRONGTYPE``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
import redis
from redis.asyncio import Redis

from asynctasq.errors import ConfigError
from asynctasq.handle import Handle, configured
from asynctasq.tasks import dispatch_many, task
from asynctasq.worker import run_worker

pytestmark = pytest.mark.anyio

SUFFIXES = (":processing", ":delayed", ":dead", ":completed")


@task
async def noted(text: str) -> str:
    return text


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"names-{uuid.uuid4().hex[:12]}"
    yield name
    with redis.Redis.from_url(redis_url) as client:
        client.delete(*(f"queue:{name}{s}" for s in ("", *SUFFIXES)))


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    async with Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
async def handle(redis_url: str, queue: str) -> AsyncIterator[Handle]:
    async with configured(driver="redis", redis={"url": redis_url}) as opened:
        yield opened


async def keys_of(raw: Redis, queue: str) -> list[bytes]:
    return sorted(await raw.keys(f"queue:{queue}*"))


@pytest.mark.parametrize("suffix", SUFFIXES)
async def test_dispatch_to_a_name_ending_in_a_key_suffix_is_refused_and_stores_nothing(
    handle: Handle, raw: Redis, queue: str, suffix: str
) -> None:
    name = queue + suffix
    with pytest.raises(ConfigError) as caught:
        await noted("x").on_queue(name).dispatch()
    assert str(caught.value).startswith(
        f"queue names the Redis driver cannot use: {name!r}: names ending in {suffix!r} are "
        f"taken: the Redis driver keeps each queue's "
    )
    assert "this name's list would be the " in str(caught.value)
    assert str(caught.value).endswith(f" of queue {queue!r}")
    assert await keys_of(raw, queue) == []


async def test_dispatch_many_with_one_such_name_stores_none_of_the_batch(
    handle: Handle, raw: Redis, queue: str
) -> None:
    batch = [noted("a").on_queue(queue), noted("b").on_queue(f"{queue}:dead")]
    with pytest.raises(ConfigError, match=f"'{queue}:dead': names ending in ':dead'"):
        await dispatch_many(batch)
    assert await keys_of(raw, queue) == []


async def test_a_worker_serving_another_queues_dead_letters_does_not_start(
    handle: Handle, raw: Redis, queue: str
) -> None:
    await raw.rpush(f"queue:{queue}:dead", b"a dead letter of the queue")
    with pytest.raises(ConfigError) as caught, anyio.fail_after(10):  # before: served them
        await run_worker(
            handle, tasks=[noted], queues=["fine", f"{queue}:dead"], handle_signals=False
        )
    assert str(caught.value) == (
        f"queue names the Redis driver cannot use: '{queue}:dead': names ending in ':dead' "
        "are taken: the Redis driver keeps each queue's dead letters under "
        f"'queue:<name>:dead', so this name's list would be the dead letters of queue {queue!r}"
    )
    assert await raw.lrange(f"queue:{queue}:dead", 0, -1) == [b"a dead letter of the queue"]


async def test_names_with_a_colon_elsewhere_still_work(
    handle: Handle, raw: Redis, queue: str
) -> None:
    name = f"{queue}:dead:letters"
    try:
        await noted("x").on_queue(name).dispatch()
        assert await raw.llen(f"queue:{name}") == 1
    finally:
        await raw.delete(f"queue:{name}")
