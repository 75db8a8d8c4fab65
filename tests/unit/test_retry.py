"""Retry policy: attempts counted once each (C14), backoff that never overflows (C15)."""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest

from asynctasq.config.records import MAX_DELAY_SECONDS
from asynctasq.retry import (
    MAX_BACKOFF_SECONDS,
    DeadLetter,
    Decision,
    Retry,
    backoff_seconds,
    decide,
    decide_redelivery,
    effective_attempt,
)


def run_always_failing(
    max_attempts: int, *, retry_allowed: bool = True, strategy: str = "fixed"
) -> tuple[list[int], Decision]:
    """Simulate a task that fails every time: the attempts executed and the final decision."""
    executed = []
    attempt = 1
    while True:
        executed.append(attempt)
        decision = decide(
            attempt=attempt,
            max_attempts=max_attempts,
            strategy=strategy,
            base_seconds=0.0,
            retry_allowed=retry_allowed,
        )
        if isinstance(decision, DeadLetter):
            return executed, decision
        attempt += 1


# ------------------------------------------------------------------------ C14: counting


def test_c14_max_attempts_4_executes_attempts_1_to_4_then_dead_letters() -> None:
    executed, final = run_always_failing(4)
    assert executed == [1, 2, 3, 4]
    assert final == DeadLetter("max attempts (4) reached")


def test_c14_should_retry_always_true_cannot_exceed_max_attempts() -> None:
    executed, final = run_always_failing(4, retry_allowed=True)
    assert executed == [1, 2, 3, 4]
    assert final == DeadLetter("max attempts (4) reached")


def test_c14_should_retry_false_dead_letters_at_once() -> None:
    executed, final = run_always_failing(4, retry_allowed=False)
    assert executed == [1]
    assert final == DeadLetter("should_retry returned False")


def test_c14_max_attempts_1_means_one_execution_then_dead_letter() -> None:
    executed, final = run_always_failing(1)
    assert executed == [1]
    assert final == DeadLetter("max attempts (1) reached")


@pytest.mark.parametrize("retry_allowed", [True, False])
def test_at_the_last_attempt_the_reason_is_max_attempts_whatever_should_retry_says(
    retry_allowed: bool,
) -> None:
    decision = decide(
        attempt=3,
        max_attempts=3,
        strategy="fixed",
        base_seconds=1.0,
        retry_allowed=retry_allowed,
    )
    assert decision == DeadLetter("max attempts (3) reached")


def test_an_attempt_past_the_maximum_dead_letters() -> None:
    decision = decide(attempt=9, max_attempts=4, strategy="fixed", base_seconds=1.0)
    assert decision == DeadLetter("max attempts (4) reached")


@pytest.mark.parametrize(
    ("strategy", "attempt", "delay"),
    [
        ("fixed", 1, 5.0),
        ("fixed", 7, 5.0),
        ("exponential", 1, 5.0),
        ("exponential", 2, 10.0),
        ("exponential", 3, 20.0),
        ("exponential", 10, 2560.0),
        ("exponential", 11, MAX_BACKOFF_SECONDS),
    ],
)
def test_retry_waits_the_backoff_of_the_attempt_that_failed(
    strategy: str, attempt: int, delay: float
) -> None:
    decision = decide(attempt=attempt, max_attempts=100, strategy=strategy, base_seconds=5.0)
    assert decision == Retry(delay)


def test_c14_a_crash_between_attempts_continues_the_count() -> None:
    # Attempt 3's message was delivered, its worker died, the broker delivered it again.
    assert effective_attempt(3, 2) == 4
    decision = decide(
        attempt=effective_attempt(3, 2), max_attempts=4, strategy="fixed", base_seconds=0
    )
    assert decision == DeadLetter("max attempts (4) reached")


# ----------------------------------------------------------------- crash redelivery (C01/C02)


@pytest.mark.parametrize(
    ("message_attempt", "delivery_count", "expected"),
    [(1, 1, 1), (1, 2, 2), (1, 3, 3), (3, 1, 3), (2, 3, 4), (1, 0, 1)],
)
def test_effective_attempt_counts_each_redelivery_as_an_attempt(
    message_attempt: int, delivery_count: int, expected: int
) -> None:
    assert effective_attempt(message_attempt, delivery_count) == expected


