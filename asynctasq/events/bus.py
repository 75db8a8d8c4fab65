"""The event bus: hands events to emitters without ever blocking or failing the caller.

Each emitter has a *lane*: a bounded in-memory queue drained by its own background asyncio
task (started on the first event, on the running loop). :meth:`EventBus.publish` only
appends to the lanes, so a dispatch or a task never waits for an emitter, and one slow
emitter never holds back another. When a lane is full its new events are dropped.

Every call into an emitter is guarded: ``enabled()``, ``emit()``, ``emit_many()`` and
``close()`` may raise anything (``Exception``) and the caller never sees it. Drops and
errors are counted (:attr:`EventBus.dropped`, :attr:`EventBus.failed`) and logged on the
``asynctasq.events`` logger at most once per ``report_seconds`` per emitter (the first
error with its traceback, unless it is a connection error: one line), and closing the bus
logs one summary line per emitter that lost events.

Delivery per batch (everything queued :data:`BATCH_SECONDS` after the lane was woken, so a
busy worker wakes each lane about 200 times a second, not once per event):
``emit_many(batch)`` when the
emitter has it, else ``emit(event)`` for each — awaited for a coroutine function, called in
a worker thread (one hop per batch) for a plain function, called directly for the logging
emitter. An emitter may also be a function itself (``def`` or ``async def``), called with
each event. :meth:`EventBus.wants` tells producers whether any emitter listens, so events
are not built for nobody.

The end of the event loop: a bus that started delivering on a loop registers an async
generator there, so when ``asyncio.run()`` (or any runner calling
``loop.shutdown_asyncgens()``) ends the loop without the handle having been closed, what
the lanes still hold is delivered then (up to :data:`CLOSE_SECONDS`) and the emitters the
bus owns are closed — a script that dispatches from ``asyncio.run(main())`` after a
module-level ``init()`` loses no events.

Source: SPEC §6 ("an emitter that fails must never fail a task or a dispatch").
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import Any

from asynctasq.errors import DriverError
from asynctasq.events.emitters import LoggingEventEmitter
from asynctasq.events.records import Event

logger = logging.getLogger("asynctasq.events")

CAPACITY = 10_000
"""Events one emitter's lane holds before new ones are dropped."""

REPORT_SECONDS = 60.0
"""At most one drop report and one error report per emitter in this many seconds."""

CLOSE_SECONDS = 5.0
"""How long closing the bus waits for the lanes to deliver what they hold."""

CANCEL_SECONDS = 1.0
"""How long closing the bus waits for a lane it cancelled to stop."""

BATCH_SECONDS = 0.005
"""How long a lane woken by a new event waits for more before delivering (one batch)."""


def emitter_name(emitter: Any) -> str:
    """Return the name an emitter is reported by: its class, or a function's own name."""
    if inspect.isfunction(emitter) or inspect.ismethod(emitter):
        return str(getattr(emitter, "__qualname__", type(emitter).__name__))
    return type(emitter).__name__


def describe(exc: BaseException) -> str:
    """Return ``"Type: message"`` for ``exc``, even when its ``__str__`` raises."""
    try:
        text = str(exc)
    except Exception:
        text = "<its message could not be read>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_connection_error(exc: BaseException) -> bool:
    """Return whether ``exc`` is a broker or network failure (one log line is enough)."""
    return isinstance(exc, DriverError | OSError)


def _is_async(function: Any) -> bool:
    if inspect.iscoroutinefunction(function):
        return True
    call = getattr(function, "__call__", None)  # noqa: B004 - an async __call__ method
    return call is not None and inspect.iscoroutinefunction(call)


def _call_each(emit: Callable[[Event], Any], batch: Sequence[Event]) -> list[BaseException]:
    errors: list[BaseException] = []
    for event in batch:
        try:
            result = emit(event)
            if inspect.isawaitable(result):  # a def returning a coroutine: never awaited here
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError(
                    "emit() returned an awaitable from a plain function; declare it async def"
                )
        except Exception as exc:
            errors.append(exc)
    return errors


