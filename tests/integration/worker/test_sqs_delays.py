"""C11 through real workers on moto's SQS, with the hop limit scaled down from 900 s."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from asynctasq.handle import Handle, configured
from tests.integration.sqs_server import delete_queues, moto_endpoint, sqs_env, sqs_settings
from tests.integration.worker import tasks_mod
from tests.integration.worker.conftest import REPO_ROOT, Ledger, Worker

pytestmark = pytest.mark.anyio


@pytest.fixture
def endpoint() -> str:
    return moto_endpoint()


@pytest.fixture
def sqs_queue(endpoint: str) -> Iterator[str]:
    name = f"d-{uuid.uuid4().hex[:12]}"
    yield name
    delete_queues(endpoint, [name])


def handle(endpoint: str, hop: int) -> contextlib.AbstractAsyncContextManager[Handle]:
    """A handle on moto whose delays over ``hop`` seconds travel in hops."""
    return configured(driver="sqs", sqs=sqs_settings(endpoint, delay_hop_seconds=hop))


def env(endpoint: str, hop: int) -> dict[str, str]:
    """The environment of a worker on moto that re-sends hops of at most ``hop`` seconds."""
    found = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    found.update(PYTHONPATH=str(REPO_ROOT), LEDGER_URL=tasks_mod.LEDGER_URL)
    found.update(sqs_env(endpoint, ASYNCTASQ_SQS_DELAY_HOP_SECONDS=str(hop)))
    return found


async def test_a_delay_longer_than_a_hop_runs_once_and_never_early(
    sqs_queue: str, endpoint: str, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    # C11.2: the 900 s limit scaled to a 5 s hop; delay 12 s: t_start in [11.5, 17], once.
    async with handle(endpoint, 5):
        dispatched = time.time()
        await tasks_mod.record(ledger.key, "late").on_queue(sqs_queue).delay(12).dispatch()
    workers = [start_worker("--queues", sqs_queue, env=env(endpoint, 5)) for _ in range(2)]
    [row] = await ledger.wait_for(lambda rows: len(rows) == 1, 30)
    assert dispatched + 12 - 0.5 <= row["t"] <= dispatched + 12 + 5
    await asyncio.sleep(2)
    assert len(ledger.rows()) == 1
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait(10) == 0


async def test_a_backoff_longer_than_a_hop_is_retried_on_time_then_dead_lettered(
    sqs_queue: str, endpoint: str, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    # C11.3 scaled: exponential backoff 1, 2, 4 s (the last over a 2 s hop); 4 attempts.
    async with handle(endpoint, 2) as sqs_handle:
        pending = tasks_mod.failing(ledger.key).on_queue(sqs_queue).max_attempts(4)
        task_id = await pending.retry_strategy("exponential").retry_after(1).dispatch()
        await check_retries(sqs_handle, sqs_queue, task_id, endpoint, ledger, start_worker)


async def check_retries(
    sqs_handle: Handle,
    sqs_queue: str,
    task_id: str,
    endpoint: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
) -> None:
    worker = start_worker("--queues", sqs_queue, env=env(endpoint, 2))
    rows = await ledger.wait_for(lambda rows: len(rows) == 4, 30)
    starts = [row["t"] for row in rows]
    assert [row["attempt"] for row in rows] == [1, 2, 3, 4]
    for gap, backoff in zip([b - a for a, b in itertools.pairwise(starts)], [1, 2, 4], strict=True):
        assert gap >= backoff - 0.05  # never early
    driver = await sqs_handle.driver()
    deadline = time.monotonic() + 10
    while not (found := await driver.dead_letters(sqs_queue)):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the task never reached the dead-letter queue"
        await asyncio.sleep(0.2)
    [entry] = found
    assert (entry.task_id, entry.error_type, entry.attempts) == (task_id, "ValueError", 4)
    await asyncio.sleep(1)
    assert len(ledger.rows()) == 4
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
