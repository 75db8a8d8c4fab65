"""Dead letters and log lines carry any error a task raises, bounded so every broker takes it.

A dead letter the broker refuses (MySQL: "Data too long for column 'error_message'") was
retried until its lease expired and then recorded as ``WorkerLostError``: the real error
was lost. The limits are the driver protocol's; the text keeps its beginning and says it
was cut.
"""

from __future__ import annotations

import logging

import pytest

from asynctasq.drivers.protocol import (
    MAX_ERROR_MESSAGE_BYTES,
    MAX_ERROR_TYPE_BYTES,
    MAX_TASK_NAME_BYTES,
    Outgoing,
)
from asynctasq.handle import Handle
from asynctasq.message import TaskMessage, encode
from asynctasq.tasks import task
from asynctasq.worker.errortext import MAX_LOG_ERROR_BYTES, cut, describe_error, error_text
from tests.unit.worker.conftest import dead, memory, work

pytestmark = pytest.mark.anyio


def test_short_text_is_kept_as_it_is() -> None:
    assert cut("KeyError: 'x'", 255) == "KeyError: 'x'"
    assert cut("é" * 127, 255) == "é" * 127  # 254 bytes


def test_long_text_keeps_its_beginning_and_says_how_long_it_was() -> None:
    text = "é" * 100_000  # 200,000 UTF-8 bytes: the limit counts bytes, not characters
    short = cut(text, MAX_ERROR_MESSAGE_BYTES)
    assert len(short.encode()) <= MAX_ERROR_MESSAGE_BYTES
    assert short.endswith("... [cut, 200000 bytes in all]")
    kept = short.removesuffix("... [cut, 200000 bytes in all]")
    assert kept == "é" * len(kept)  # whole characters
    assert len(kept) > 8000  # most of the room


def test_nul_and_unpaired_surrogates_are_written_out() -> None:
    # PostgreSQL TEXT refuses NUL; no UTF-8 encoder takes an unpaired surrogate.
    assert cut("a\x00b\udcffc", 255) == "a\\x00b\\udcffc"
    assert cut("a\x00b\udcffc", 255).encode("utf-8")


def test_an_exception_whose_str_raises_still_has_a_text() -> None:
    class Unprintable(Exception):  # noqa: N818 -- a user's exception, named as users do
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert error_text(Unprintable()) == "<str() of the Unprintable failed: RuntimeError>"
    assert describe_error(Unprintable()).startswith("Unprintable: <str() of the")


async def test_a_huge_error_is_dead_lettered_with_its_beginning_and_the_line_stays_short(
    handle: Handle, caplog: pytest.LogCaptureFixture
) -> None:
    @task(max_attempts=1)
    async def longerr() -> None:
        raise RuntimeError("e" * 100_000)

    await longerr().dispatch()
    with caplog.at_level(logging.INFO, logger="asynctasq.task"):
        stats = await work(handle, tasks=[longerr], max_tasks=1)
    assert stats.dead_lettered == 1
    [entry] = await dead(handle)
    assert entry.error_type == "RuntimeError"
    assert len(entry.error_message.encode()) <= MAX_ERROR_MESSAGE_BYTES
    assert entry.error_message.startswith("eeee")
    assert entry.error_message.endswith("... [cut, 100000 bytes in all]")
    [line] = [r.getMessage() for r in caplog.records if r.name == "asynctasq.task"]
    assert "(RuntimeError: eeee" in line
    assert len(line) < MAX_LOG_ERROR_BYTES + 500
    assert line.endswith("dead-lettered: max attempts (1) reached")


async def test_a_class_name_longer_than_a_column_and_odd_characters_are_bounded(
    handle: Handle,
) -> None:
    name = "Error" + "x" * 300
    error_class = type(name, (Exception,), {})

    @task(max_attempts=1)
    async def odd() -> None:
        raise error_class("nul \x00 and \udcff")

    await odd().dispatch()
    stats = await work(handle, tasks=[odd], max_tasks=1)
    assert stats.dead_lettered == 1
    [entry] = await dead(handle)
    assert len(entry.error_type.encode()) <= MAX_ERROR_TYPE_BYTES
    assert entry.error_type.startswith("Errorxxx")
    assert entry.error_type.endswith("... [cut, 305 bytes in all]")
    assert entry.error_message == "nul \\x00 and \\udcff"


async def test_an_exception_whose_str_raises_is_dead_lettered(handle: Handle) -> None:
    class Unprintable(Exception):  # noqa: N818 -- a user's exception, named as users do
        def __str__(self) -> str:
            raise RuntimeError("no")

    @task(max_attempts=1)
    async def unprintable() -> None:
        raise Unprintable

    await unprintable().dispatch()
    stats = await work(handle, tasks=[unprintable], max_tasks=1)
    assert stats.dead_lettered == 1
    [entry] = await dead(handle)
    assert (entry.error_type, entry.error_message) == (
        "Unprintable",
        "<str() of the Unprintable failed: RuntimeError>",
    )


async def test_an_unknown_task_name_longer_than_a_column_is_dead_lettered_cut(
    handle: Handle,
) -> None:
    name = "app.tasks:" + "n" * 2000  # only a foreign or crafted message can carry this
    message = TaskMessage(
        task_id="t-1",
        task_name=name,
        args=(),
        kwargs={},
        queue="q",
        attempt=1,
        max_attempts=1,
        retry_strategy="fixed",
        retry_delay_seconds=0.0,
        timeout_seconds=None,
        visibility_timeout_seconds=60.0,
        correlation_id=None,
        dispatched_at=0.0,
        mode="async",
    )

    @task
    async def other() -> None:
        return None

    await (await memory(handle)).enqueue(Outgoing("q", encode(message)))
    stats = await work(handle, tasks=[other], max_tasks=1)
    assert stats.dead_lettered == 1
    [entry] = await dead(handle)
    assert entry.error_type == "TaskNotFoundError"
    assert len(entry.task_name.encode()) <= MAX_TASK_NAME_BYTES
    assert entry.task_name.startswith("app.tasks:nnn")
    assert len(entry.error_message.encode()) <= MAX_ERROR_MESSAGE_BYTES