def test_a_redelivery_with_attempts_left_runs() -> None:
    assert decide_redelivery(message_attempt=1, delivery_count=2, max_attempts=3) is None


def test_c02_a_redelivery_after_the_last_attempt_is_dead_lettered_as_worker_lost() -> None:
    decision = decide_redelivery(message_attempt=1, delivery_count=2, max_attempts=1)
    assert decision == DeadLetter(
        "the worker holding attempt 1 was lost (it may not have started); max attempts (1) reached"
    )


# -------------------------------------------------------------------- C15: backoff bounds

C15_ATTEMPTS = [0, 1, 46, 47, 63, 64, 1023, 1024, 1025, 10**6, 10**100]


@pytest.mark.parametrize("attempt", C15_ATTEMPTS)
@pytest.mark.parametrize("base", [1, 1.0, 100.0, 0.001, 5e-324, 3600.0])
def test_c15_exponential_backoff_is_finite_and_capped_for_any_attempt(
    attempt: int, base: float
) -> None:
    delay = backoff_seconds("exponential", base, attempt)
    assert math.isfinite(delay)
    assert base <= delay <= MAX_BACKOFF_SECONDS
    assert dt.timedelta(seconds=delay) <= dt.timedelta(seconds=MAX_BACKOFF_SECONDS)


@pytest.mark.parametrize("attempt", C15_ATTEMPTS)
def test_c15_a_custom_cap_bounds_the_delay(attempt: int) -> None:
    assert backoff_seconds("exponential", 2.0, attempt, cap_seconds=60) <= 60
    assert backoff_seconds("exponential", 2.0, attempt, cap_seconds=0) == 2.0


def test_c15_saturates_at_the_cap_for_large_attempts() -> None:
    assert backoff_seconds("exponential", 1.0, 1024) == MAX_BACKOFF_SECONDS
    assert backoff_seconds("exponential", 1.0, 10**6) == MAX_BACKOFF_SECONDS


def test_c15_a_task_at_attempt_1500_of_2000_schedules_its_retry_at_the_cap() -> None:
    decision = decide(attempt=1500, max_attempts=2000, strategy="exponential", base_seconds=1)
    assert decision == Retry(MAX_BACKOFF_SECONDS)


def test_exponential_backoff_never_decreases_with_the_attempt() -> None:
    delays = [backoff_seconds("exponential", 0.5, n) for n in range(40)]
    assert delays == sorted(delays)


def test_a_base_above_the_cap_is_used_as_is() -> None:
    assert backoff_seconds("exponential", 7200.0, 1) == 7200.0
    assert backoff_seconds("exponential", 7200.0, 50) == 7200.0
    assert backoff_seconds("fixed", 7200.0, 50) == 7200.0


@pytest.mark.parametrize("strategy", ["fixed", "exponential"])
@pytest.mark.parametrize("attempt", [1, 2, 10**6])
def test_no_retry_waits_longer_than_365_days_whatever_the_message_says(
    strategy: str, attempt: int
) -> None:
    # Dispatch refuses retry_delay over the bound; a message from elsewhere is cut to it.
    assert backoff_seconds(strategy, 1e12, attempt) == MAX_DELAY_SECONDS == 365 * 86_400
    assert backoff_seconds(strategy, 1e12, attempt, cap_seconds=1e13) == MAX_DELAY_SECONDS


def test_a_zero_base_never_waits() -> None:
    assert backoff_seconds("exponential", 0, 10**6) == 0.0
    assert backoff_seconds("fixed", 0, 3) == 0.0


@pytest.mark.parametrize(
    ("strategy", "base", "cap", "error"),
    [
        ("linear", 1.0, 60.0, "retry strategy must be 'fixed' or 'exponential', got 'linear'"),
        ("fixed", -1.0, 60.0, "must be finite numbers >= 0"),
        ("exponential", math.nan, 60.0, "must be finite numbers >= 0"),
        ("exponential", math.inf, 60.0, "must be finite numbers >= 0"),
        ("exponential", 1.0, math.inf, "must be finite numbers >= 0"),
        ("exponential", 1.0, -5.0, "must be finite numbers >= 0"),
    ],
)
def test_bad_inputs_other_than_the_attempt_are_a_value_error(
    strategy: str, base: float, cap: float, error: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        backoff_seconds(strategy, base, 1, cap_seconds=cap)
