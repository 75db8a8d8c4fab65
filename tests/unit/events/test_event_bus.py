"""The event bus: emitters get every event in order; a slow or broken one costs only events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from asynctasq.events.bus import EventBus
from asynctasq.events.emitters import LoggingEventEmitter
from asynctasq.events.records import EventType, TaskEvent

pytestmark = pytest.mark.anyio

AT = datetime(2025, 1, 31, tzinfo=UTC)


def event(n: int) -> TaskEvent:
    return TaskEvent(EventType.TASK_STARTED, f"t{n}", "m:f", "q", AT)


class AsyncCollector:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.closed = False
        self.grew = asyncio.Event()

    async def emit(self, e: TaskEvent) -> None:
        self.seen.append(e.task_id)
        self.grew.set()

    async def wait_for(self, count: int) -> None:
        while len(self.seen) < count:
            self.grew.clear()
            await self.grew.wait()

    async def close(self) -> None:
        self.closed = True


class SyncCollector:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.threads: set[str] = set()

    def emit(self, e: TaskEvent) -> None:
        self.seen.append(e.task_id)
        self.threads.add(threading.current_thread().name)


class Batcher:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def emit(self, e: TaskEvent) -> None:  # never used: emit_many is preferred
        raise AssertionError("emit_many should be used")

    async def emit_many(self, events: list[TaskEvent]) -> None:
        self.batches.append([e.task_id for e in events])


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    async def emit(self, e: TaskEvent) -> None:
        self.calls += 1
        raise RuntimeError("emitter is down")


class Stuck:
    """Blocks on the first event until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.seen: list[str] = []

    async def emit(self, e: TaskEvent) -> None:
        self.entered.set()
        await self.release.wait()
        self.seen.append(e.task_id)


async def test_every_emitter_gets_every_event_in_order_and_close_delivers_the_rest() -> None:
    coro, plain = AsyncCollector(), SyncCollector()
    bus = EventBus([coro, plain])
    for n in range(50):
        bus.publish(event(n))
    await bus.aclose()
    expected = [f"t{n}" for n in range(50)]
    assert coro.seen == expected
    assert plain.seen == expected
    assert threading.current_thread().name not in plain.threads  # plain ones run in a thread
    assert (bus.dropped, bus.failed) == (0, 0)


async def test_emit_many_receives_batches_in_order() -> None:
    batcher = Batcher()
    bus = EventBus([batcher])
    bus.publish_many(event(n) for n in range(5))
    await bus.aclose()
    assert [i for batch in batcher.batches for i in batch] == [f"t{n}" for n in range(5)]


async def test_a_broken_emitter_loses_its_events_others_get_them_and_it_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, good = Broken(), AsyncCollector()
    bus = EventBus([broken, good])
    with caplog.at_level(logging.WARNING, logger="asynctasq.events"):
        for n in range(3):
            bus.publish(event(n))
        await bus.aclose()
    assert good.seen == ["t0", "t1", "t2"]
    assert (broken.calls, bus.failed, bus.dropped) == (3, 3, 0)
    [warning] = [r for r in caplog.records if "failed on" in r.getMessage()]
    assert "event emitter Broken failed on" in warning.getMessage()
    assert "RuntimeError: emitter is down" in warning.getMessage()


async def test_a_stuck_emitter_never_blocks_publish_drops_beyond_capacity_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stuck, good = Stuck(), AsyncCollector()
    bus = EventBus([stuck, good], capacity=5)
    with caplog.at_level(logging.WARNING, logger="asynctasq.events"):
        bus.publish(event(0))
        await stuck.entered.wait()  # holding event 0; its lane is empty again
        for n in range(1, 21):
            bus.publish(event(n))  # returns at once every time
            await good.wait_for(n + 1)  # the good emitter's lane keeps up
        assert bus.dropped == 15
        stuck.release.set()
        await bus.aclose()
    assert stuck.seen == ["t0", "t1", "t2", "t3", "t4", "t5"]
    assert good.seen == [f"t{n}" for n in range(21)]
    [drops] = [r.getMessage() for r in caplog.records if "is behind" in r.getMessage()]
    assert drops.startswith("event emitter Stuck is behind: 1 event(s) dropped")
    [summary] = [r.getMessage() for r in caplog.records if "in all" in r.getMessage()]
    assert summary == (  # the close sums up what the rate limit kept quiet
        "event emitter Stuck lost 15 event(s) in all: 15 dropped while its queue was full"
    )


