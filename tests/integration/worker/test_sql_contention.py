"""Many workers on one SQL queue: lock contention never loses or repeats a task (C34).

Four worker processes at concurrency 8 share a queue while a producer keeps dispatching;
half the tasks fail once and are retried at once (``retry_delay=0``), so claims, retries
and acks of the same rows race. On MySQL, deadlocks (1213) and lock-wait timeouts (1205)
are retried inside the driver: no task fails, runs twice or is lost because of one, and
no traceback reaches the logs.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

import pytest

from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many
from tests.integration.worker import storm_tasks
from tests.integration.worker.conftest import Ledger, Worker
from tests.integration.worker.targets import Sizes

pytestmark = pytest.mark.anyio

TOTAL = 1000
WORKERS = 4


@pytest.mark.parametrize("broker_name", ["mysql", "postgres", "sqlite"], indirect=True)
async def test_a_retry_storm_completes_every_task_exactly_once(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    queue_sizes: Sizes,
) -> None:
    args = ("--import", storm_tasks.__name__, "--queues", queue, "--concurrency", "8")
    workers = [start_worker(*args, "--log-level", "warning") for _ in range(WORKERS)]
    ids: list[str] = []
    for start in range(0, TOTAL, 100):  # the producer keeps dispatching while they run
        batch = [
            storm_tasks.fail_once(ledger.key, n % 2 == 0).on_queue(queue)
            for n in range(start, start + 100)
        ]
        ids += await dispatch_many(batch)
    await ledger.wait_for(lambda rows: len(rows) >= 2 * TOTAL + TOTAL // 2, 120)
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(20) == 0
    ends = Counter(row["task_id"] for row in ledger.rows("end"))
    assert ends == Counter(dict.fromkeys(ids, 1))  # each completed exactly once
    assert len(ledger.rows("start")) == TOTAL + TOTAL // 2  # attempts: one more per failure
    assert await queue_sizes(queue) == {"ready": 0, "in_flight": 0, "delayed": 0, "dead": 0}
    logs = "".join(worker.output() for worker in workers)
    assert "Traceback" not in logs
    assert "failed:" not in logs  # no DriverError reached the worker (e.g. "mysql ack failed:")
