"""Worker lifecycle: ``worker_online``, a heartbeat every interval, ``worker_offline``.

Each heartbeat emits ``worker_heartbeat`` (counters at that moment) and, when the driver is
a :class:`~asynctasq.drivers.protocol.WorkerRegistry`, records the worker there, so
``asynctasq stats`` lists live workers with their last heartbeat. A registry entry lives
:data:`TTL_BEATS` intervals: a worker killed without stopping drops out of the list
after that. Registry failures are logged (warning) and never stop the worker.

Source: SPEC §6; issue 6 (``events.heartbeat_interval``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

from asynctasq.drivers.protocol import WorkerInfo, WorkerRegistry
from asynctasq.events.records import EventType, WorkerEvent, utc
from asynctasq.worker.state import WorkerState

logger = logging.getLogger("asynctasq.worker")

REMOVE_WORKER_SECONDS = 5.0
"""The longest a stopping worker waits to leave the worker registry."""

ABORTING_REMOVE_WORKER_SECONDS = 0.5
"""The same after a second stop request (SPEC §4: a second signal exits quickly)."""

TTL_BEATS = 3
"""A worker stays listed this many heartbeat intervals after its last heartbeat."""


def worker_info(state: WorkerState) -> WorkerInfo:
    """Return the registry record of the worker now."""
    return WorkerInfo(
        worker_id=state.worker_id,
        hostname=socket.gethostname(),
        pid=os.getpid(),
        queues=state.settings.queues,
        concurrency=state.settings.concurrency,
        driver=state.driver.name,
        started_at=state.wall_started_at,
        active=state.busy,
        processed=state.succeeded + state.retried + state.dead_lettered,
        failed=state.retried + state.dead_lettered,
    )


def worker_event(state: WorkerState, kind: EventType) -> WorkerEvent:
    """Return the ``kind`` worker event with the counters now."""
    info = worker_info(state)
    now = time.time()
    return WorkerEvent(
        event_type=kind,
        worker_id=info.worker_id,
        hostname=info.hostname,
        pid=info.pid,
        queues=info.queues,
        concurrency=info.concurrency,
        timestamp=utc(now),
        active=info.active,
        processed=info.processed,
        failed=info.failed,
        uptime_seconds=max(0.0, now - state.wall_started_at),
        driver=info.driver,
    )


def _emit(state: WorkerState, kind: EventType) -> None:
    bus = state.events
    if bus is not None and bus.wants():
        bus.publish(worker_event(state, kind))


async def beat(state: WorkerState, interval_seconds: float) -> None:
    """Record the worker in the driver's registry (if it has one); log a failure."""
    registry = state.driver
    if not isinstance(registry, WorkerRegistry):
        return
    try:
        await registry.record_heartbeat(
            worker_info(state), ttl_seconds=TTL_BEATS * interval_seconds
        )
    except Exception as exc:  # monitoring only: never stops the worker
        logger.warning("recording the worker's heartbeat failed: %s", exc)


async def announce_online(state: WorkerState, interval_seconds: float) -> None:
    """Register the worker and emit ``worker_online``."""
    await beat(state, interval_seconds)
    _emit(state, EventType.WORKER_ONLINE)


async def run_heartbeat(state: WorkerState, interval_seconds: float) -> None:
    """Every ``interval_seconds``: register the worker and emit ``worker_heartbeat``.

    Runs until cancelled.
    """
    while True:
        await asyncio.sleep(interval_seconds)
        await beat(state, interval_seconds)
        _emit(state, EventType.WORKER_HEARTBEAT)


async def announce_offline(state: WorkerState) -> None:
    """Emit ``worker_offline`` and remove the worker from the registry; never raises."""
    _emit(state, EventType.WORKER_OFFLINE)
    registry = state.driver
    if not isinstance(registry, WorkerRegistry):
        return
    aborting = state.shutdown.aborting.is_set()
    limit = ABORTING_REMOVE_WORKER_SECONDS if aborting else REMOVE_WORKER_SECONDS
    try:
        async with asyncio.timeout(limit):
            await registry.remove_worker(state.worker_id)
    except TimeoutError:
        logger.warning(
            "removing the worker from the registry took over %g s (broker unreachable?); "
            "its entry expires with its heartbeat ttl",
            limit,
        )
    except Exception as exc:
        logger.warning("removing the worker from the registry failed: %s", exc)