async def test_close_gives_up_on_a_stuck_emitter_after_its_timeout() -> None:
    stuck = Stuck()
    bus = EventBus([stuck])
    bus.publish(event(0))
    bus.publish(event(1))
    await stuck.entered.wait()
    await bus.aclose(timeout_seconds=0.01)
    assert bus.dropped == 2  # t0 cancelled mid-emit, t1 never delivered


async def test_events_dropped_at_close_are_reported_as_such_not_as_a_full_queue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stuck = Stuck()
    bus = EventBus([stuck])
    bus.publish(event(0))
    bus.publish(event(1))
    await stuck.entered.wait()
    with caplog.at_level(logging.WARNING, logger="asynctasq.events"):
        await bus.aclose(timeout_seconds=0.25)
    assert [r.getMessage() for r in caplog.records] == [
        "event emitter Stuck lost 2 event(s) in all: 2 dropped at close after 0.25 s "
        "(not delivered in time)"
    ]


async def test_wants_is_false_while_only_a_silent_logging_emitter_listens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus([LoggingEventEmitter()])
    with caplog.at_level(logging.INFO, logger="asynctasq.events"):
        assert not bus.wants()
        bus.publish(event(0))  # dropped by the gate, no lane task started
        assert bus._lanes[0].task is None
    with caplog.at_level(logging.DEBUG, logger="asynctasq.events"):
        assert bus.wants()
        bus.publish(event(1))
        await bus.aclose()
    assert [r.getMessage() for r in caplog.records] == [
        "task_started task=t1 name=m:f queue=q attempt=1/?"
    ]


async def test_any_emitter_without_enabled_makes_the_bus_want_events() -> None:
    bus = EventBus([LoggingEventEmitter(level=5), AsyncCollector()])
    assert bus.wants()
    await bus.aclose()


async def test_close_closes_only_owned_emitters() -> None:
    owned, users = AsyncCollector(), AsyncCollector()
    bus = EventBus([owned, users], owned=[owned])
    await bus.aclose()
    assert (owned.closed, users.closed) == (True, False)


async def test_a_failing_close_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class BadClose:
        def emit(self, e: Any) -> None: ...

        def close(self) -> None:
            raise OSError("gone")

    bad = BadClose()
    await EventBus([bad], owned=[bad]).aclose()
    assert "closing event emitter BadClose failed" in caplog.text


def test_publishing_without_a_running_loop_drops_and_counts() -> None:
    bus = EventBus([AsyncCollector()])
    bus.publish(event(0))
    assert bus.dropped == 1


class Signal:
    """An ``asyncio.Event`` made inside the loop that first uses it (tests run several)."""

    def __init__(self) -> None:
        self.event: asyncio.Event | None = None

    def _get(self) -> asyncio.Event:
        if self.event is None:
            self.event = asyncio.Event()
        return self.event

    def set(self) -> None:
        self._get().set()

    async def wait(self) -> None:
        await self._get().wait()


