"""Statistics, live workers and kept completed tasks through a real worker, per driver.

PostgreSQL, MySQL and SQLite (on migrated tables of their own) and SQS (moto, queue names of
its own prefix); Redis has its own module. Each test runs workers the way a user does and
reads the result back with ``snapshot`` and ``completed_tasks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asynctasq import configured, init, run_worker, task
from asynctasq.config.records import Config
from asynctasq.config.resolve import resolve
from asynctasq.drivers.sqs_client import REGISTRY_QUEUE
from asynctasq.events.records import EventType, WorkerEvent
from asynctasq.monitoring import QueueStats, completed_tasks, snapshot
from asynctasq.worker import Shutdown
from tests.integration.sql_servers import SQL_DRIVERS, migrated
from tests.integration.sqs_server import ACCOUNT, delete_queues, moto_endpoint, sqs_settings

pytestmark = pytest.mark.anyio

DRIVERS = (*SQL_DRIVERS, "sqs")

healthy: list[bool] = []


@task(max_attempts=1)
async def mail(n: int) -> None:
    if not healthy:
        raise ConnectionError("the mail server is down")


@contextlib.asynccontextmanager
async def driver_config(name: str, tmp_path: Path, **more: Any) -> AsyncIterator[Config]:
    """Yield a config for ``name`` on storage no other test shares."""
    if name == "sqs":
        endpoint = moto_endpoint()
        stem = f"m{uuid.uuid4().hex[:12]}"
        sqs = sqs_settings(endpoint, queue_url_prefix=f"{endpoint}/{ACCOUNT}/{stem}-")
        yield resolve({"driver": "sqs", "sqs": sqs, **more}, environ={}).config
        names = ("default", "emails", REGISTRY_QUEUE)
        delete_queues(endpoint, [f"{stem}-{name}" for name in names])
        return
    async with migrated(name, tmp_path, more) as (config, _):
        yield config


@pytest.fixture(autouse=True)
def broken() -> None:
    healthy.clear()


@pytest.mark.parametrize("name", DRIVERS)
async def test_statistics_match_the_broker_after_a_scripted_run(name: str, tmp_path: Path) -> None:
    keep = {"repository": {"keep_completed_tasks": True}}
    async with driver_config(name, tmp_path, **keep) as config, configured(config) as handle:
        healthy.append(True)
        for n in range(3):
            await mail(n).on_queue("emails").dispatch()
        await run_worker(handle, tasks=[mail], queues=["emails"], max_tasks=3, handle_signals=False)
        healthy.clear()
        await mail(3).on_queue("emails").dispatch()
        await run_worker(handle, tasks=[mail], queues=["emails"], max_tasks=1, handle_signals=False)
        await mail(4).on_queue("emails").dispatch()  # ready
        await mail(5).on_queue("emails").delay(3600).dispatch()  # delayed
        await mail(6).on_queue("emails").dispatch()
        driver = await handle.driver()
        held = await driver.dequeue(["emails"], limit=1, wait_seconds=1)  # now in flight
        assert len(held) == 1

        found = await snapshot(handle)
        kept = await completed_tasks(handle, "emails")
        await driver.release(held)
    assert found.notes == ()
    assert found.workers == ()
    assert QueueStats("emails", ready=1, delayed=1, in_flight=1, dead=1, completed=3) in (
        found.queues
    )
    assert [t.task_name for t in kept] == [mail.name] * 3


@pytest.mark.parametrize("name", DRIVERS)
async def test_a_running_worker_is_listed_with_its_heartbeat_and_gone_after(
    name: str, tmp_path: Path
) -> None:
    online = asyncio.Event()

    class Watch:
        async def emit(self, event: Any) -> None:
            if isinstance(event, WorkerEvent) and event.event_type is EventType.WORKER_ONLINE:
                online.set()

    async with (
        driver_config(name, tmp_path, events={"heartbeat_interval": 0.2}) as config,
        init(config, event_emitters=[Watch()], env_file=None) as handle,
    ):
        shutdown = Shutdown()
        worker = asyncio.ensure_future(
            run_worker(
                handle, tasks=[mail], queues=["emails"], shutdown=shutdown, handle_signals=False
            )
        )
        await asyncio.wait_for(online.wait(), 10)
        found = await snapshot(handle, queues=["emails"])
        shutdown.request()
        stats = await worker
        after = await snapshot(handle, queues=["emails"])
    assert [(w.worker_id, w.queues, w.driver) for w in found.workers or ()] == [
        (stats.worker_id, ("emails",), name)
    ]
    [listed] = found.workers or ()
    assert found.taken_at - 60 < listed.last_heartbeat <= found.taken_at + 1
    assert after.workers == ()
