"""A running task keeps its lease however long it runs (FIELD-CASES C06)."""

from __future__ import annotations

import asyncio
import time

import pytest

from asynctasq.errors import DriverError
from asynctasq.handle import Handle
from asynctasq.tasks import task
from asynctasq.worker.lease import due_jobs, next_tick
from asynctasq.worker.state import new_job
from tests.unit.worker.conftest import sizes, work

pytestmark = pytest.mark.anyio


@pytest.mark.usefixtures("short_leases")
async def test_a_long_async_task_is_never_handed_out_twice(handle: Handle) -> None:
    runs: list[int] = []

    @task(visibility_timeout=0.15)
    async def long_async() -> None:
        runs.append(1)
        await asyncio.sleep(0.6)  # four lease lengths; the memory driver recovers every 0.05 s

    await long_async().dispatch()
    stats = await work(handle, tasks=[long_async], max_tasks=1, concurrency=4)
    assert runs == [1]
    assert stats.succeeded == 1
    assert (await sizes(handle)).ready == 0


@pytest.mark.usefixtures("short_leases")
async def test_a_long_sync_task_is_never_handed_out_twice(handle: Handle) -> None:
    runs: list[int] = []

    @task(visibility_timeout=0.15)
    def long_sync() -> None:
        runs.append(1)
        time.sleep(0.6)

    await long_sync().dispatch()
    await work(handle, tasks=[long_sync], max_tasks=1, concurrency=4)
    assert runs == [1]


def test_a_lease_is_renewed_after_a_third_of_its_length() -> None:
    from asynctasq.drivers.protocol import Delivery

    job = new_job(Delivery("q", b"", receipt=1, visibility_timeout_seconds=30.0), now=100.0)
    assert (job.extend_at, job.deadline) == (110.0, 130.0)
    assert due_jobs({job}, 109.9) == []
    assert due_jobs({job}, 110.0) == [job]
    assert next_tick({job}, 109.5) == pytest.approx(0.5)
    assert next_tick(set(), 0.0) == 1.0


@pytest.mark.usefixtures("short_leases")
@pytest.mark.parametrize("outcome", ["succeeds", "fails"])
async def test_a_task_delivered_again_while_it_still_runs_here_is_not_run_beside_itself(
    handle: Handle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, outcome: str
) -> None:
    # renewals fail (the broker unreachable for longer than the lease): the lease lapses and
    # the driver hands the still-running task out again, to this same worker
    driver = await handle.driver()

    async def unreachable(deliveries: object) -> None:
        raise DriverError("memory", "extend", "unreachable (test)")

    monkeypatch.setattr(driver, "extend", unreachable)
    running = 0
    overlapped: list[bool] = []
    runs: list[int] = []

    @task(visibility_timeout=0.1, max_attempts=3)
    async def long_job() -> None:
        nonlocal running
        running += 1
        overlapped.append(running > 1)
        runs.append(1)
        try:
            await asyncio.sleep(0.5)  # five lease lengths
        finally:
            running -= 1
        if outcome == "fails" and len(runs) == 1:
            raise RuntimeError("first run fails")

    await long_job().dispatch()
    with caplog.at_level("WARNING", logger="asynctasq.worker"):
        await work(handle, tasks=[long_job], max_tasks=2, concurrency=4)
    assert overlapped == [False] * len(runs)  # never two runs at once
    assert "delivered again while this worker still runs it" in caplog.text
    if outcome == "succeeds":
        assert runs == [1]  # the second delivery was acked without running
        assert "acked without running again" in caplog.text
    else:
        assert runs == [1, 1]  # the second delivery ran, after the first had failed
    assert (await sizes(handle)).in_flight == 0
