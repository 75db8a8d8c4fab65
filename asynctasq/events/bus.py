"""The event bus: hands events to emitters without ever blocking or failing the caller.

Each emitter has a *lane*: a bounded in-memory queue drained by its own background asyncio
task (started on the first event, on the running loop). :meth:`EventBus.publish` only
appends to the lanes, so a dispatch or a task never waits for an emitter, and one slow
emitter never holds back another. When a lane is full its new events are dropped; drops
and emitter errors are counted and logged at most once per ``report_seconds`` per emitter,
on the ``asynctasq.events`` logger.

Delivery per batch (everything queued :data:`BATCH_SECONDS` after the lane was woken, so a
busy worker wakes each lane about 200 times a second, not once per event):
``emit_many(batch)`` when the
emitter has it, else ``emit(event)`` for each — awaited for a coroutine function, called in
a worker thread (one hop per batch) for a plain function, called directly for the logging
emitter. :meth:`EventBus.wants` tells producers whether any emitter listens, so events are
not built for nobody.

Source: SPEC §6 ("an emitter that fails must never fail a task or a dispatch").
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from asynctasq.events.emitters import LoggingEventEmitter
from asynctasq.events.records import Event

logger = logging.getLogger("asynctasq.events")

CAPACITY = 10_000
"""Events one emitter's lane holds before new ones are dropped."""

REPORT_SECONDS = 60.0
"""At most one drop report and one error report per emitter in this many seconds."""

CLOSE_SECONDS = 5.0
"""How long closing the bus waits for the lanes to deliver what they hold."""

BATCH_SECONDS = 0.005
"""How long a lane woken by a new event waits for more before delivering (one batch)."""


def _call_each(emit: Callable[[Event], Any], batch: Sequence[Event]) -> list[BaseException]:
    errors: list[BaseException] = []
    for event in batch:
        try:
            emit(event)
        except Exception as exc:
            errors.append(exc)
    return errors


class _Lane:
    """One emitter's queue, its drain task and its loss counters."""

    def __init__(self, emitter: Any, capacity: int, report_seconds: float) -> None:
        self.emitter = emitter
        self.name = type(emitter).__name__
        enabled = getattr(emitter, "enabled", None)
        self.gate: Callable[[], bool] | None = enabled if callable(enabled) else None
        self.capacity = capacity
        self.report_seconds = report_seconds
        self.queue: deque[Event] = deque()
        self.task: asyncio.Task[None] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.closing = False
        self.pending = 0  # events of the batch being delivered, not delivered yet
        self.dropped = 0
        self.failed = 0
        self._unreported_drops = 0
        self._drops_reported_at = -float("inf")
        self._errors_reported_at = -float("inf")
        self._unreported_errors = 0

    def put(self, event: Event) -> None:
        if len(self.queue) >= self.capacity or self.closing:
            self.drop(1)
            return
        self.queue.append(event)
        waiter = self.waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
        elif self.task is None:
            self.start()

    def start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: nothing can deliver it
            self.drop(len(self.queue))
            self.queue.clear()
            return
        self.task = loop.create_task(self.drain(), name=f"asynctasq events: {self.name}")

    def drop(self, count: int) -> None:
        self.dropped += count
        self._unreported_drops += count
        now = time.monotonic()
        if now - self._drops_reported_at >= self.report_seconds:
            self._drops_reported_at = now
            self.report_drops()

    def report_drops(self) -> None:
        if self._unreported_drops:
            logger.warning(
                "event emitter %s is behind: %d event(s) dropped (its queue holds %d); "
                "tasks and dispatches are not affected",
                self.name,
                self._unreported_drops,
                self.capacity,
            )
            self._unreported_drops = 0

    def fail(self, errors: Sequence[BaseException]) -> None:
        self.failed += len(errors)
        self._unreported_errors += len(errors)
        now = time.monotonic()
        if now - self._errors_reported_at >= self.report_seconds:
            first = self._errors_reported_at == -float("inf")
            self._errors_reported_at = now
            logger.warning(
                "event emitter %s failed on %d event(s) (those events are lost; tasks and "
                "dispatches are not affected): %s: %s",
                self.name,
                self._unreported_errors,
                type(errors[-1]).__name__,
                errors[-1],
                exc_info=errors[-1] if first else None,
            )
            self._unreported_errors = 0

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.queue:
                if self.closing:
                    return
                self.waiter = loop.create_future()
                try:
                    await self.waiter
                finally:
                    self.waiter = None
                if not self.closing:  # gather what follows: one wake-up per batch, not per event
                    await asyncio.sleep(BATCH_SECONDS)
                continue
            batch = list(self.queue)
            self.queue.clear()
            self.pending = len(batch)
            errors = await self.deliver(batch)
            self.pending = 0
            if errors:
                self.fail(errors)

    async def deliver(self, batch: list[Event]) -> list[BaseException]:
        emitter = self.emitter
        try:
            many = getattr(emitter, "emit_many", None)
            if many is not None and inspect.iscoroutinefunction(many):
                await many(batch)
                return []
            emit = emitter.emit
            if isinstance(emitter, LoggingEventEmitter):
                return _call_each(emit, batch)
            if not inspect.iscoroutinefunction(emit):
                return await asyncio.to_thread(_call_each, emit, batch)
            errors: list[BaseException] = []
            for event in batch:
                try:
                    await emit(event)
                except Exception as exc:
                    errors.append(exc)
                self.pending -= 1
            return errors
        except Exception as exc:
            return [exc] * len(batch)


