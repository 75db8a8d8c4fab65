"""Broker upkeep: call ``driver.maintain(queues)`` every ``maintenance_interval_seconds``.

``maintain`` promotes due delayed messages and recovers leases of dead workers. Every worker
runs it (the driver makes each move happen exactly once), starting at once, so due work
is picked up promptly after a start (FIELD-CASES C12) and a dead worker's tasks come back
within one visibility timeout plus one interval (C01).
"""

from __future__ import annotations

import asyncio
import logging

from asynctasq.worker.recovery import log_failure, pause_seconds
from asynctasq.worker.state import WorkerState

logger = logging.getLogger("asynctasq.worker")


async def run_maintenance(state: WorkerState) -> None:
    """Call ``maintain`` now and then every interval until cancelled; errors back off."""
    interval = state.driver.maintenance_interval_seconds
    if interval is None:
        return
    failures = 0
    while True:
        try:
            await state.driver.maintain(state.settings.queues)
        except Exception as exc:  # log, back off, keep going
            failures += 1
            log_failure("maintenance", exc, failures)
            await asyncio.sleep(max(interval, pause_seconds(failures)))
            continue
        if failures:
            logger.warning("maintenance works again after %d failures", failures)
            failures = 0
        await asyncio.sleep(interval)