class RaisingGate:
    """An emitter whose enabled() raises (a user's bug)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def enabled(self) -> bool:
        raise RuntimeError("enabled is broken")

    async def emit(self, e: TaskEvent) -> None:
        self.seen.append(e.task_id)


async def test_an_enabled_that_raises_never_reaches_the_caller_it_is_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, good = RaisingGate(), AsyncCollector()
    bus = EventBus([broken, good])
    with caplog.at_level(logging.WARNING, logger="asynctasq.events"):
        assert EventBus([RaisingGate()]).wants()  # publish() counts the loss, not wants()
        for n in range(3):
            bus.publish(event(n))
        await bus.aclose()
    assert (broken.seen, good.seen) == ([], ["t0", "t1", "t2"])
    assert (bus.failed, bus.dropped) == (3, 0)
    first, summary = (r for r in caplog.records if r.name == "asynctasq.events")
    assert first.getMessage().startswith(
        "event emitter RaisingGate failed on 1 event(s) in enabled() (those events are lost"
    )
    assert first.exc_info is not None  # the first error of an emitter has its traceback
    assert summary.getMessage() == (
        "event emitter RaisingGate lost 3 event(s) in all: 3 failed (the emitter raised)"
    )


async def test_emit_many_and_close_that_raise_are_counted_and_logged() -> None:
    class Bad:
        def emit(self, e: TaskEvent) -> None: ...

        async def emit_many(self, events: list[TaskEvent]) -> None:
            raise ValueError("batch refused")

        async def close(self) -> None:
            raise ValueError("close refused")

    bad = Bad()
    bus = EventBus([bad], owned=[bad])
    bus.publish(event(0))
    await bus.aclose()  # does not raise
    assert bus.failed == 1


async def test_a_connection_error_is_logged_in_one_line_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from asynctasq.errors import DriverError

    class Down:
        async def emit(self, e: TaskEvent) -> None:
            raise DriverError("redis", "publish event", "ConnectionError: connection refused")

    bus = EventBus([Down()])
    with caplog.at_level(logging.WARNING, logger="asynctasq.events"):
        bus.publish(event(0))
        await bus.aclose()
    first = caplog.records[0]
    assert first.exc_info is None
    assert first.getMessage().endswith(
        "DriverError: redis publish event failed: ConnectionError: connection refused"
    )


async def test_a_function_is_an_emitter_plain_or_async() -> None:
    plain_seen: list[str] = []
    async_seen: list[str] = []

    def plain(e: TaskEvent) -> None:
        plain_seen.append(e.task_id)

    async def coroutine(e: TaskEvent) -> None:
        async_seen.append(e.task_id)

    bus = EventBus([plain, coroutine])
    bus.publish(event(0))
    bus.publish(event(1))
    await bus.aclose()
    assert plain_seen == async_seen == ["t0", "t1"]
    assert bus.failed == 0


@pytest.mark.parametrize("use_uvloop", [False, True])
def test_events_still_queued_when_the_loop_ends_are_delivered_and_owned_emitters_closed(
    use_uvloop: bool,
) -> None:
    from asynctasq.runner import has_uvloop, run

    if use_uvloop and not has_uvloop():
        pytest.skip("uvloop is not installed")
    collector = AsyncCollector()
    bus = EventBus([collector], owned=[collector])

    async def main() -> None:  # returns before the lane's task has run at all
        bus.publish(event(0))
        bus.publish(event(1))

    run(main(), use_uvloop=use_uvloop)
    assert collector.seen == ["t0", "t1"]
    assert collector.closed
    assert bus.dropped == 0


def test_an_emit_cancelled_by_the_end_of_the_loop_is_delivered_again_at_the_end() -> None:
    seen: list[str] = []
    entered: list[str] = []
    inside = Signal()

    async def slow(e: TaskEvent) -> None:
        entered.append(e.task_id)
        inside.set()
        await asyncio.sleep(0.01)  # asyncio.run() cancels the lane here the first time
        seen.append(e.task_id)

    bus = EventBus([slow])

    async def main() -> None:
        bus.publish(event(0))
        await inside.wait()  # the lane is inside emit() when main returns

    asyncio.run(main())
    assert (entered, seen) == (["t0", "t0"], ["t0"])
    assert bus.dropped == 0


def test_an_emitter_that_swallows_the_cancellation_does_not_hang_the_end_of_the_loop() -> None:
    # redis-py's publish can return normally although the lane's task was cancelled
    # meanwhile; the lane went back to waiting and asyncio.run() never returned.
    inside = Signal()

    class Swallower:
        async def emit(self, e: TaskEvent) -> None:
            inside.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.2)

    bus = EventBus([Swallower()])

    async def main() -> None:
        bus.publish(event(0))
        await inside.wait()

    runner = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive()


def test_a_closed_bus_does_not_run_again_when_the_loop_ends() -> None:
    collector = AsyncCollector()
    bus = EventBus([collector], owned=[collector])

    async def main() -> None:
        bus.publish(event(0))
        await bus.aclose()
        collector.closed = False

    asyncio.run(main())
    assert (collector.seen, collector.closed) == (["t0"], False)