class EventBus:
    """Fans events out to emitters through bounded lanes (see the module docstring).

    Args:
        emitters: the emitters, in order.
        owned: those among them this bus closes on :meth:`aclose` (the ones built from the
            configuration; emitters passed in by the user stay theirs).
        capacity: events a lane holds before new ones are dropped (default
            :data:`CAPACITY`).
        report_seconds: the shortest interval between two loss reports of one emitter
            (default :data:`REPORT_SECONDS`).

    """

    def __init__(
        self,
        emitters: Iterable[Any],
        *,
        owned: Iterable[Any] = (),
        capacity: int | None = None,
        report_seconds: float | None = None,
    ) -> None:
        capacity = CAPACITY if capacity is None else capacity
        report_seconds = REPORT_SECONDS if report_seconds is None else report_seconds
        self._lanes = [_Lane(e, capacity, report_seconds) for e in emitters]
        self._owned = list(owned)
        self._ungated = any(lane.gate is None for lane in self._lanes)
        self._gates = [lane.gate for lane in self._lanes if lane.gate is not None]

    @property
    def emitters(self) -> list[Any]:
        """The emitters, in order."""
        return [lane.emitter for lane in self._lanes]

    @property
    def dropped(self) -> int:
        """Events dropped so far because a lane was full (all emitters)."""
        return sum(lane.dropped for lane in self._lanes)

    @property
    def failed(self) -> int:
        """Events an emitter raised on so far (all emitters)."""
        return sum(lane.failed for lane in self._lanes)

    def wants(self) -> bool:
        """Return whether any emitter would receive an event now (cheap; call per event)."""
        if self._ungated:
            return True
        gates = self._gates
        if len(gates) == 1:
            return gates[0]()
        return any(gate() for gate in gates)

    def publish(self, event: Event) -> None:
        """Queue ``event`` for every listening emitter; never blocks, never raises."""
        for lane in self._lanes:
            gate = lane.gate
            if gate is None or gate():
                lane.put(event)

    def publish_many(self, events: Iterable[Event]) -> None:
        """Queue each event, in order (see :meth:`publish`)."""
        for event in events:
            self.publish(event)

    async def aclose(self, *, timeout_seconds: float | None = None) -> None:
        """Deliver what the lanes hold (up to ``timeout_seconds``), then close owned emitters.

        Events still queued after the timeout are dropped and reported. Never raises but
        for cancellation.
        """
        timeout_seconds = CLOSE_SECONDS if timeout_seconds is None else timeout_seconds
        running = []
        for lane in self._lanes:
            lane.closing = True
            if lane.waiter is not None and not lane.waiter.done():
                lane.waiter.set_result(None)
            if lane.task is not None and not lane.task.done():
                running.append(lane.task)
        if running:
            await asyncio.wait(running, timeout=timeout_seconds)
        for lane in self._lanes:
            if lane.task is not None and not lane.task.done():
                lane.task.cancel()
                await asyncio.gather(lane.task, return_exceptions=True)
            lost = len(lane.queue) + lane.pending
            lane.queue.clear()
            lane.pending = 0
            lane.dropped += lost
            lane._unreported_drops += lost
            lane.report_drops()
        for emitter in self._owned:
            await _close(emitter)


async def _close(emitter: Any) -> None:
    close = getattr(emitter, "close", None)
    if close is None:
        return
    try:
        result = close()
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.warning("closing event emitter %s failed", type(emitter).__name__, exc_info=True)
