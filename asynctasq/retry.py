"""What happens after a failed attempt: the backoff delay and the retry decision (pure).

Attempts are 1-based: attempt 1 is the first execution, and ``max_attempts`` counts every
execution, the first included. So ``max_attempts=4`` allows attempts 1, 2, 3 and 4; the
failure of attempt 4 dead-letters the task (``failed()`` runs once, then). A crash of the
worker counts as an attempt too (:func:`effective_attempt`).

Backoff after attempt ``n`` fails (``base`` is the task's ``retry_delay``, seconds)::

    fixed:        base
    exponential:  min(base * 2 ** (n - 1), max(cap, base))     cap = MAX_BACKOFF_SECONDS

The cap bounds the growth, never the configured delay itself: a ``retry_delay`` above the
cap is used as is. It is computed without overflow for any ``n`` (1, 64, 1024, 10**6 ...).
No delay exceeds :data:`~asynctasq.config.records.MAX_DELAY_SECONDS` (365 days): a larger
``retry_delay`` is refused where it is set, and one arriving in a message from elsewhere
is cut to it here (a broker storing the due time as a date would refuse it).
There is no jitter: the delay is a pure function of its inputs, so retries are
reproducible and testable; tasks that failed together are already spread by their
different attempt counts and dispatch times.

Source: SPEC §4 (``retry_delay * 2**(attempt-1)``, capped and documented);
seed/configuration.md (``retry_strategy`` fixed/exponential, ``max_attempts``, ``retry_delay``).
"""

from __future__ import annotations

import math
from typing import Final, TypeAlias

import attrs

from asynctasq.config.records import MAX_DELAY_SECONDS

MAX_BACKOFF_SECONDS: Final = 3600.0
"""The ceiling on an exponential backoff, seconds: one hour.

Long enough to ride out a broker or downstream outage (``retry_delay=1`` reaches it at
attempt 13), short enough that a retried task still runs the same day it was dispatched
and well within brokers' delayed-delivery limits (SQS takes longer delays in hops).
"""


@attrs.frozen
class Retry:
    """Run the task again after ``delay_seconds`` (>= 0), as the next attempt."""

    delay_seconds: float


@attrs.frozen
class DeadLetter:
    """Stop: record the task in the dead-letter store for ``reason``.

    ``reason`` is one of ``"max attempts (N) reached"``, ``"should_retry returned False"``
    or, for a task whose worker died holding its last attempt,
    ``"the worker holding attempt N was lost (it may not have started); max attempts (N)
    reached"`` — a worker (or a broker's prefetch) may hold a delivery before it starts it,
    and a redelivery cannot tell whether it did.
    """

    reason: str


Decision: TypeAlias = Retry | DeadLetter


def backoff_seconds(
    strategy: str,
    base_seconds: float,
    attempt: int,
    *,
    cap_seconds: float = MAX_BACKOFF_SECONDS,
) -> float:
    """Return the delay before retrying a task whose attempt ``attempt`` failed.

    Args:
        strategy: ``"fixed"`` or ``"exponential"``.
        base_seconds: the task's ``retry_delay``, seconds (finite, >= 0).
        attempt: the 1-based attempt that failed; below 1 counts as 1. Any size is fine.
        cap_seconds: the ceiling on exponential growth, seconds (finite, >= 0).

    Returns:
        Seconds, finite, from 0 to ``MAX_DELAY_SECONDS``: ``base`` for fixed; for
        exponential ``min(base * 2**(attempt-1), max(cap_seconds, base))``.

    Raises:
        ValueError: ``strategy`` is not fixed/exponential, or ``base_seconds`` or
            ``cap_seconds`` is negative, NaN or infinite (never because of ``attempt``).

    Source: SPEC §4.
    """
    base, cap = float(base_seconds), float(cap_seconds)
    if not (0 <= base < math.inf and 0 <= cap < math.inf):
        raise ValueError(
            f"base_seconds and cap_seconds must be finite numbers >= 0, "
            f"got {base_seconds!r} and {cap_seconds!r}"
        )
    if strategy == "fixed":
        return min(base, float(MAX_DELAY_SECONDS))
    if strategy != "exponential":
        raise ValueError(f"retry strategy must be 'fixed' or 'exponential', got {strategy!r}")
    ceiling = min(max(cap, base), float(MAX_DELAY_SECONDS))
    # 2**2100 overflows a float for every positive base (even 2**-1074), so a larger
    # exponent cannot change the result: it saturates at the ceiling either way.
    exponent = min(max(attempt - 1, 0), 2100)
    try:
        return min(math.ldexp(base, exponent), ceiling)
    except OverflowError:
        return ceiling


