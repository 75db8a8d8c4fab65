"""Noticing a blocked event loop: an ``async`` task body calling blocking code (C16.2).

The loop stamps a heartbeat every :data:`BEAT_SECONDS`; a daemon thread checks it. When the
stamp is older than ``threshold_seconds`` the thread logs a warning naming the tasks running
at that moment (the loop is stuck, so the set cannot change under it), and logs again when
the loop moves on. Such a task cannot be pre-empted; its run still counts as timed out if
it passed its timeout (:mod:`asynctasq.worker.execute`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from asynctasq.worker.state import WorkerState

logger = logging.getLogger("asynctasq.worker")

BEAT_SECONDS = 0.1
"""How often the loop stamps its heartbeat."""

STALL_SECONDS = 1.0
"""A heartbeat older than this means the event loop is blocked."""


class StallWatch:
    """A heartbeat on the loop and a thread that reports when it stops.

    Args:
        state: the worker run whose running tasks are named in the report.
        threshold_seconds: how stale the heartbeat must be to count as a stall.
    """

    def __init__(self, state: WorkerState, threshold_seconds: float = STALL_SECONDS) -> None:
        self.state = state
        self.threshold_seconds = threshold_seconds
        self.beat = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="asynctasq-stall", daemon=True)

    async def run(self) -> None:
        """Stamp the heartbeat until cancelled (the watching thread lives as long)."""
        self._thread.start()
        try:
            while True:
                self.beat = time.monotonic()
                await asyncio.sleep(BEAT_SECONDS)
        finally:
            self._stop.set()

    def running_tasks(self) -> str:
        """Return the running tasks as ``name (id)`` text, safe to call from the thread."""
        for _ in range(3):
            try:
                jobs = list(self.state.running)
            except RuntimeError:  # the loop moved on while we looked
                continue
            names = sorted(
                f"{job.message.task_name} ({job.message.task_id})"
                for job in jobs
                if job.message is not None
            )
            return ", ".join(names) or "no task"
        return "unknown"

    def _watch(self) -> None:
        stalled_since: float | None = None
        while not self._stop.wait(self.threshold_seconds / 4):
            age = time.monotonic() - self.beat
            if age > self.threshold_seconds and stalled_since is None:
                stalled_since = self.beat
                logger.warning(
                    "the event loop is blocked (%.1f s so far): an async task is calling "
                    "blocking code; running: %s",
                    age,
                    self.running_tasks(),
                )
            elif age <= self.threshold_seconds and stalled_since is not None:
                logger.warning("the event loop was blocked for %.1f s", self.beat - stalled_since)
                stalled_since = None
