"""Statistics, live workers, kept completed tasks and the dlq commands on a real Redis."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from asynctasq import configured, init, run_worker, task
from asynctasq.cli.main import main
from asynctasq.drivers.protocol import QueueSizes
from asynctasq.events.records import EventType, WorkerEvent
from asynctasq.monitoring import QueueStats, completed_tasks, snapshot
from asynctasq.worker import Shutdown

SUFFIXES = ("", ":processing", ":delayed", ":dead", ":completed")

healthy: list[bool] = []
seen: list[tuple[str, int]] = []


@task(max_attempts=1)
async def mail(n: int) -> None:
    from asynctasq import current_task

    info = current_task()
    assert info is not None
    seen.append((info.task_id, info.attempt))
    if not healthy:
        raise ConnectionError("the mail server is down")


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"t-monitor-{uuid.uuid4().hex[:12]}"
    healthy.clear()
    seen.clear()
    yield name
    with Redis.from_url(redis_url) as client:
        client.delete(*(f"queue:{name}{suffix}" for suffix in SUFFIXES))


def settings(redis_url: str, **more: Any) -> dict[str, Any]:
    return {"driver": "redis", "redis": {"url": redis_url}, **more}


@pytest.mark.anyio
async def test_statistics_match_redis_after_a_scripted_run(redis_url: str, queue: str) -> None:
    config = settings(redis_url, repository={"keep_completed_tasks": True})
    async with configured(config) as handle:
        healthy.append(True)
        for n in range(3):
            await mail(n).on_queue(queue).dispatch()
        await run_worker(handle, tasks=[mail], queues=[queue], max_tasks=3, handle_signals=False)
        healthy.clear()
        await mail(3).on_queue(queue).dispatch()
        await run_worker(handle, tasks=[mail], queues=[queue], max_tasks=1, handle_signals=False)
        await mail(4).on_queue(queue).dispatch()  # ready
        await mail(5).on_queue(queue).delay(3600).dispatch()  # delayed
        await mail(6).on_queue(queue).dispatch()
        driver = await handle.driver()
        [_] = await driver.dequeue([queue], limit=1, wait_seconds=0)  # now in flight

        found = await snapshot(handle, queues=[queue])
        assert found.queues == (
            QueueStats(queue, ready=1, delayed=1, in_flight=1, dead=1, completed=3),
        )
        assert await driver.sizes(queue) == QueueSizes(1, 1, 1, 1)
        kept = await completed_tasks(handle, queue)
        assert [t.task_name for t in kept] == [mail.name] * 3
        assert found.notes == ()
        everything = await snapshot(handle)
        assert queue in [q.queue for q in everything.queues]


@pytest.mark.anyio
async def test_a_running_worker_is_listed_with_its_heartbeat_and_gone_after(
    redis_url: str, queue: str
) -> None:
    online = asyncio.Event()

    class Watch:
        async def emit(self, event: Any) -> None:
            if isinstance(event, WorkerEvent) and event.event_type is EventType.WORKER_ONLINE:
                online.set()

    config = settings(redis_url, events={"heartbeat_interval": 0.1})
    async with init(config, event_emitters=[Watch()], env_file=None) as handle:
        shutdown = Shutdown()
        worker = asyncio.ensure_future(
            run_worker(
                handle, tasks=[mail], queues=[queue], shutdown=shutdown, handle_signals=False
            )
        )
        await asyncio.wait_for(online.wait(), 10)
        found = await snapshot(handle, queues=[queue])
        mine = [w for w in found.workers or () if queue in w.queues]
        shutdown.request()
        stats = await worker
        after = await snapshot(handle, queues=[queue])
    assert [w.worker_id for w in mine] == [stats.worker_id]
    assert mine[0].last_heartbeat <= found.taken_at + 1
    assert found.taken_at - mine[0].last_heartbeat < 60
    assert [w for w in after.workers or () if queue in w.queues] == []


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fail_two(redis_url: str, queue: str) -> list[str]:
    async def go() -> list[str]:
        async with configured(settings(redis_url)) as handle:
            ids = [await mail(n).on_queue(queue).dispatch() for n in range(2)]
            await run_worker(
                handle, tasks=[mail], queues=[queue], max_tasks=2, handle_signals=False
            )
            return ids

    return asyncio.run(go())


def run_queue(redis_url: str, queue: str, count: int) -> int:
    async def go() -> int:
        async with configured(settings(redis_url)) as handle:
            stats = await run_worker(
                handle, tasks=[mail], queues=[queue], max_tasks=count, handle_signals=False
            )
            return stats.succeeded

    return asyncio.run(go())


def test_dlq_requeue_brings_a_task_back_at_attempt_1_and_it_runs(
    redis_url: str, queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = fail_two(redis_url, queue)
    code, out, _ = cli(capsys, "dlq", "list", "--queue", queue, "--redis-url", redis_url)
    assert code == 0
    assert first in out
    assert "ConnectionError: the mail server is down" in out
    code, out, _ = cli(capsys, "dlq", "show", "--queue", queue, "--redis-url", redis_url, first)
    assert code == 0
    assert "args            (0,)" in out
    seen.clear()
    healthy.append(True)
    code, out, err = cli(
        capsys, "dlq", "requeue", "--queue", queue, "--redis-url", redis_url, first
    )
    assert (code, err) == (0, "")
    assert out.startswith(f"Requeued 1 dead letter(s) on queue {queue!r}")
    assert run_queue(redis_url, queue, 1) == 1
    assert seen == [(first, 1)]
    code, out, _ = cli(capsys, "dlq", "list", "--queue", queue, "--redis-url", redis_url, "--json")
    assert second in out
    assert first not in out


def test_dlq_purge_refuses_without_yes_and_a_terminal_then_purges_with_yes(
    redis_url: str, queue: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_two(redis_url, queue)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = cli(capsys, "dlq", "purge", "--queue", queue, "--redis-url", redis_url)
    assert code == 2
    assert "refusing to purge" in err
    with Redis.from_url(redis_url) as client:
        assert client.llen(f"queue:{queue}:dead") == 2
    code, out, _ = cli(capsys, "dlq", "purge", "--queue", queue, "--redis-url", redis_url, "--yes")
    assert (code, out) == (0, f"Purged 2 dead letter(s) from queue {queue!r}.\n")
    with Redis.from_url(redis_url) as client:
        assert client.llen(f"queue:{queue}:dead") == 0


def test_dlq_purge_asks_on_a_terminal_and_keeps_them_on_no(
    redis_url: str, queue: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_two(redis_url, queue)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    code, out, _ = cli(capsys, "dlq", "purge", "--queue", queue, "--redis-url", redis_url)
    assert code == 0
    assert out.endswith("Nothing deleted.\n")
    assert f"Delete 2 dead letter(s) of queue {queue!r} for good? [y/N]" in out


def test_stats_command_shows_the_queue_counts(
    redis_url: str, queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_two(redis_url, queue)
    code, out, err = cli(capsys, "stats", "--queues", queue, "--redis-url", redis_url)
    assert (code, err) == (0, "")
    [row] = [line for line in out.splitlines() if line.strip().startswith(queue)]
    assert row.split() == [queue, "0", "0", "0", "2", "0"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("interrupt", "code", "said"),
    [
        (EOFError, 1, "asynctasq dlq: no answer (end of input): nothing deleted"),
        (KeyboardInterrupt, 130, "asynctasq dlq: interrupted: nothing deleted"),
    ],
)
def test_dlq_purge_end_of_input_or_ctrl_c_at_the_question_deletes_nothing(
    redis_url: str,
    queue: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    interrupt: type[BaseException],
    code: int,
    said: str,
) -> None:
    fail_two(redis_url, queue)
    loops: list[bool] = []

    def answer(prompt: str) -> str:
        try:
            asyncio.get_running_loop()
            loops.append(True)  # asked inside a running loop: Ctrl-C would be swallowed
        except RuntimeError:
            loops.append(False)
        raise interrupt

    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", answer)
    result = cli(capsys, "dlq", "purge", "--queue", queue, "--redis-url", redis_url)
    assert (result[0], result[2]) == (code, f"\n{said}\n")
    assert loops == [False]
    with Redis.from_url(redis_url) as client:
        assert client.llen(f"queue:{queue}:dead") == 2


def test_dlq_purge_asks_with_no_loop_running_and_purges_on_yes(
    redis_url: str, queue: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_two(redis_url, queue)
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    code, out, _ = cli(capsys, "dlq", "purge", "--queue", queue, "--redis-url", redis_url)
    assert code == 0
    assert out.endswith(f"for good? [y/N] Purged 2 dead letter(s) from queue {queue!r}.\n")


def test_dlq_list_says_when_limit_cut_it(
    redis_url: str, queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = fail_two(redis_url, queue)
    base = ("dlq", "list", "--queue", queue, "--redis-url", redis_url, "--limit", "1")
    code, out, _ = cli(capsys, *base)
    assert code == 0
    assert out.startswith(
        f"2 dead letter(s) on queue {queue!r}, showing the oldest 1 of 2; "
        "pass --limit 2 to see all:\n"
    )
    code, out, err = cli(capsys, *base, "--json")
    assert code == 0
    assert [e["task_id"] for e in json.loads(out)] == [first]
    assert err == (
        f"asynctasq dlq: 2 dead letter(s) on queue {queue!r}, showing the oldest 1 of 2; "
        "pass --limit 2 to see all\n"
    )
    code, out, _ = cli(capsys, *base[:-1], "2")
    assert out.startswith(f"2 dead letter(s) on queue {queue!r}:\n")


def test_dlq_requeue_of_an_unknown_task_id_names_it_and_exits_1(
    redis_url: str, queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = fail_two(redis_url, queue)
    base = ("dlq", "requeue", "--queue", queue, "--redis-url", redis_url)
    code, out, err = cli(capsys, *base, "nope")
    assert (code, out) == (1, "")
    assert err == (
        f"asynctasq dlq: error: no dead letter with task id 'nope' on queue {queue!r}; "
        "nothing requeued\n"
    )
    code, out, err = cli(capsys, *base, first, "nope")
    assert code == 1
    assert out == f"Requeued 1 dead letter(s) on queue {queue!r} (attempt count reset).\n"
    assert err.endswith(
        f"no dead letter with task id 'nope' on queue {queue!r}; requeued the other 1\n"
    )
    with Redis.from_url(redis_url) as client:
        assert client.llen(f"queue:{queue}:dead") == 1  # only the second is left
        assert client.llen(f"queue:{queue}") == 1
