"""Queue statistics and live workers through the monitoring API (memory driver)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from asynctasq import MonitoringService, configured
from asynctasq.drivers.memory import MemoryDriver
from asynctasq.drivers.protocol import QueueSizes, WorkerInfo
from asynctasq.errors import ConfigError
from asynctasq.handle import Handle
from asynctasq.monitoring import QueueStats, completed_tasks, snapshot
from asynctasq.tasks import task
from tests.unit.worker.conftest import work

pytestmark = pytest.mark.anyio

DEFAULTS = {"queue": "q", "retry_delay": 0, "retry_strategy": "fixed", "max_attempts": 1}


@pytest.fixture
async def handle() -> AsyncIterator[Handle]:
    settings = {"task_defaults": DEFAULTS, "repository": {"keep_completed_tasks": True}}
    async with configured(driver="memory", **settings) as opened:
        yield opened


@task(queue="q")
async def ok(n: int) -> None: ...


@task(queue="q")
async def boom() -> None:
    raise RuntimeError("boom")


async def test_statistics_match_the_broker_after_a_scripted_run(handle: Handle) -> None:
    for n in range(3):
        await ok(n).dispatch()
    await boom().dispatch()
    await work(handle, tasks=[ok, boom], max_tasks=4)
    await ok(9).dispatch()  # left ready
    await ok(10).delay(3600).dispatch()  # delayed
    await ok(11).on_queue("other").dispatch()
    driver = await handle.driver()
    leased = await driver.dequeue(["other"], limit=1, wait_seconds=0)  # in flight
    assert len(leased) == 1

    found = await snapshot(handle)

    assert found.driver == "memory"
    assert found.queues == (
        QueueStats("other", ready=0, delayed=0, in_flight=1, dead=0, completed=0),
        QueueStats("q", ready=1, delayed=1, in_flight=0, dead=1, completed=3),
    )
    for stats in found.queues:
        sizes = await driver.sizes(stats.queue)
        assert QueueSizes(stats.ready, stats.delayed, stats.in_flight, stats.dead) == sizes
    assert found.workers == ()  # the worker stopped and unregistered
    assert found.notes == ()
    assert [t.task_name for t in await completed_tasks(handle, "q")] == [ok.name] * 3


async def test_named_queues_are_reported_in_the_given_order_even_when_empty(
    handle: Handle,
) -> None:
    found = await snapshot(handle, queues=["zeta", "alpha"])
    assert [q.queue for q in found.queues] == ["zeta", "alpha"]
    assert found.queues[0] == QueueStats("zeta", 0, 0, 0, 0, 0)


async def test_discovery_includes_the_default_queue_and_those_live_workers_serve(
    handle: Handle,
) -> None:
    driver = await handle.driver()
    assert isinstance(driver, MemoryDriver)
    me = WorkerInfo("w-1", "h", 1, ("emails", "q"), 2, "memory", 1.0)
    await driver.record_heartbeat(me, ttl_seconds=60)
    found = await snapshot(handle)
    assert [q.queue for q in found.queues] == ["emails", "q"]
    assert found.workers is not None
    assert [w.worker_id for w in found.workers] == ["w-1"]


async def test_the_service_offers_the_same_calls_bound_to_a_handle(handle: Handle) -> None:
    await ok(1).dispatch()
    monitor = MonitoringService()  # the current handle
    assert monitor.handle is handle
    assert (await monitor.queue_stats("q")).ready == 1
    assert (await monitor.snapshot(["q"])).queues[0].ready == 1
    assert await monitor.workers() == []
    assert await monitor.completed_tasks("q") == []


class Minimal:
    """A driver with only the required protocol: no catalog, registry or completed store."""

    name = "minimal"
    maintenance_interval_seconds = None
    max_message_bytes = None

    async def sizes(self, queue: str) -> QueueSizes:
        return QueueSizes(2, 0, 0, 0)

    async def close(self) -> None: ...

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


@pytest.fixture
def minimal(handle: Handle, monkeypatch: pytest.MonkeyPatch) -> Minimal:
    driver = Minimal()

    async def only_minimal(name: str | None = None) -> Any:
        return driver

    monkeypatch.setattr(handle, "driver", only_minimal)
    return driver


@pytest.mark.usefixtures("minimal")
async def test_a_driver_without_the_optional_protocols_degrades_with_notes(
    handle: Handle,
) -> None:
    found = await snapshot(handle)
    assert found.queues == (QueueStats("q", 2, 0, 0, 0, None),)
    assert found.workers is None
    assert found.notes == (
        "the minimal driver does not record live workers",
        "the minimal driver cannot list its queues: showing the default queue and those "
        "live workers serve; name others with queues=[...] (--queues)",
        "the minimal driver does not report kept completed tasks",
    )


@pytest.mark.usefixtures("minimal")
async def test_completed_tasks_of_a_driver_that_keeps_none_is_a_clear_error(
    handle: Handle,
) -> None:
    with pytest.raises(ConfigError, match="the minimal driver does not report kept completed"):
        await completed_tasks(handle, "q")
