"""Idle SQL consumers: adaptive polling and per-queue wake-ups, without a database."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from asynctasq.drivers.sql_wakeup import MAX_POLL_SECONDS, MIN_POLL_SECONDS, Wakeup

pytestmark = pytest.mark.anyio


def test_the_poll_interval_doubles_up_to_the_maximum_and_resets_on_work() -> None:
    wakeup = Wakeup(min_poll_seconds=0.01, max_poll_seconds=0.05)
    assert [wakeup.next_poll() for _ in range(5)] == [0.01, 0.02, 0.04, 0.05, 0.05]
    wakeup.worked()
    assert wakeup.next_poll() == 0.01


def test_the_default_poll_runs_from_10_ms_to_half_a_second() -> None:
    assert (MIN_POLL_SECONDS, MAX_POLL_SECONDS) == (0.01, 0.5)


async def test_a_notification_wakes_only_the_waiters_on_that_queue() -> None:
    wakeup = Wakeup()
    wakeup.polling = False
    with wakeup.watch(["a"]) as on_a, wakeup.watch(["b", "c"]) as on_bc:
        waiting_a = asyncio.create_task(on_a.wait(10))
        waiting_bc = asyncio.create_task(on_bc.wait(10))
        await asyncio.sleep(0)
        wakeup.notify("c")
        with anyio.fail_after(5):
            await waiting_bc
        assert not waiting_a.done()
        wakeup.notify()
        with anyio.fail_after(5):
            await waiting_a


async def test_a_notification_before_the_wait_is_not_lost() -> None:
    wakeup = Wakeup()
    wakeup.polling = False
    with wakeup.watch(["a"]) as watch:
        wakeup.notify("a")  # arrives while the claim runs, before the wait
        with anyio.fail_after(5):
            await watch.wait(30)


async def test_a_polling_wait_lasts_at_most_the_poll_interval() -> None:
    wakeup = Wakeup(min_poll_seconds=0.01, max_poll_seconds=0.02)
    with wakeup.watch(["a"]) as watch, anyio.fail_after(5):
        for _ in range(5):
            await watch.wait(60)
