"""Events from dispatch and the worker, on the memory driver (SPEC §6)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from asynctasq import init
from asynctasq.drivers.memory import MemoryDriver
from asynctasq.events.records import EventType, TaskEvent, WorkerEvent, utc
from asynctasq.handle import Handle
from asynctasq.tasks import task
from asynctasq.worker import Shutdown
from tests.unit.worker.conftest import DEFAULTS, dead, work

pytestmark = pytest.mark.anyio

T = EventType


class Collector:
    def __init__(self) -> None:
        self.events: list[TaskEvent | WorkerEvent] = []
        self.changed = asyncio.Event()

    async def emit(self, event: TaskEvent | WorkerEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait_for(self, kind: EventType) -> TaskEvent | WorkerEvent:
        with anyio.fail_after(10):
            while True:
                for event in self.events:
                    if event.event_type is kind:
                        return event
                self.changed.clear()
                await self.changed.wait()

    def kinds(self) -> list[str]:
        return [e.event_type.value for e in self.events]

    def of_task(self, task_id: str) -> list[TaskEvent]:
        return [e for e in self.events if isinstance(e, TaskEvent) and e.task_id == task_id]


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
async def handle(collector: Collector) -> AsyncIterator[Handle]:
    config = {"driver": "memory", "task_defaults": DEFAULTS}
    async with init(config, event_emitters=[collector], env_file=None) as opened:
        yield opened


async def settled(handle: Handle) -> None:
    """Let the event lanes deliver what is queued (closing the bus flushes it)."""
    bus = handle.event_bus()
    await bus.aclose()
    handle._for_running_loop().bus = None


async def test_a_task_failing_once_then_succeeding_gives_every_event_in_order(
    handle: Handle, collector: Collector
) -> None:
    runs: list[int] = []

    @task(queue="q", max_attempts=3)
    async def flaky(n: int) -> None:
        runs.append(n)
        if len(runs) == 1:
            raise ValueError("first time")

    task_id = await flaky(5).correlation_id("req-7").dispatch()
    stats = await work(handle, tasks=[flaky], max_tasks=2)
    await settled(handle)
    assert stats.succeeded == 1
    assert collector.kinds() == [
        "task_enqueued",
        "worker_online",
        "task_started",
        "task_retrying",
        "task_started",
        "task_completed",
        "worker_offline",
    ]
    enqueued, started1, retrying, started2, completed = collector.of_task(task_id)
    worker_id = retrying.worker_id
    assert worker_id is not None
    assert worker_id == stats.worker_id
    assert (enqueued.worker_id, enqueued.attempt, enqueued.delay_seconds) == (None, 1, 0.0)
    assert {e.task_name for e in collector.of_task(task_id)} == {flaky.name}
    assert {e.queue for e in collector.of_task(task_id)} == {"q"}
    assert {e.correlation_id for e in collector.of_task(task_id)} == {"req-7"}
    assert {e.max_attempts for e in collector.of_task(task_id)} == {3}
    assert (started1.attempt, started1.duration_ms, started1.started_at) == (
        1,
        None,
        started1.timestamp,
    )
    assert (retrying.attempt, retrying.error_type, retrying.error_message) == (
        1,
        "ValueError",
        "first time",
    )
    assert retrying.delay_seconds == 0
    assert retrying.duration_ms is not None
    assert retrying.duration_ms >= 0
    assert (started2.attempt, completed.attempt, completed.error_type) == (2, 2, None)
    assert completed.duration_ms is not None
    assert completed.started_at is not None
    assert completed.started_at <= completed.timestamp
    for event in collector.of_task(task_id):
        assert event.timestamp.utcoffset() is not None
        assert event.timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert event.dispatched_at == enqueued.dispatched_at
    online, offline = (e for e in collector.events if isinstance(e, WorkerEvent))
    assert (online.worker_id, online.queues, online.concurrency, online.driver) == (
        worker_id,
        ("q",),
        4,
        "memory",
    )
    assert (offline.processed, offline.failed, offline.active) == (2, 1, 0)
    assert offline.uptime_seconds >= 0


async def test_a_dead_lettered_task_gives_task_failed_with_the_reason(
    handle: Handle, collector: Collector
) -> None:
    @task(queue="q", max_attempts=1)
    async def doomed() -> None:
        raise KeyError("x")

    task_id = await doomed().dispatch()
    await work(handle, tasks=[doomed], max_tasks=1)
    await settled(handle)
    failed = collector.of_task(task_id)[-1]
    assert (failed.event_type, failed.attempt, failed.error_type, failed.error_message) == (
        T.TASK_FAILED,
        1,
        "KeyError",
        "'x'",
    )
    assert failed.duration_ms is not None


async def test_an_unknown_task_gives_task_failed_naming_it(
    handle: Handle, collector: Collector
) -> None:
    @task(queue="q")
    async def elsewhere() -> None: ...

    @task(queue="q")
    async def known() -> None: ...

    task_id = await elsewhere().dispatch()
    await work(handle, tasks=[known], max_tasks=1)
    await settled(handle)
    failed = collector.of_task(task_id)[-1]
    assert failed.event_type is T.TASK_FAILED
    assert failed.error_type == "TaskNotFoundError"
    assert elsewhere.name in (failed.error_message or "")


async def test_an_emitter_that_raises_fails_no_task_and_no_dispatch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def emit(self, event: Any) -> None:
            raise RuntimeError("monitoring is down")

    ran: list[int] = []

    @task(queue="q")
    async def fine(n: int) -> None:
        ran.append(n)

    async with init({"driver": "memory"}, event_emitters=[Broken()], env_file=None) as handle:
        ids = [await fine(n).dispatch() for n in range(3)]
        stats = await work(handle, tasks=[fine], max_tasks=3)
    assert len(ids) == 3
    assert sorted(ran) == [0, 1, 2]
    assert (stats.succeeded, stats.retried, stats.dead_lettered) == (3, 0, 0)
    assert "event emitter Broken failed on" in caplog.text
    assert "RuntimeError: monitoring is down" in caplog.text


async def test_a_stuck_emitter_does_not_hold_tasks_back_its_events_are_dropped_and_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("asynctasq.events.bus.CAPACITY", 4)
    monkeypatch.setattr("asynctasq.events.bus.CLOSE_SECONDS", 0.01)
    release = asyncio.Event()

    class Stuck:
        async def emit(self, event: Any) -> None:
            await release.wait()

    @task(queue="q")
    async def quick() -> None: ...

    async with init({"driver": "memory"}, event_emitters=[Stuck()], env_file=None) as handle:
        for _ in range(30):
            await quick().dispatch()
        stats = await work(handle, tasks=[quick], max_tasks=30)
        bus = handle.event_bus()
        assert stats.succeeded == 30
        assert bus.dropped > 0
        release.set()
    assert "event emitter Stuck is behind" in caplog.text


async def test_no_event_is_built_while_only_the_silent_logging_emitter_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[Any] = []
    import asynctasq.worker.telemetry as telemetry

    original = telemetry.task_event
    monkeypatch.setattr(
        telemetry, "task_event", lambda *a, **k: built.append(a) or original(*a, **k)
    )

    @task(queue="q")
    async def quiet() -> None: ...

    logging.getLogger("asynctasq.events").setLevel(logging.INFO)
    try:
        async with init({"driver": "memory"}, env_file=None) as handle:
            await quiet().dispatch()
            await work(handle, tasks=[quiet], max_tasks=1)
    finally:
        logging.getLogger("asynctasq.events").setLevel(logging.NOTSET)
    assert built == []


async def test_heartbeats_register_the_worker_while_it_runs(
    collector: Collector,
) -> None:
    config = {"driver": "memory", "events": {"heartbeat_interval": 0.1}}
    async with init(config, event_emitters=[collector], env_file=None) as handle:
        driver = await handle.driver()
        assert isinstance(driver, MemoryDriver)

        @task(queue="q")
        async def idle() -> None: ...

        shutdown = Shutdown()
        worker = asyncio.ensure_future(work(handle, tasks=[idle], queues=["q"], shutdown=shutdown))
        beat = await collector.wait_for(T.WORKER_HEARTBEAT)
        [live] = await driver.live_workers()
        assert isinstance(beat, WorkerEvent)
        assert (live.worker_id, live.queues, live.driver) == (beat.worker_id, ("q",), "memory")
        assert live.last_heartbeat > 0
        shutdown.request()
        await worker
        assert await driver.live_workers() == []
    assert collector.kinds()[-1] == "worker_offline"


async def test_kept_completed_tasks_are_recorded_after_the_ack(collector: Collector) -> None:
    config = {"driver": "memory", "repository": {"keep_completed_tasks": True}}

    @task(queue="q")
    async def keep(n: int) -> None: ...

    async with init(config, event_emitters=[collector], env_file=None) as handle:
        ids = [await keep(n).dispatch() for n in range(3)]
        await work(handle, tasks=[keep], max_tasks=3)
        driver = await handle.driver()
        assert isinstance(driver, MemoryDriver)
        kept = await driver.completed_tasks("q")
    assert sorted(t.task_id for t in kept) == sorted(ids)
    assert {(t.task_name, t.attempt, t.status) for t in kept} == {(keep.name, 1, "completed")}
    assert all(t.started_at <= t.completed_at for t in kept)


async def test_dispatch_many_emits_one_enqueued_event_per_task_with_its_delay(
    handle: Handle, collector: Collector
) -> None:
    from asynctasq import dispatch_many

    @task(queue="q")
    async def later() -> None: ...

    ids = await dispatch_many([later(), later().delay(30)])
    await settled(handle)
    assert [(e.task_id, e.delay_seconds) for e in collector.events] == [
        (ids[0], 0.0),
        (ids[1], 30.0),
    ]
    assert await dead(handle) == []


async def test_an_emitter_whose_enabled_raises_fails_no_dispatch_and_no_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class GateBroken:
        def enabled(self) -> bool:
            raise RuntimeError("enabled is broken")

        async def emit(self, event: Any) -> None: ...

    ran: list[int] = []

    @task(queue="q")
    async def fine(n: int) -> None:
        ran.append(n)

    async with init({"driver": "memory"}, event_emitters=[GateBroken()], env_file=None) as handle:
        ids = [await fine(n).dispatch() for n in range(3)]  # each stored once, none raised
        assert (await (await handle.driver()).sizes("q")).ready == 3
        stats = await work(handle, tasks=[fine], max_tasks=3)
    assert len(set(ids)) == 3
    assert sorted(ran) == [0, 1, 2]
    assert (stats.succeeded, stats.retried, stats.dead_lettered) == (3, 0, 0)
    assert "event emitter GateBroken failed on 1 event(s) in enabled()" in caplog.text


async def test_completed_carries_the_result_and_started_at_is_that_of_task_started(
    handle: Handle, collector: Collector
) -> None:
    calls: list[int] = []

    @task(queue="q", max_attempts=2)
    async def sends(n: int) -> dict[str, Any]:
        calls.append(n)
        if len(calls) == 1:
            raise ValueError("once")
        return {"sent": n, "long": "x" * 1000}

    @task(queue="q")
    def plain() -> list[int]:
        return list(range(100))

    task_id = await sends(3).dispatch()
    plain_id = await plain().dispatch()
    await work(handle, tasks=[sends, plain], max_tasks=3, concurrency=1)
    await settled(handle)
    enqueued, started1, retrying, started2, completed = collector.of_task(task_id)
    assert retrying.started_at == started1.started_at == started1.timestamp
    assert completed.started_at == started2.started_at == started2.timestamp
    assert completed.result == "{'long': '" + "x" * 37 + "..." + "x" * 38 + "', 'sent': 3}"
    assert (enqueued.result, started2.result, retrying.result) == (None, None, None)
    assert collector.of_task(plain_id)[-1].result == "[0, 1, 2, 3, 4, 5, ...]"


async def test_task_enqueued_is_stamped_before_the_store_so_it_precedes_task_started(
    handle: Handle, collector: Collector
) -> None:
    @task(queue="q")
    async def quick() -> None: ...

    driver = await handle.driver()
    stored_at: list[float] = []
    store = driver.enqueue

    async def enqueue(item: Any) -> None:  # a worker could take it from here on
        await store(item)
        stored_at.append(time.time())

    driver.enqueue = enqueue  # type: ignore[method-assign]
    task_id = await quick().dispatch()
    await work(handle, tasks=[quick], max_tasks=1)
    await settled(handle)
    enqueued, started, _ = collector.of_task(task_id)
    assert enqueued.dispatched_at is not None
    assert enqueued.dispatched_at <= enqueued.timestamp <= utc(stored_at[0])
    assert enqueued.timestamp <= started.timestamp


async def test_an_undecodable_payload_gives_task_failed_with_null_for_what_is_unknown(
    handle: Handle, collector: Collector
) -> None:
    from asynctasq.drivers.protocol import Outgoing

    @task(queue="q")
    async def some() -> None: ...

    driver = await handle.driver()
    await driver.enqueue(Outgoing(queue="q", body=b"not a task", visibility_timeout_seconds=30))
    await work(handle, tasks=[some], max_tasks=1)
    await settled(handle)
    [failed] = [e for e in collector.events if e.event_type is T.TASK_FAILED]
    assert isinstance(failed, TaskEvent)
    assert (failed.task_id, failed.task_name, failed.max_attempts) == (None, None, None)
    assert (failed.correlation_id, failed.dispatched_at, failed.started_at) == (None, None, None)
    assert failed.error_type == "SerializationError"
    assert failed.attempt == 1


@pytest.mark.parametrize("max_attempts", [2, 1])
async def test_a_task_cancelled_at_shutdown_gives_task_cancelled_then_its_outcome(
    handle: Handle, collector: Collector, max_attempts: int
) -> None:
    running = asyncio.Event()

    @task(queue="q", max_attempts=max_attempts)
    async def endless() -> None:
        running.set()
        await asyncio.sleep(60)

    task_id = await endless().dispatch()
    shutdown = Shutdown()
    worker = asyncio.get_running_loop().create_task(
        work(handle, tasks=[endless], shutdown=shutdown, shutdown_grace_seconds=0)
    )
    await running.wait()
    shutdown.request()
    stats = await worker
    await settled(handle)
    _, started, cancelled, outcome = collector.of_task(task_id)
    assert cancelled.event_type is T.TASK_CANCELLED
    assert cancelled.error_type == "TaskCancelledError"
    assert (cancelled.error_message or "").startswith(
        f"cancelled at shutdown: the worker stopped during attempt 1 of {max_attempts}"
    )
    assert cancelled.started_at == started.started_at
    assert cancelled.duration_ms is not None
    assert outcome.event_type is (T.TASK_RETRYING if max_attempts == 2 else T.TASK_FAILED)
    assert (outcome.error_type, outcome.started_at) == ("TaskCancelledError", started.started_at)
    assert (stats.retried, stats.dead_lettered) == (max_attempts - 1, 2 - max_attempts)
    offline = collector.events[-1]
    assert isinstance(offline, WorkerEvent)
    assert (offline.processed, offline.failed) == (1, 1)  # a failed delivery, as documented


async def test_a_process_task_result_is_the_value_its_pool_process_sent_back() -> None:
    from asynctasq.drivers.protocol import Delivery
    from asynctasq.message import TaskMessage
    from asynctasq.tasks.infrastructure.frames import Done
    from asynctasq.worker.execute import run_process
    from asynctasq.worker.pool import WorkerPool
    from asynctasq.worker.state import new_job

    class OneProcess:  # the manager's seam: it hands back what the pool process returned
        async def run(self, frame: Any, seconds: Any, started: Any) -> Done:
            started()
            return Done({"rows": 3})

    message = TaskMessage("t1", "m:f", (), {}, "q", 1, 1, "fixed", 0.0, None, 60.0, None, 0.0)
    job = new_job(Delivery("q", b"", None), 0.0)
    pool = WorkerPool(manager=OneProcess(), owned=False)  # type: ignore[arg-type]
    assert await run_process(pool, message, job=job) is None
    assert job.result == {"rows": 3}
