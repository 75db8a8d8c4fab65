"""Riding out broker trouble: capped backoff, and settlement calls retried until they land.

A broker outage of a few seconds must neither crash the worker nor lose a task (FIELD-CASES
C08, C09, C15): every loop logs the error, waits :func:`pause_seconds` and tries again; a
settlement call (retry, dead-letter) is repeated until it succeeds or the lease it depends
on is surely gone — then the broker redelivers the message to someone, so it is not lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from asynctasq.errors import DriverError

logger = logging.getLogger("asynctasq.worker")

FIRST_PAUSE_SECONDS = 0.1
"""The pause after the first consecutive failure."""

MAX_PAUSE_SECONDS = 5.0
"""The longest pause between attempts to reach the broker (so recovery is prompt)."""


def pause_seconds(failures: int) -> float:
    """Return the pause after ``failures`` consecutive failures (>= 1).

    ``0.1 * 2**(failures-1)`` seconds, capped at :data:`MAX_PAUSE_SECONDS`. The exponent is
    clamped first, so any count (even 10**6) gives a finite value (C15).
    """
    exponent = min(max(failures, 1) - 1, 16)
    return min(MAX_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2.0**exponent)


def log_failure(what: str, exc: BaseException, failures: int) -> None:
    """Log a failed broker call: a warning, with a traceback only for unexpected errors."""
    if isinstance(exc, DriverError):
        logger.warning("%s failed (%d in a row): %s", what, failures, exc)
    else:
        logger.error("%s failed (%d in a row)", what, failures, exc_info=exc)


async def persist(
    what: str, call: Callable[[], Awaitable[None]], deadline: Callable[[], float]
) -> bool:
    """Run ``call`` until it succeeds, or until monotonic time passes ``deadline()``.

    Args:
        what: the operation, for log lines (e.g. "retry of task 3f2a...").
        call: the broker call.
        deadline: returns when the lease this call depends on has surely expired
            (monotonic seconds; lease renewals move it on); after that the broker hands
            the message out again, so giving up loses nothing.

    Returns:
        True if the call succeeded, False if it was abandoned.
    """
    failures = 0
    while True:
        try:
            await call()
        except Exception as exc:  # every failure is logged and retried
            failures += 1
            log_failure(what, exc, failures)
            pause = pause_seconds(failures)
            if time.monotonic() + pause > deadline():
                logger.error(
                    "%s abandoned: its lease has expired, the broker will deliver it again",
                    what,
                )
                return False
            await asyncio.sleep(pause)
        else:
            if failures:
                logger.warning("%s succeeded after %d failures", what, failures)
            return True
