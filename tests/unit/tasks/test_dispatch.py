from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from asynctasq import context
from asynctasq.drivers.protocol import Outgoing
from asynctasq.errors import ConfigError, MessageTooLargeError, SerializationError
from asynctasq.handle import Handle
from asynctasq.tasks import AsyncTask, dispatch_many, task
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


async def test_dispatch_many_of_something_else_is_a_type_error_naming_the_item(
    handle: Handle,
) -> None:
    # was AttributeError: 'int' object has no attribute 'overrides'
    with pytest.raises(TypeError) as caught:
        await dispatch_many([1, 2])  # type: ignore[list-item]
    assert str(caught.value) == (
        "dispatch_many item 0 is int 1, not a pending dispatch: pass what calling a task "
        "returns, e.g. send_email(to), or a chained call on it"
    )
    with pytest.raises(TypeError) as caught:
        await dispatch_many([echo(1), echo])  # type: ignore[list-item]
    assert str(caught.value) == (
        f"dispatch_many item 1 is the task {echo.name!r} itself, not a call of it: pass the "
        "call, e.g. my_task(arguments), not my_task"
    )
    assert await enqueued(handle, "default") == []


async def test_dispatch_many_of_a_class_task_instance_says_how_to_pass_it(
    handle: Handle,
) -> None:
    class Mail(AsyncTask):
        async def execute(self) -> None: ...

    with pytest.raises(TypeError) as caught:
        await dispatch_many([echo(1), Mail()])  # type: ignore[list-item]
    assert str(caught.value) == (
        "dispatch_many item 1 is a test_dispatch_many_of_a_class_task_instance_says_how_to_"
        "pass_it.<locals>.Mail task instance, not a pending dispatch: pass "
        "test_dispatch_many_of_a_class_task_instance_says_how_to_pass_it.<locals>.Mail(...)"
        ".pending() (or a chained call such as .on_queue())"
    )
    assert await dispatch_many([Mail().pending()]) != []


async def test_dispatch_many_of_nothing_returns_nothing(handle: Handle) -> None:
    assert await dispatch_many([]) == []


async def test_dispatch_many_of_a_generator_or_map_sends_every_item(handle: Handle) -> None:
    # a generator was used up by the item check and nothing was sent, silently
    from_generator = await dispatch_many(echo(i) for i in range(3))
    from_map = await dispatch_many(map(echo, [3, 4]))
    assert len(from_generator) == 3
    assert len(from_map) == 2
    sent = await enqueued(handle, "default")
    assert [m.args for m in sent] == [(0,), (1,), (2,), (3,), (4,)]
    assert [m.task_id for m in sent] == [*from_generator, *from_map]


async def test_dispatch_many_of_one_pending_dispatch_or_a_non_iterable_says_what_to_pass(
    handle: Handle,
) -> None:
    with pytest.raises(TypeError, match=r"not one: pass dispatch_many\(\[pending\]\)"):
        await dispatch_many(echo(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="iterable of pending dispatches, not int 5"):
        await dispatch_many(5)  # type: ignore[arg-type]
    assert await enqueued(handle, "default") == []
