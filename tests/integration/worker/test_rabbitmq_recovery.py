"""A worker whose RabbitMQ connection dies mid-run recovers its consumers and finishes (C32).

The shared broker is not restarted (other tests use it). What a restart does to a worker —
its connections drop uncleanly, its channels and consumers are gone, every unacked message
is requeued — is done to this worker alone: ``rabbitmqctl close_connection`` on each of its
connections (found by the pid in their client-provided name). Deleting and re-creating a
queue covers the other half of C32: a consumer cancelled by the broker.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator

import aio_pika
import pytest

from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many
from tests.integration.rabbitmq_admin import close_connections, consumers
from tests.integration.worker import tasks_mod
from tests.integration.worker.conftest import MAINTENANCE_SECONDS, Ledger, Worker
from tests.integration.worker.targets import RABBITMQ_PREFETCH, Sizes, Target

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("broker_name", ["rabbitmq"], indirect=True),
]


@pytest.fixture
def second_queue(queue: str, target: Target) -> Iterator[str]:
    name = f"{queue}-b"
    yield name
    target.cleanup(name)


async def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await asyncio.to_thread(check):
        assert asyncio.get_running_loop().time() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.2)


def consuming(*queues: str) -> Callable[[], bool]:
    """Return a check: every queue has exactly one consumer, with the configured prefetch."""
    return lambda: all(consumers(queue) == [RABBITMQ_PREFETCH] for queue in queues)


async def test_a_worker_whose_connections_are_closed_by_the_server_recovers_and_finishes(
    handle: Handle,
    queue: str,
    second_queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    queue_sizes: Sizes,
) -> None:
    # C32 + C09: ten 3 s tasks on two queues and two delayed ones; the connections drop
    # while the tasks run. The worker lives on, its consumers (and their prefetch) come
    # back, every task runs and is recorded exactly once (the redelivered copies wait for
    # the runs in progress and are settled by them), the delays fire on time.
    a, b = queue, second_queue
    slow = [
        tasks_mod.slow(ledger.key, 3, label=name).on_queue(name)
        for name in (a, b)
        for _ in range(5)
    ]
    ids = await dispatch_many(slow)
    dispatched = time.time()
    later = await dispatch_many(
        [tasks_mod.record(ledger.key, "delayed").on_queue(n).delay(4) for n in (a, b)]
    )
    worker = start_worker("--queues", f"{a},{b}", "--concurrency", "10")
    await ledger.wait_for(lambda rows: len(rows) == 10, 20)  # all ten are running
    assert await asyncio.to_thread(close_connections, f" pid {worker.pid} ") >= 1
    await until(consuming(a, b), 30, f"consumers with prefetch {RABBITMQ_PREFETCH} on a and b")
    rows = await ledger.wait_for(lambda rows: len(rows) == 22, 30)
    assert Counter(r["task_id"] for r in rows if r["event"] == "end") == dict.fromkeys(ids, 1)
    assert Counter(r["task_id"] for r in rows if r["event"] == "start") == dict.fromkeys(ids, 1)
    assert {r["attempt"] for r in rows} == {1}
    delayed = [r for r in rows if r["event"] == "run"]
    assert sorted(r["task_id"] for r in delayed) == sorted(later)
    assert all(
        dispatched + 4 - 0.05 <= r["t"] <= dispatched + 4 + MAINTENANCE_SECONDS + 5 for r in delayed
    )

    fresh = await dispatch_many(
        [tasks_mod.record(ledger.key, "fresh").on_queue(name) for name in (a, b) for _ in range(5)]
    )
    await ledger.wait_for(lambda rows: {r["task_id"] for r in rows} >= set(fresh), 10)
    await asyncio.sleep(1.0)
    assert Counter(r["task_id"] for r in ledger.rows("run")) == dict.fromkeys([*later, *fresh], 1)
    assert worker.process.poll() is None  # the same process throughout
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    for name in (a, b):
        assert await queue_sizes(name) == {"ready": 0, "in_flight": 0, "delayed": 0, "dead": 0}


async def test_a_queue_deleted_and_recreated_under_a_running_worker_is_consumed_again(
    handle: Handle,
    queue: str,
    second_queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    target: Target,
) -> None:
    a, b = queue, second_queue
    await dispatch_many([tasks_mod.record(ledger.key, "first").on_queue(n) for n in (a, b)])
    worker = start_worker("--queues", f"{a},{b}")
    await ledger.wait_for(lambda rows: len(rows) == 2, 15)
    connection = await aio_pika.connect(target.settings["url"])
    try:
        channel = await connection.channel()
        await channel.queue_delete(b)  # the broker cancels the worker's consumer on b
        await channel.declare_queue(b, durable=True, arguments={"x-max-priority": 1})
    finally:
        await connection.close()
    await until(consuming(a, b), 30, "a consumer on the re-created queue")
    await dispatch_many([tasks_mod.record(ledger.key, "again").on_queue(n) for n in (a, b)])
    rows = await ledger.wait_for(lambda rows: len(rows) == 4, 10)
    assert Counter(r["label"] for r in rows) == {"first": 2, "again": 2}
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
