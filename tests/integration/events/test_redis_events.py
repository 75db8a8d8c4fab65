"""The Redis event emitter on a real Redis: a subscriber sees every event, in order (SPEC §6).

Each test subscribes to its own channel and uses its own queues; the worker runs in-process
on the Redis driver, so dispatch and worker events come from one handle, in one order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from asynctasq import init, run_worker, task
from asynctasq.handle import Handle
from asynctasq.worker import Shutdown

pytestmark = pytest.mark.anyio

SUFFIXES = ("", ":processing", ":delayed", ":dead", ":completed")


class Subscriber:
    """Messages published on one channel, read as they come."""

    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub
        self.events: list[dict[str, Any]] = []

    async def until(self, kind: str, seconds: float = 10.0) -> list[dict[str, Any]]:
        """Read until an event of ``kind`` arrived (fail after ``seconds``); return them all."""
        with anyio.fail_after(seconds):
            while not any(e["event_type"] == kind for e in self.events):
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    self.events.append(json.loads(message["data"]))
        return self.events


@pytest.fixture
def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:12]
    return f"asynctasq:test-events:{tag}", f"t-events-{tag}"


@pytest.fixture
async def subscriber(redis_url: str, names: tuple[str, str]) -> AsyncIterator[Subscriber]:
    channel, queue = names
    async with Redis.from_url(redis_url) as client:
        pubsub = client.pubsub()
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=5.0)  # the subscribe confirmation
        try:
            yield Subscriber(pubsub)
        finally:
            await pubsub.aclose()
            await client.delete(*(f"queue:{queue}{suffix}" for suffix in SUFFIXES))


def config(redis_url: str, channel: str, **events: Any) -> dict[str, Any]:
    return {
        "driver": "redis",
        "redis": {"url": redis_url},
        "events": {"enable_event_emitter_redis": True, "channel": channel, **events},
        "task_defaults": {"retry_strategy": "fixed", "retry_delay": 0, "max_attempts": 3},
    }


runs: list[str] = []


@task
async def flaky(x: int) -> int:
    runs.append("run")
    if len(runs) % 2 == 1:
        raise ValueError(f"first try of {x}")
    return x


@task(max_attempts=1)
async def doomed() -> None:
    raise KeyError("gone")


@task
async def endless() -> None:
    await asyncio.sleep(3600)


def of_task(events: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("task_id") == task_id]


async def test_a_task_failing_once_then_succeeding_publishes_each_event_in_order(
    redis_url: str, names: tuple[str, str], subscriber: Subscriber
) -> None:
    channel, queue = names
    runs.clear()
    handle: Handle
    async with init(config(redis_url, channel), env_file=None) as handle:
        task_id = await flaky(7).on_queue(queue).correlation_id("req-1").dispatch()
        stats = await run_worker(
            handle, tasks=[flaky], queues=[queue], max_tasks=2, handle_signals=False
        )
    events = await subscriber.until("worker_offline")
    assert [e["event_type"] for e in events] == [
        "task_enqueued",
        "worker_online",
        "task_started",
        "task_retrying",
        "task_started",
        "task_completed",
        "worker_offline",
    ]
    enqueued, started1, retrying, started2, completed = of_task(events, task_id)
    assert {e["task_name"] for e in of_task(events, task_id)} == {flaky.name}
    assert {e["queue"] for e in of_task(events, task_id)} == {queue}
    assert {e["correlation_id"] for e in of_task(events, task_id)} == {"req-1"}
    assert enqueued["worker_id"] is None
    assert {e["worker_id"] for e in (started1, retrying, started2, completed)} == {stats.worker_id}
    assert [e["attempt"] for e in (started1, retrying, started2, completed)] == [1, 1, 2, 2]
    assert (retrying["error_type"], retrying["error_message"]) == ("ValueError", "first try of 7")
    assert retrying["delay_seconds"] == 0
    assert completed["error_type"] is None
    assert completed["duration_ms"] >= 0
    assert started1["duration_ms"] is None
    for event in events:
        stamp = datetime.fromisoformat(event["timestamp"])
        assert stamp.utcoffset() is not None
        assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    online, offline = events[1], events[-1]
    assert (online["worker_id"], online["queues"], online["driver"]) == (
        stats.worker_id,
        [queue],
        "redis",
    )
    assert (offline["processed"], offline["failed"], offline["active"]) == (2, 1, 0)
    assert isinstance(offline["pid"], int)
    assert offline["hostname"]


async def test_heartbeat_failed_and_cancelled_events_reach_the_subscriber(
    redis_url: str, names: tuple[str, str], subscriber: Subscriber
) -> None:
    channel, queue = names
    settings = config(redis_url, channel, heartbeat_interval=0.1)
    async with init(settings, env_file=None) as handle:
        failing = await doomed().on_queue(queue).dispatch()
        stuck = await endless().on_queue(queue).dispatch()
        shutdown = Shutdown()
        worker = asyncio.ensure_future(
            run_worker(
                handle,
                tasks=[doomed, endless],
                queues=[queue],
                concurrency=2,
                shutdown=shutdown,
                shutdown_grace_seconds=0,
                handle_signals=False,
            )
        )
        await subscriber.until("task_failed")
        await subscriber.until("worker_heartbeat")
        shutdown.request()
        await worker
    events = await subscriber.until("worker_offline")
    failed = of_task(events, failing)[-1]
    assert (failed["event_type"], failed["error_type"], failed["error_message"]) == (
        "task_failed",
        "KeyError",
        "'gone'",
    )
    started, cancelled, outcome = of_task(events, stuck)[-3:]
    assert cancelled["event_type"] == "task_cancelled"
    assert cancelled["error_type"] == "TaskCancelledError"  # as the log and the dead letter
    assert cancelled["started_at"] == started["started_at"] == outcome["started_at"]
    assert outcome["event_type"] in ("task_retrying", "task_failed")  # then its outcome
    beat = next(e for e in events if e["event_type"] == "worker_heartbeat")
    assert beat["queues"] == [queue]
    assert beat["uptime_seconds"] >= 0
    kinds = {e["event_type"] for e in events}
    assert kinds >= {"task_enqueued", "task_started", "worker_online", "worker_offline"}
