"""Lease renewal: keep every held delivery invisible to other workers while it is held.

Each held delivery is renewed once a third of its visibility timeout has passed since its
claim or last renewal, so two renewals can fail before the lease lapses (FIELD-CASES C06).
One ``extend`` call renews every due delivery.

Where it runs: for a broker reached over the network the renewals run in their own thread
with their own event loop and driver (:mod:`asynctasq.worker.lease_thread`), so even an
``async`` task that blocks the worker's loop keeps its lease (C16.3). The in-process memory
driver cannot be reached from another loop; there :func:`run_leases` renews on the
worker's loop (sync tasks run in threads, so only a blocking async body can delay it).
"""

from __future__ import annotations

import logging
import time

from asynctasq.drivers.protocol import Driver
from asynctasq.worker.recovery import log_failure
from asynctasq.worker.state import Job, WorkerState

logger = logging.getLogger("asynctasq.worker")

MAX_TICK_SECONDS = 1.0
"""The longest the loop sleeps (a claim due for renewal sooner wakes it early)."""

MIN_TICK_SECONDS = 0.02

RETRY_SECONDS = 0.2
"""How soon a failed renewal is tried again."""


def due_jobs(held: set[Job], now: float) -> list[Job]:
    """Return the held jobs whose renewal time has come."""
    return [job for job in held if job.extend_at <= now]


def next_tick(held: set[Job], now: float) -> float:
    """Return how long to sleep until the next renewal is due (bounded both ways)."""
    soonest = min((job.extend_at for job in held), default=now + MAX_TICK_SECONDS)
    return min(MAX_TICK_SECONDS, max(MIN_TICK_SECONDS, soonest - now))


async def renew(driver: Driver, jobs: list[Job], now: float, failures: int = 0) -> int:
    """Extend the leases of ``jobs`` in one ``driver.extend`` call.

    Args:
        driver: the driver to call.
        jobs: the due jobs.
        now: the monotonic time they were found due.
        failures: how many renewals in a row failed before this one.

    Returns:
        The failures in a row after this call: 0 if it worked, else ``failures + 1``
        (logged with that count; the jobs are tried again in :data:`RETRY_SECONDS`).
    """
    try:
        await driver.extend([job.delivery for job in jobs])
    except Exception as exc:  # tried again shortly
        log_failure(f"lease renewal of {len(jobs)} deliveries", exc, failures + 1)
        for job in jobs:
            job.extend_at = now + RETRY_SECONDS
        return failures + 1
    for job in jobs:
        lease = job.delivery.visibility_timeout_seconds
        job.extend_at = now + lease / 3.0
        job.deadline = now + lease
    if failures:
        logger.warning("lease renewal works again after %d failures", failures)
    return 0


async def run_leases(state: WorkerState) -> None:
    """Renew due leases until cancelled."""
    failures = 0
    while True:
        now = time.monotonic()
        due = due_jobs(state.held, now)
        if due:
            failures = await renew(state.driver, due, now, failures)
        await state.sleep_until_lease_due(next_tick(state.held, time.monotonic()))
