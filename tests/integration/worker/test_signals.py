"""SIGTERM: running tasks finish, nothing new starts, nothing is lost, exit 0 (C18)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable

import pytest

from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many
from tests.integration.worker import tasks_mod
from tests.integration.worker.conftest import Ledger, Worker
from tests.integration.worker.targets import Sizes, on_brokers

pytestmark = pytest.mark.anyio


@on_brokers
async def test_sigterm_lets_running_tasks_finish_and_starts_nothing_new(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    queue_sizes: Sizes,
) -> None:
    longs = [tasks_mod.slow(ledger.key, 2.0, label="long").on_queue(queue) for _ in range(2)]
    shorts = [tasks_mod.slow(ledger.key, 0.1, label="short").on_queue(queue) for _ in range(20)]
    await dispatch_many(longs)
    short_ids = await dispatch_many(shorts)
    worker = start_worker("--queues", queue, "--concurrency", "2", "--shutdown-timeout", "10")
    await ledger.wait_for(lambda rows: len(rows) == 2, 15)  # both long tasks started
    worker.signal(signal.SIGTERM)
    sigterm_at = time.time()
    assert worker.wait(2.0 + 4) == 0
    rows = ledger.rows()
    assert [r["label"] for r in rows if r["event"] == "end"] == ["long", "long"]
    assert all(r["t"] <= sigterm_at + 0.2 for r in rows if r["event"] == "start")
    keys = await queue_sizes(queue)
    assert (keys["ready"], keys["in_flight"]) == (20, 0)

    successor = start_worker("--queues", queue, "--concurrency", "4", "--max-tasks", "20")
    assert successor.wait(20) == 0
    runs = Counter(r["task_id"] for r in ledger.rows("end") if r["label"] == "short")
    assert runs == Counter(dict.fromkeys(short_ids, 1))


@on_brokers
async def test_after_the_shutdown_timeout_running_tasks_go_back_to_the_queue(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    queue_sizes: Sizes,
) -> None:
    pending = [
        tasks_mod.slow(ledger.key, 30, label="long", first_only=True).on_queue(queue)
        for _ in range(2)
    ]
    ids = await dispatch_many(pending)
    worker = start_worker("--queues", queue, "--concurrency", "2", "--shutdown-timeout", "1")
    await ledger.wait_for(lambda rows: len(rows) == 2, 15)
    worker.signal(signal.SIGTERM)
    began = time.monotonic()
    assert worker.wait(5) == 0
    assert time.monotonic() - began < 3.5
    keys = await queue_sizes(queue)
    assert (keys["ready"], keys["in_flight"]) == (2, 0)  # released at once, not left leased

    successor = start_worker("--queues", queue, "--max-tasks", "2")
    assert successor.wait(15) == 0
    ends = ledger.rows("end")
    assert sorted(r["task_id"] for r in ends) == sorted(ids)
    assert {r["attempt"] for r in ends} == {2}  # the cancelled run was an attempt


@on_brokers
async def test_a_second_sigterm_exits_at_once_and_loses_nothing(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    queue_sizes: Sizes,
) -> None:
    await tasks_mod.slow(ledger.key, 30, first_only=True).on_queue(queue).dispatch()
    worker = start_worker("--queues", queue, "--shutdown-timeout", "60")
    await ledger.wait_for(lambda rows: len(rows) == 1, 15)
    worker.signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    worker.signal(signal.SIGINT)
    began = time.monotonic()
    assert worker.wait(5) == 0
    assert time.monotonic() - began < 2.5
    keys = await queue_sizes(queue)
    assert (keys["ready"], keys["in_flight"]) == (1, 0)
