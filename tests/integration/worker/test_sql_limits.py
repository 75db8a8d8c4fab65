"""What SQL columns cannot hold as it is: long or odd error text, far delays and leases.

Before the worker bounded them, MySQL refused a 100 KB message ("Data too long for column
'error_message'") or a class name over 255 characters, PostgreSQL a NUL, every driver an
unpaired surrogate: the dead letter was retried until its lease expired, then the task was
redelivered and dead-lettered as ``WorkerLostError`` — the real error lost. And a
``retry_delay`` of 10**12 s overflowed MySQL's DATETIME on every retry; delays and leases
are now at most ``MAX_DELAY_SECONDS`` (365 days), which every SQL driver stores.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from asynctasq.config.records import MAX_DELAY_SECONDS
from asynctasq.drivers.protocol import MAX_ERROR_MESSAGE_BYTES, DeadLetterStore, Outgoing
from asynctasq.handle import configured
from asynctasq.message import TaskMessage, encode
from asynctasq.tasks import task
from asynctasq.worker import run_worker
from tests.integration.sql_servers import migrated

pytestmark = pytest.mark.anyio

LONG_NAME = "Error" + "x" * 300

LongNamed = type(LONG_NAME, (Exception,), {})


@task(max_attempts=1, queue="texts")
async def long_message() -> None:
    raise RuntimeError("é" * 50_000)  # 100,000 UTF-8 bytes: over MySQL's 65,535-byte TEXT


@task(max_attempts=1, queue="texts")
async def long_class() -> None:
    raise LongNamed("nul \x00 and an unpaired surrogate \udcff")


@pytest.mark.parametrize("name", ["postgres", "mysql", "sqlite"])
async def test_long_and_odd_error_texts_are_dead_lettered_with_the_real_error(
    name: str, tmp_path: Path
) -> None:
    async with migrated(name, tmp_path) as (_, settings):  # noqa: SIM117
        async with configured(driver=name, **{name: settings}) as handle:
            await long_message().dispatch()
            await long_class().dispatch()
            with anyio.fail_after(60):  # before the fix: stuck until the 3600 s lease expired
                stats = await run_worker(
                    handle,
                    tasks=[long_message, long_class],
                    queues=["texts"],
                    max_tasks=2,
                    handle_signals=False,
                )
            store = await handle.driver()
            assert isinstance(store, DeadLetterStore)
            entries = {e.task_name: e for e in await store.dead_letters("texts")}
    assert (stats.dead_lettered, len(entries)) == (2, 2)
    cut_message = entries[long_message.name]
    assert cut_message.error_type == "RuntimeError"
    assert cut_message.error_message.startswith("éééé")
    assert cut_message.error_message.endswith("... [cut, 100000 bytes in all]")
    assert len(cut_message.error_message.encode()) <= MAX_ERROR_MESSAGE_BYTES
    odd = entries[long_class.name]
    assert odd.error_type.startswith("Errorxxx")
    assert odd.error_type.endswith("... [cut, 305 bytes in all]")
    assert odd.error_message == "nul \\x00 and an unpaired surrogate \\udcff"


@task(queue="limits")
async def far() -> None:
    return None


@task(queue="limits", max_attempts=2)
async def failing() -> None:
    raise RuntimeError("fails")


def from_elsewhere(retry_delay: float) -> bytes:
    """Return a message another producer wrote, with a retry delay dispatch would refuse."""
    return encode(
        TaskMessage(
            task_id="elsewhere-1",
            task_name=failing.name,
            args=(),
            kwargs={},
            queue="limits",
            attempt=1,
            max_attempts=2,
            retry_strategy="fixed",
            retry_delay_seconds=retry_delay,
            timeout_seconds=None,
            visibility_timeout_seconds=retry_delay,
            correlation_id=None,
            dispatched_at=0.0,
            mode="async",
        )
    )


@pytest.mark.parametrize("name", ["postgres", "mysql", "sqlite"])
async def test_delays_and_leases_up_to_the_bound_are_stored_and_larger_ones_cut(
    name: str, tmp_path: Path
) -> None:
    async with migrated(name, tmp_path) as (_, settings):  # noqa: SIM117
        async with configured(driver=name, **{name: settings}) as handle:
            driver = await handle.driver()
            await far().delay(MAX_DELAY_SECONDS).dispatch()
            await far().visibility_timeout(MAX_DELAY_SECONDS).dispatch()
            await driver.enqueue(Outgoing("limits", from_elsewhere(1e12)))
            with anyio.fail_after(60):  # before the fix: the retry failed until the lease ended
                stats = await run_worker(
                    handle,
                    tasks=[far, failing],
                    queues=["limits"],
                    max_tasks=2,
                    handle_signals=False,
                )
            sizes = await driver.sizes("limits")
    assert (stats.succeeded, stats.retried) == (1, 1)
    assert (sizes.ready, sizes.in_flight, sizes.delayed, sizes.dead) == (0, 0, 2, 0)
