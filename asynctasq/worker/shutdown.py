"""Stopping a worker: the first request drains, the second aborts (SPEC §4, C18).

:class:`Shutdown` is the switch ``run_worker`` watches. ``SIGTERM``/``SIGINT`` call
:meth:`Shutdown.request` when :func:`signal_handlers` installed them; tests and embedding
code call it directly.

* First request: stop fetching at once, give back claimed-but-unstarted deliveries at once,
  let running tasks finish within the grace period, then give back what still runs.
* Second request: cancel running tasks now and give their deliveries back (not counted as
  an attempt), then exit. Nothing is lost either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

logger = logging.getLogger("asynctasq.worker")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

SLOW_STOP_STEP_SECONDS = 2.0
"""A step of stopping (ending the fetch, the final acks, leaving the registry, closing the
broker connections) that takes this long or longer is logged as a warning with its time."""


@contextlib.contextmanager
def timed_stop_step(step: str) -> Iterator[None]:
    """Log a warning naming ``step`` and its seconds if it took :data:`SLOW_STOP_STEP_SECONDS`.

    A worker normally stops within about a second after its running tasks end; when a
    stop is slow (a slow or unreachable broker), the log then says which step held it.
    """
    began = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - began
        if took >= SLOW_STOP_STEP_SECONDS:
            logger.warning("stopping took %.1f s in: %s", took, step)


class Shutdown:
    """A two-step stop switch for one worker run (create it inside the running loop)."""

    def __init__(self) -> None:
        self.draining = asyncio.Event()
        self.aborting = asyncio.Event()
        self.requests = 0

    def request(self, reason: str = "requested") -> None:
        """Ask the worker to stop: drain on the first call, abort on the next."""
        self.requests += 1
        if self.requests == 1:
            logger.warning(
                "worker stopping (%s): no new tasks; running ones may finish "
                "(again to stop at once)",
                reason,
            )
            self.draining.set()
        else:
            logger.warning("worker aborting (%s): cancelling running tasks", reason)
            self.draining.set()
            self.aborting.set()


@contextlib.contextmanager
def signal_handlers(shutdown: Shutdown) -> Iterator[None]:
    """Route SIGTERM and SIGINT to ``shutdown.request`` while the block runs.

    Does nothing off the main thread, or where the loop cannot take signal handlers.
    """
    with _stop_signals_call(shutdown.request):
        yield


@contextlib.contextmanager
def _stop_signals_call(callback: Callable[[str], object]) -> Iterator[None]:
    """Call ``callback(signal name)`` on SIGTERM and SIGINT while the block runs.

    Does nothing off the main thread, or where the loop cannot take signal handlers.
    """
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for number in STOP_SIGNALS:
            try:
                loop.add_signal_handler(number, callback, number.name)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                continue
            installed.append(number)
    try:
        yield
    finally:
        for number in installed:
            loop.remove_signal_handler(number)


async def unless_signalled(step: str, coroutine: Coroutine[Any, Any, None]) -> None:
    """Await ``coroutine``; SIGTERM or SIGINT meanwhile cancels it instead of killing us.

    For the last steps of a stopping process (closing broker connections), after the
    worker's own handlers are gone: another signal then ends the step at once, logged, and
    the process exits normally. Off the main thread it simply awaits ``coroutine``.
    """
    loop = asyncio.get_running_loop()
    task = loop.create_task(coroutine)
    signalled: list[str] = []

    def cancel(name: str) -> None:
        if not signalled:
            logger.warning("%s: cut short by %s", step, name)
        signalled.append(name)
        task.cancel()

    with _stop_signals_call(cancel):
        try:
            await task
        except asyncio.CancelledError:
            if not signalled:
                raise  # cancelled from outside, not by a signal
