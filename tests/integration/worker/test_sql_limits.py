"""Error texts SQL columns cannot hold as they are reach the dead-letter table, cut.

Before the worker bounded them, MySQL refused a 100 KB message ("Data too long for column
'error_message'") or a class name over 255 characters, PostgreSQL a NUL, every driver an
unpaired surrogate: the dead letter was retried until its lease expired, then the task was
redelivered and dead-lettered as ``WorkerLostError`` — the real error lost.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from asynctasq.drivers.protocol import MAX_ERROR_MESSAGE_BYTES, DeadLetterStore
from asynctasq.handle import configured
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