def decide(
    *,
    attempt: int,
    max_attempts: int,
    strategy: str,
    base_seconds: float,
    retry_allowed: bool = True,
) -> Decision:
    """Decide what follows the failure of attempt ``attempt``.

    ``Retry`` iff ``attempt < max_attempts`` and ``retry_allowed``; the delay is
    :func:`backoff_seconds` for that attempt. So ``should_retry`` (passed as
    ``retry_allowed``) can only reduce the executions, never exceed ``max_attempts``; a
    timeout is a failure like any other.

    Args:
        attempt: the 1-based attempt that just failed (see :func:`effective_attempt`).
        max_attempts: executions allowed in total, the first included.
        strategy: ``"fixed"`` or ``"exponential"``.
        base_seconds: the task's ``retry_delay``, seconds.
        retry_allowed: what the task's ``should_retry(exc)`` returned (True without one).

    Returns:
        ``Retry(delay_seconds)`` or ``DeadLetter(reason)``; when attempts are exhausted the
        reason is ``"max attempts (N) reached"`` whatever ``retry_allowed`` says.

    Raises:
        ValueError: an unknown ``strategy`` or a bad ``base_seconds`` (see
            :func:`backoff_seconds`); only when a retry is due.

    Source: SPEC §4; seed/configuration.md (``max_attempts`` counts every execution).
    """
    if attempt >= max_attempts:
        return DeadLetter(f"max attempts ({max_attempts}) reached")
    if not retry_allowed:
        return DeadLetter("should_retry returned False")
    return Retry(backoff_seconds(strategy, base_seconds, attempt))


def effective_attempt(message_attempt: int, delivery_count: int) -> int:
    """Return the attempt number of this execution: ``message_attempt + delivery_count - 1``.

    A message is delivered again (``delivery_count`` > 1) only when the worker holding it
    died or stalled past its visibility timeout, so each redelivery means one execution
    was lost, and it counts as an attempt (a crash loop cannot run a task forever).

    Args:
        message_attempt: the ``attempt`` field of the message (1-based).
        delivery_count: the broker's delivery count for this body, this delivery included
            (1 the first time).

    Source: field cases C01/C02 (a crash counts as an attempt; recovery follows the policy).
    """
    return message_attempt + max(delivery_count, 1) - 1


def decide_redelivery(
    *, message_attempt: int, delivery_count: int, max_attempts: int
) -> DeadLetter | None:
    """Decide whether a delivery may run, before running it.

    Returns ``None`` when :func:`effective_attempt` is within ``max_attempts`` (run it as
    that attempt), else a ``DeadLetter`` saying the worker was lost during the last
    allowed attempt, so the task is recorded, never silently dropped nor run once more.

    Args:
        message_attempt: the ``attempt`` field of the message (1-based).
        delivery_count: the broker's delivery count, this delivery included.
        max_attempts: executions allowed in total.

    Source: field case C02 (with no attempt left, an abandoned task is dead-lettered with a
    reason naming the worker loss).
    """
    attempt = effective_attempt(message_attempt, delivery_count)
    if attempt <= max_attempts:
        return None
    return DeadLetter(
        f"the worker holding attempt {attempt - 1} was lost (it may not have started); "
        f"max attempts ({max_attempts}) reached"
    )
