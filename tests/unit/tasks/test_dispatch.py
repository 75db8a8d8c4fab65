from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from asynctasq import context
from asynctasq.drivers.protocol import Outgoing
from asynctasq.errors import ConfigError, MessageTooLargeError, SerializationError
from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many, task
from tests.unit.tasks.conftest import enqueued

pytestmark = pytest.mark.anyio


@task
async def echo(value: object) -> object:
    return value


@task(queue="other")
async def elsewhere(value: int) -> int:
    return value


async def test_dispatch_without_a_current_handle_says_to_call_init() -> None:
    token = context.make_current(None)
    try:
        with pytest.raises(ConfigError, match=r"init\(\)"):
            await echo(1).dispatch()
    finally:
        context.restore(token)


async def test_an_argument_that_cannot_travel_is_named_at_dispatch(handle: Handle) -> None:
    with pytest.raises(SerializationError, match=r"args\[0\]"):
        await echo(asyncio.Lock()).dispatch()
    assert await enqueued(handle, "default") == []


async def test_a_message_above_the_driver_limit_is_refused(
    handle: Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = await handle.driver()
    monkeypatch.setattr(driver, "max_message_bytes", 200)
    with pytest.raises(MessageTooLargeError, match="200 bytes"):
        await echo("x" * 500).dispatch()
    await echo("small").dispatch()
    assert [m.args for m in await enqueued(handle, "default")] == [("small",)]


async def test_dispatch_many_sends_everything_in_one_driver_call(
    handle: Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = await handle.driver()
    calls: list[list[Outgoing]] = []
    original = driver.enqueue_many

    async def spy(messages: Sequence[Outgoing]) -> None:
        calls.append(list(messages))
        await original(messages)

    monkeypatch.setattr(driver, "enqueue_many", spy)
    pendings = [echo(i) for i in range(5)] + [elsewhere(9), echo(5).delay(30)]
    ids = await dispatch_many(pendings)
    assert len(calls) == 1
    assert [o.task_id for o in calls[0]] == ids
    assert len(set(ids)) == 7
    assert [m.args for m in await enqueued(handle, "default")] == [(i,) for i in range(5)]
    assert [m.args for m in await enqueued(handle, "other")] == [(9,)]
    assert calls[0][-1].delay_seconds == 30


async def test_dispatch_many_sends_nothing_when_one_argument_is_bad(handle: Handle) -> None:
    with pytest.raises(SerializationError, match=r"^dispatch_many item 1 \(.*echo\): .*args\[0\]"):
        await dispatch_many([echo(1), echo(object()), echo(3)])
    assert await enqueued(handle, "default") == []


async def test_dispatch_many_names_the_item_above_the_driver_limit(
    handle: Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(await handle.driver(), "max_message_bytes", 200)
    with pytest.raises(MessageTooLargeError, match=r"^dispatch_many item 2 .*200 bytes"):
        await dispatch_many([echo(1), echo(2), echo("x" * 500)])
    assert await enqueued(handle, "default") == []


async def test_dispatch_many_of_nothing_returns_nothing(handle: Handle) -> None:
    assert await dispatch_many([]) == []
