"""Broker upkeep: call ``driver.maintain(queues)`` every ``maintenance_interval_seconds``.

``maintain`` promotes due delayed messages and recovers leases of dead workers. Every worker
runs it (the driver makes each move happen exactly once), starting at once, so due work
is picked up promptly after a start (FIELD-CASES C12) and a dead worker's tasks come back
within one visibility timeout plus one interval (C01).

Delays are kept to the millisecond, never early: ``maintain`` returns the seconds until the
next delayed message is due, and the loop sleeps ``min(interval, that)`` before calling
again; a retry this worker stores with a delay shortens the current sleep to that delay
(:meth:`~asynctasq.worker.state.WorkerState.maintenance_due_in`). A delay shorter than the
interval dispatched by another process may still wait up to one interval.
"""

from __future__ import annotations

import asyncio
import logging

from asynctasq.worker.recovery import log_failure, pause_seconds
from asynctasq.worker.state import WorkerState

logger = logging.getLogger("asynctasq.worker")

MIN_PAUSE_SECONDS = 0.001
"""The shortest wait between two ``maintain`` calls."""


async def run_maintenance(state: WorkerState) -> None:
    """Call ``maintain`` now and then every interval until cancelled; errors back off."""
    interval = state.driver.maintenance_interval_seconds
    if interval is None:
        return
    failures = 0
    while True:
        try:
            next_due = await state.driver.maintain(state.settings.queues)
        except Exception as exc:  # log, back off, keep going
            failures += 1
            log_failure("maintenance", exc, failures)
            await asyncio.sleep(max(interval, pause_seconds(failures)))
            continue
        if failures:
            logger.warning("maintenance works again after %d failures", failures)
            failures = 0
        await state.sleep_until_maintenance_due(pause_before_next(interval, next_due))


def pause_before_next(interval: float, next_due: float | None) -> float:
    """Return how long to wait before the next ``maintain`` call, seconds.

    Args:
        interval: the driver's ``maintenance_interval_seconds``.
        next_due: what ``maintain`` returned: seconds until the next delayed message is
            due, or ``None``.

    Returns:
        ``interval``, or ``next_due`` when that is sooner (at least
        :data:`MIN_PAUSE_SECONDS`, so a clock a hair behind the broker's cannot spin).
    """
    if next_due is None or next_due != next_due:  # None or NaN
        return interval
    return min(interval, max(next_due, MIN_PAUSE_SECONDS))
