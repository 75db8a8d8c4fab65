"""Fetching: claim as many deliveries as there are free slots, in one broker call.

Fairness rule: queues are asked in the order given (first = highest priority), except on
every ``rotate_every``-th fetch, when one lower-priority queue is asked first — each in
turn. Under a flood on the first queue the others still get at least one fetch in
``rotate_every``; when the first queue is empty the others are served on every fetch anyway.

A fetch claims ``min(free slots, batch_size)`` deliveries (and never beyond ``max_tasks``),
so this worker never holds leases it cannot start — other workers are not starved and a
lease's clock does not run while the task waits in a local buffer. An idle fetch blocks
on the broker for ``wait_seconds`` (no busy loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from asynctasq.worker.recovery import log_failure, pause_seconds
from asynctasq.worker.state import Job, WorkerState, deliveries_of, new_job

logger = logging.getLogger("asynctasq.worker")


def queue_order(queues: Sequence[str], fetch_number: int, rotate_every: int) -> Sequence[str]:
    """Return the order to ask ``queues`` in on fetch number ``fetch_number`` (from 0).

    Every ``rotate_every``-th fetch (numbers ``rotate_every - 1``, ``2 * rotate_every - 1``,
    ...) puts one lower-priority queue first, cycling through them; the rest keep their
    order. ``rotate_every`` below 1 never rotates.

    Example:
        ``queue_order(["a", "b", "c"], 7, 8)`` is ``["b", "a", "c"]`` and
        ``queue_order(["a", "b", "c"], 15, 8)`` is ``["c", "a", "b"]``.
    """
    if len(queues) < 2 or rotate_every < 1 or (fetch_number + 1) % rotate_every:
        return queues
    turn = (fetch_number + 1) // rotate_every - 1
    first = 1 + turn % (len(queues) - 1)
    return [queues[first], *queues[:first], *queues[first + 1 :]]


async def release_jobs(state: WorkerState, jobs: Sequence[Job], why: str) -> None:
    """Give ``jobs`` back to the broker at once, unstarted (not an attempt).

    A failure is logged: the leases then expire and the broker redelivers them.
    """
    if not jobs:
        return
    try:
        await state.driver.release(deliveries_of(jobs))
    except Exception as exc:  # the lease expiry still returns them
        log_failure(f"release of {len(jobs)} deliveries ({why})", exc, 1)
    else:
        state.released += len(jobs)
        logger.info("released %d deliveries (%s)", len(jobs), why)
    for job in jobs:
        state.held.discard(job)


async def _pause(state: WorkerState, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await state.shutdown.draining.wait()
    except TimeoutError:
        pass


async def run_fetcher(state: WorkerState) -> None:
    """Claim deliveries into the local buffer until stopped or ``max_tasks`` were claimed.

    Deliveries that arrive after a stop request are released at once. Broker errors are
    logged and retried after a capped backoff; the loop never ends because of one.
    """
    settings = state.settings
    fetches = 0
    failures = 0
    try:
        while not state.shutdown.draining.is_set():
            room = state.room()
            if room <= 0:
                if settings.max_tasks is not None and state.claimed >= settings.max_tasks:
                    return
                await state.wait_for_room()
                continue
            order = queue_order(settings.queues, fetches, settings.rotate_every)
            fetches += 1
            try:
                deliveries = await state.driver.dequeue(
                    order, limit=min(room, settings.batch_size), wait_seconds=settings.wait_seconds
                )
            except Exception as exc:  # log, back off, keep fetching
                failures += 1
                log_failure("fetch", exc, failures)
                await _pause(state, pause_seconds(failures))
                continue
            if failures:
                logger.warning("fetch works again after %d failures", failures)
                failures = 0
            if not deliveries:
                continue
            now = time.monotonic()
            jobs = [new_job(delivery, now) for delivery in deliveries]
            state.claimed += len(jobs)
            state.hold(jobs)
            if state.shutdown.draining.is_set():
                await release_jobs(state, jobs, "claimed while stopping")
                return
            state.buffer.extend(jobs)
            state.wake_slots(len(jobs))
            # let the woken slots start these tasks before the next claim's client-side work
            # (a broker call costs ~0.1-0.2 ms of CPU before it yields): an idle worker's
            # latency, not its throughput
            await asyncio.sleep(0)
    finally:
        state.fetching = False
        state.wake_slots(-1)