class _Lane:
    """One emitter's queue, its drain task and its loss counters."""

    def __init__(
        self,
        emitter: Any,
        capacity: int,
        report_seconds: float,
        on_start: Callable[[], None] = lambda: None,
    ) -> None:
        self.emitter = emitter
        self.name = emitter_name(emitter)
        try:
            enabled = getattr(emitter, "enabled", None)
            emit = getattr(emitter, "emit", None)
        except Exception:  # a property that raises: treat it as absent
            enabled = emit = None
        self.gate: Callable[[], bool] | None = enabled if callable(enabled) else None
        if not callable(emit):
            emit = emitter  # a function is its own emit
        self.emit: Callable[[Event], Any] = emit
        self.emit_is_async = _is_async(emit)
        self.capacity = capacity
        self.report_seconds = report_seconds
        self.on_start = on_start
        self.queue: deque[Event] = deque()
        self.task: asyncio.Task[None] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.closing = False
        self.pending = 0  # events of the batch being delivered, not delivered yet
        self.dropped = 0  # all drops: queue full, no loop, at close
        self.failed = 0
        self.full = 0  # dropped because the queue was full
        self.no_loop = 0  # dropped because no event loop ran in the publishing thread
        self.at_close = 0  # still queued when closing gave up
        self._unreported_drops = 0
        self._drops_reported_at = -float("inf")
        self._errors_reported_at = -float("inf")
        self._unreported_errors = 0
        self._unreported_error: tuple[str, BaseException] | None = None
        self._said_closed = False
        self._reported = 0  # losses already told in a log line

    def listening(self) -> bool:
        """Ask the emitter's ``enabled()``; if it raises, the event is lost and counted."""
        gate = self.gate
        if gate is None:
            return True
        try:
            return bool(gate())
        except Exception as exc:
            self.fail([exc], "enabled()")
            return False

    def put(self, event: Event) -> None:
        if self.closing:
            self.after_close()
            return
        if len(self.queue) >= self.capacity:
            self.full += 1
            self.drop(1)
            return
        self.queue.append(event)
        waiter = self.waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
        elif self.task is None or self.task.done():
            self.start()

    def start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: nothing can deliver it
            lost = len(self.queue)
            self.queue.clear()
            self.no_loop += lost
            self.dropped += lost
            logger.warning(
                "event emitter %s: %d event(s) dropped: no asyncio event loop runs in this "
                "thread to deliver them (publish events from async code)",
                self.name,
                lost,
            )
            return
        self.task = loop.create_task(self.drain(), name=f"asynctasq events: {self.name}")
        self.on_start()

    def after_close(self) -> None:
        """Drop an event published after the bus closed (said once per lane)."""
        self.at_close += 1
        self.dropped += 1
        if not self._said_closed:
            self._said_closed = True
            self._reported += 1
            logger.warning(
                "event emitter %s: an event published after its event bus closed was "
                "dropped (the handle was closed while still in use)",
                self.name,
            )

    def drop(self, count: int) -> None:
        self.dropped += count
        self._unreported_drops += count
        now = time.monotonic()
        if now - self._drops_reported_at >= self.report_seconds:
            self._drops_reported_at = now
            self.report_drops()

    def report_drops(self) -> None:
        if self._unreported_drops:
            self._reported += self._unreported_drops
            logger.warning(
                "event emitter %s is behind: %d event(s) dropped (its queue holds %d); "
                "tasks and dispatches are not affected",
                self.name,
                self._unreported_drops,
                self.capacity,
            )
            self._unreported_drops = 0

    def fail(self, errors: Sequence[BaseException], call: str = "emit()") -> None:
        """Count ``errors`` raised by the emitter's ``call``; log them (rate-limited)."""
        self.failed += len(errors)
        self._unreported_errors += len(errors)
        self._unreported_error = (call, errors[-1])
        now = time.monotonic()
        if now - self._errors_reported_at >= self.report_seconds:
            first = self._errors_reported_at == -float("inf")
            self._errors_reported_at = now
            self.report_errors(with_traceback=first)

    def report_errors(self, *, with_traceback: bool = False) -> None:
        if not self._unreported_errors or self._unreported_error is None:
            return
        call, error = self._unreported_error
        self._reported += self._unreported_errors
        logger.warning(
            "event emitter %s failed on %d event(s) in %s (those events are lost; tasks and "
            "dispatches are not affected): %s",
            self.name,
            self._unreported_errors,
            call,
            describe(error),
            exc_info=error if with_traceback and not is_connection_error(error) else None,
        )
        self._unreported_errors = 0
        self._unreported_error = None

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
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
            try:
                call, errors = await self.deliver(batch)
            except asyncio.CancelledError:  # the loop is ending, or closing gave up
                if self.pending:  # not delivered (or not known to be): back to the front
                    self.queue.extendleft(reversed(batch[len(batch) - self.pending :]))
                    self.pending = 0
                raise
            self.pending = 0
            if errors:
                self.fail(errors, call)
            if me is not None and me.cancelling():  # the emitter swallowed the cancellation
                raise asyncio.CancelledError  # (redis-py can): honour it, or the loop hangs

    async def deliver(self, batch: list[Event]) -> tuple[str, list[BaseException]]:
        """Hand ``batch`` to the emitter; return the method called and the errors raised."""
        emitter = self.emitter
        call = "emit()"
        try:
            many = getattr(emitter, "emit_many", None)
            if many is not None and inspect.iscoroutinefunction(many):
                call = "emit_many()"
                await many(batch)
                return call, []
            emit = self.emit
            if isinstance(emitter, LoggingEventEmitter):
                return call, _call_each(emit, batch)
            if not self.emit_is_async:
                try:
                    return call, await asyncio.to_thread(_call_each, emit, batch)
                except asyncio.CancelledError:  # the thread still delivers the whole batch
                    self.pending = 0
                    raise
            errors: list[BaseException] = []
            for event in batch:
                try:
                    await emit(event)
                except Exception as exc:
                    errors.append(exc)
                self.pending -= 1
            return call, errors
        except Exception as exc:
            return call, [exc] * len(batch)

    def close_report(self, timeout_seconds: float) -> None:
        """Count what is still queued as lost at close and log this emitter's summary."""
        lost = len(self.queue) + self.pending
        self.queue.clear()
        self.pending = 0
        self.at_close += lost
        self.dropped += lost
        self._unreported_drops = self._unreported_errors = 0  # the summary says them
        self._unreported_error = None
        if self.failed + self.dropped <= self._reported:  # every loss was told already
            return
        parts = []
        if self.failed:
            parts.append(f"{self.failed} failed (the emitter raised)")
        if self.full:
            parts.append(f"{self.full} dropped while its queue was full")
        if self.no_loop:
            parts.append(f"{self.no_loop} dropped: no running event loop")
        if self.at_close:
            parts.append(
                f"{self.at_close} dropped at close after {timeout_seconds:g} s "
                "(not delivered in time)"
            )
        logger.warning(
            "event emitter %s lost %d event(s) in all: %s",
            self.name,
            self.failed + self.dropped,
            "; ".join(parts),
        )


