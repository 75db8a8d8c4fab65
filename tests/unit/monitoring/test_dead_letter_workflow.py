"""The dead-letter workflow through the API: list, find, requeue at attempt 1, purge."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from asynctasq import configured, current_task
from asynctasq.errors import ConfigError
from asynctasq.handle import Handle
from asynctasq.message import decode, encode
from asynctasq.monitoring import (
    find_dead_letter,
    list_dead_letters,
    purge_dead_letters,
    requeue_dead_letters,
)
from asynctasq.monitoring.dead_letters import first_attempt, read_message
from asynctasq.tasks import task
from tests.unit.worker.conftest import dead, memory, sizes, work

pytestmark = pytest.mark.anyio

DEFAULTS = {"queue": "q", "retry_delay": 0, "retry_strategy": "fixed", "max_attempts": 2}

healthy: list[bool] = []
attempts_seen: list[tuple[str, int]] = []


@task(queue="q")
async def fragile(n: int) -> None:
    info = current_task()
    assert info is not None
    attempts_seen.append((info.task_id, info.attempt))
    if not healthy:
        raise ConnectionError("the mail server is down")


@pytest.fixture
async def handle() -> AsyncIterator[Handle]:
    healthy.clear()
    attempts_seen.clear()
    async with configured(driver="memory", task_defaults=DEFAULTS) as opened:
        yield opened


async def fail_three(handle: Handle) -> list[str]:
    ids = [await fragile(n).dispatch() for n in range(3)]
    await work(handle, tasks=[fragile], max_tasks=6)  # 2 attempts each, then dead
    return ids


async def test_dead_letters_are_listed_oldest_first_and_found_by_id(handle: Handle) -> None:
    ids = await fail_three(handle)
    listed = await list_dead_letters(handle, "q")
    assert sorted(e.task_id for e in listed) == sorted(ids)
    assert {(e.error_type, e.error_message, e.attempts) for e in listed} == {
        ("ConnectionError", "the mail server is down", 2)
    }
    assert len(await list_dead_letters(None, "q", limit=2)) == 2  # None: the current handle
    found = await find_dead_letter(handle, "q", ids[1])
    assert found is not None
    assert found.task_id == ids[1]
    assert await find_dead_letter(handle, "q", "nope") is None
    message = read_message(found)
    assert not isinstance(message, str)
    assert (message.task_name, message.args, message.attempt) == (fragile.name, (1,), 2)


async def test_requeued_tasks_start_again_at_attempt_1_with_their_ids_and_run(
    handle: Handle,
) -> None:
    ids = await fail_three(handle)
    attempts_seen.clear()
    healthy.append(True)
    assert await requeue_dead_letters(handle, "q", [ids[0]]) == 1
    assert [e.task_id for e in await dead(handle)] == sorted(ids[1:], key=ids.index)
    stats = await work(handle, tasks=[fragile], max_tasks=1)
    assert stats.succeeded == 1
    assert attempts_seen == [(ids[0], 1)]
    assert await requeue_dead_letters(handle, "q") == 2
    await work(handle, tasks=[fragile], max_tasks=2)
    assert sorted(attempts_seen) == sorted((i, 1) for i in ids)
    assert await sizes(handle) == type(await sizes(handle))(0, 0, 0, 0)


async def test_a_requeued_task_gets_its_whole_attempt_budget_again(handle: Handle) -> None:
    [first, *_] = await fail_three(handle)
    attempts_seen.clear()
    await requeue_dead_letters(handle, "q", [first])
    await work(handle, tasks=[fragile], max_tasks=2)  # still failing: 2 more attempts
    assert attempts_seen == [(first, 1), (first, 2)]
    assert len(await dead(handle)) == 3


async def test_purge_deletes_every_dead_letter_and_counts_them(handle: Handle) -> None:
    await fail_three(handle)
    assert await purge_dead_letters(handle, "q") == 3
    assert await dead(handle) == []
    assert await purge_dead_letters(handle, "q") == 0


def test_first_attempt_resets_only_the_attempt_and_leaves_garbage_alone() -> None:
    from asynctasq.message import TaskMessage

    message = TaskMessage(
        "id", "m:f", (1, ("a",)), {"k": 2}, "q", 3, 3, "fixed", 0.0, None, 9.0, "c", 1.5
    )
    assert decode(first_attempt(encode(message))) == TaskMessage(
        "id", "m:f", (1, ("a",)), {"k": 2}, "q", 1, 3, "fixed", 0.0, None, 9.0, "c", 1.5
    )
    assert first_attempt(b"not a message") == b"not a message"


async def test_a_driver_without_a_dead_letter_store_is_a_clear_error(
    handle: Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoStore:
        name = "plain"

    async def plain(name: str | None = None) -> Any:
        return NoStore()

    monkeypatch.setattr(handle, "driver", plain)
    with pytest.raises(ConfigError, match="the plain driver cannot list, requeue or purge"):
        await list_dead_letters(handle, "q")


async def test_a_store_that_cannot_rewrite_bodies_refuses_to_requeue(
    handle: Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = await memory(handle)

    async def old_requeue(queue: str, task_ids: Sequence[str] | None = None) -> int:
        raise AssertionError("must not be called")

    monkeypatch.setattr(driver, "requeue_dead", old_requeue)
    with pytest.raises(ConfigError, match="cannot reset the attempt count"):
        await requeue_dead_letters(handle, "q")


async def test_a_lone_string_where_a_list_is_expected_is_refused_naming_the_parameter(
    handle: Handle,
) -> None:
    from asynctasq.monitoring import MonitoringService, snapshot

    await fragile(1).dispatch()
    await work(handle, tasks=[fragile], max_tasks=2)
    [entry] = await list_dead_letters(handle, "q")
    with pytest.raises(TypeError, match=r"task_ids must be a list of names, not a str: pass \['"):
        await requeue_dead_letters(handle, "q", entry.task_id)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"queues must be a list of names, not a str"):
        await snapshot(handle, queues="q")
    with pytest.raises(TypeError, match=r"queues\[0\] must be a str, got int"):
        await MonitoringService(handle).snapshot([1])  # type: ignore[list-item]
    assert len(await dead(handle)) == 1  # nothing requeued by the refused call
    assert await requeue_dead_letters(handle, "q", (entry.task_id,)) == 1
