"""Lease renewal from a thread of its own, immune to a blocked worker loop (C06, C16.3).

The thread runs its own event loop with its own driver built from the same configuration
(so its own connections), and every :data:`TICK_SECONDS` renews the worker's due leases.
It reads the worker's set of held jobs (a copy, taken under the GIL) and writes only the
jobs' renewal times. An ``async`` task that blocks the worker's event loop therefore keeps
its lease; the task itself still cannot be pre-empted (its run is counted as timed out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from asynctasq.drivers.protocol import Driver
from asynctasq.worker.lease import due_jobs, renew
from asynctasq.worker.state import WorkerState

logger = logging.getLogger("asynctasq.worker")

TICK_SECONDS = 0.2
"""How often the thread looks for due renewals (leases shorter than ~0.6 s are not supported)."""

START_SECONDS = 30.0
"""How long :meth:`LeaseThread.start` waits for the thread's driver to connect."""


class LeaseThread:
    """Renews ``state``'s leases from a daemon thread with its own loop and driver.

    Args:
        state: the worker run whose held jobs are renewed.
        build_driver: makes the thread's (unopened) driver, e.g.
            ``lambda: build_driver(config, name)``.
    """

    def __init__(self, state: WorkerState, build_driver: Callable[[], Driver]) -> None:
        self.state = state
        self._build = build_driver
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="asynctasq-lease", daemon=True)

    async def start(self) -> None:
        """Start the thread and wait until its driver is connected.

        Raises:
            DriverError: the thread's driver could not connect (or anything its build raised).
        """
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, START_SECONDS)
        if self._error is not None:
            raise self._error

    async def stop(self) -> None:
        """Stop renewing and wait for the thread to close its driver."""
        self._stopping.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended
                loop.call_soon_threadsafe(wake.set)
        await asyncio.to_thread(self._thread.join, 10.0)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(), or logged if it comes later
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                logger.exception("the lease renewal thread stopped")

    async def _serve(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        driver = self._build()
        await driver.open()
        self._ready.set()
        failures = 0
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                due = due_jobs(self.state.held.copy(), now)
                if due:
                    failures = await renew(driver, due, now, failures)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK_SECONDS):
                        await self._wake.wait()
        finally:
            await driver.close()