async def _at_loop_end(ref: weakref.ref[EventBus], token: object) -> AsyncGenerator[None, None]:
    """Yield once; when the loop's ``shutdown_asyncgens()`` closes it, finish the bus."""
    try:
        yield
    finally:
        bus = ref()
        if bus is not None and bus._guard_token is token:
            bus._guard = bus._guard_token = None
            await bus._finish(CLOSE_SECONDS)
            bus._reopen()


class EventBus:
    """Fans events out to emitters through bounded lanes (see the module docstring).

    Args:
        emitters: the emitters, in order.
        owned: those among them this bus closes on :meth:`aclose` (the ones built from the
            configuration, and the user's own when the handle owns them; emitters a
            ``configured()`` block only inherits are not closed by it).
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
        self._lanes = [_Lane(e, capacity, report_seconds, self._arm) for e in emitters]
        self._owned = list(owned)
        self._ungated = any(lane.gate is None for lane in self._lanes)
        self._gates = [lane.gate for lane in self._lanes if lane.gate is not None]
        self._guard: AsyncGenerator[None, None] | None = None
        self._guard_token: object | None = None

    @property
    def emitters(self) -> list[Any]:
        """The emitters, in order."""
        return [lane.emitter for lane in self._lanes]

    @property
    def dropped(self) -> int:
        """Events dropped so far: a lane was full, no loop ran, or still queued at close."""
        return sum(lane.dropped for lane in self._lanes)

    @property
    def failed(self) -> int:
        """Events lost so far because an emitter raised (in ``enabled()`` or ``emit``)."""
        return sum(lane.failed for lane in self._lanes)

    def wants(self) -> bool:
        """Return whether any emitter would receive an event now (cheap; call per event).

        Never raises: an ``enabled()`` that raises counts as listening here, and
        :meth:`publish` then counts and reports the lost event.
        """
        if self._ungated:
            return True
        gates = self._gates
        try:
            if len(gates) == 1:
                return bool(gates[0]())
            return any(gate() for gate in gates)
        except Exception:
            return True

    def publish(self, event: Event) -> None:
        """Queue ``event`` for every listening emitter; never blocks, never raises."""
        for lane in self._lanes:
            if lane.gate is None or lane.listening():
                lane.put(event)

    def publish_many(self, events: Iterable[Event]) -> None:
        """Queue each event, in order (see :meth:`publish`)."""
        for event in events:
            self.publish(event)

    def _arm(self) -> None:
        """Make sure the running loop's end delivers what the lanes hold (module doc)."""
        if self._guard is not None:
            return
        token = object()
        guard = _at_loop_end(weakref.ref(self), token)
        try:
            guard.asend(None).send(None)  # runs it to its yield; the loop now tracks it
        except StopIteration:
            self._guard, self._guard_token = guard, token
        except Exception:  # the loop is already shutting down: nothing to register with
            logger.debug("event bus: cannot register for the end of the loop", exc_info=True)

    async def aclose(self, *, timeout_seconds: float | None = None) -> None:
        """Deliver what the lanes hold (up to ``timeout_seconds``), then close owned emitters.

        Events still queued after the timeout are dropped; one summary line per emitter
        that lost events is logged. Never raises but for cancellation.
        """
        guard, self._guard, self._guard_token = self._guard, None, None
        if guard is not None:
            await guard.aclose()  # disarmed: it does nothing
        await self._finish(CLOSE_SECONDS if timeout_seconds is None else timeout_seconds)

    async def _finish(self, timeout_seconds: float) -> None:
        """Deliver what the lanes hold (up to ``timeout_seconds``), report, close owned ones."""
        running = [task for lane in self._lanes if (task := _last_drain(lane)) is not None]
        if running:
            await asyncio.wait(running, timeout=timeout_seconds)
        for lane in self._lanes:
            await _stop(lane)
            lane.close_report(timeout_seconds)
        for emitter in self._owned:
            await _close(emitter)

    def _reopen(self) -> None:
        for lane in self._lanes:
            lane.closing = False
            lane.task = None


def _last_drain(lane: _Lane) -> asyncio.Task[None] | None:
    """Mark ``lane`` closing and return the task delivering what it holds, if any."""
    lane.closing = True
    task = lane.task
    if task is not None and not task.done():
        if lane.waiter is not None and not lane.waiter.done():
            lane.waiter.set_result(None)
        return task
    if lane.queue:  # its task was cancelled (the loop is ending) or never ran
        lane.task = asyncio.get_running_loop().create_task(lane.drain())
        return lane.task
    return None


async def _stop(lane: _Lane) -> None:
    """Cancel ``lane``'s task if it still runs; give up on it after :data:`CANCEL_SECONDS`."""
    task = lane.task
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait([task], timeout=CANCEL_SECONDS)
    if not task.done():  # its emitter ignores cancellation: leave it
        logger.warning("event emitter %s does not stop when cancelled; left running", lane.name)


async def _close(emitter: Any) -> None:
    try:
        close = getattr(emitter, "close", None)
        if close is None:
            return
        result = close()
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        logger.warning(
            "closing event emitter %s failed: %s",
            emitter_name(emitter),
            describe(exc),
            exc_info=None if is_connection_error(exc) else exc,
        )
