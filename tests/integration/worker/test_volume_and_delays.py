"""Many tasks through two workers, each run once; delayed tasks never early (C03, C12)."""

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
from tests.integration.worker.conftest import MAINTENANCE_SECONDS, Ledger, Worker
from tests.integration.worker.targets import Sizes, Target, on_brokers

pytestmark = pytest.mark.anyio

TOTAL = 10_000


@on_brokers
async def test_ten_thousand_tasks_through_two_workers_each_run_once(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    queue_sizes: Sizes,
    target: Target,
) -> None:
    total = min(TOTAL, target.volume)  # moto's SQS: fewer (see sqs_target.VOLUME)
    ids: list[str] = []
    for start in range(0, total, 1000):
        batch = [
            tasks_mod.record(ledger.key, str(n)).on_queue(queue) for n in range(start, start + 1000)
        ]
        ids += await dispatch_many(batch)
    workers = [
        start_worker("--queues", queue, "--concurrency", "50", "--log-level", "warning")
        for _ in range(2)
    ]
    await ledger.wait_for(lambda rows: len(rows) >= total, 120)
    runs = Counter(row["task_id"] for row in ledger.rows("run"))
    assert set(runs) == set(ids)
    assert max(runs.values()) == 1
    assert {row["pid"] for row in ledger.rows("run")} == {w.pid for w in workers}
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        # an idle worker stops in about 1 s; each stop step is bounded (ending the fetch
        # 6 s, the final acks 10 s, every RabbitMQ shutdown call 5 s), which a broker
        # slowed by a loaded CI machine once pushed past 15 s. Slow steps are logged by
        # name, and a worker still running here fails with its stacks (Worker.wait).
        assert worker.wait(30) == 0
    assert await queue_sizes(queue) == {
        "ready": 0,
        "in_flight": 0,
        "delayed": 0,
        "dead": 0,
    }


@on_brokers
async def test_a_delayed_task_survives_a_killed_worker_and_never_runs_early(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    dispatched = time.time()
    await tasks_mod.record(ledger.key, "delayed").on_queue(queue).delay(3).dispatch()
    first = start_worker("--queues", queue)
    await asyncio.sleep(1.0)
    first.signal(signal.SIGKILL)
    first.wait(10)
    second = start_worker("--queues", queue)
    [row] = await ledger.wait_for(lambda rows: len(rows) == 1, 15)
    assert row["t"] >= dispatched + 3 - 0.05
    assert row["t"] <= dispatched + 3 + MAINTENANCE_SECONDS + 3
    assert row["pid"] == second.pid
    await asyncio.sleep(MAINTENANCE_SECONDS * 2)
    assert len(ledger.rows()) == 1
    second.signal(signal.SIGTERM)
    assert second.wait(10) == 0


@on_brokers
async def test_tasks_due_before_the_worker_started_run_promptly(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    await dispatch_many(
        [tasks_mod.record(ledger.key, str(n)).on_queue(queue).delay(0.5) for n in range(5)]
    )
    await asyncio.sleep(1.5)
    worker = start_worker("--queues", queue)
    rows = await ledger.wait_for(lambda rows: len(rows) == 5, 15)
    # from the worker's own "started" line: its start-up time (imports, a slow machine) is
    # not what this checks
    started = worker.logged_at(" started: driver=")
    assert max(r["t"] for r in rows) <= started + MAINTENANCE_SECONDS + 1.5
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
