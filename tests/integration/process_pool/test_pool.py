"""The process pool on its own: real pool processes, no broker (FIELD-CASES C39)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from asynctasq.errors import PoolProcessDiedError, ProcessPoolUnavailableError, SerializationError
from asynctasq.handle import Handle
from asynctasq.tasks.infrastructure.frames import Done, Failed
from asynctasq.tasks.infrastructure.process_pool_manager import ProcessPoolManager
from asynctasq.worker.pool import child_spec
from tests.integration.process_pool import pool_tasks
from tests.integration.process_pool.conftest import REPO_ROOT, RunTask, alive, eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]  # slow process starts when loaded

MakeManager = Callable[..., Awaitable[ProcessPoolManager]]


def value_of(reply: Done | Failed) -> object:
    assert isinstance(reply, Done), reply
    return reply.value


async def test_sync_and_async_process_tasks_return_their_values(
    make_manager: MakeManager, run_task: RunTask
) -> None:
    manager = await make_manager(2)
    assert value_of(await run_task(manager, pool_tasks.echo({"a": [1, 2]}))) == {"a": [1, 2]}
    pid, _ = value_of(await run_task(manager, pool_tasks.which_loop()))  # type: ignore[misc]
    assert pid in manager.pids
    assert pid != os.getpid()


async def test_a_pool_process_knows_its_execution_but_not_the_parents_context_vars(
    make_manager: MakeManager, run_task: RunTask
) -> None:
    manager = await make_manager(1)
    token = pool_tasks.REQUEST_ID.set("set in the parent")
    try:
        seen = value_of(await run_task(manager, pool_tasks.where_am_i(), attempt=3))
    finally:
        pool_tasks.REQUEST_ID.reset(token)
    assert seen == {
        "pid": manager.pids[0],
        "attempt": 3,
        "worker_id": "test-worker",
        "request_id": "unset",  # ContextVar values are not carried over (C39.5)
    }


async def test_an_initialized_pool_keeps_one_warm_loop_per_process_and_warns_not(
    make_manager: MakeManager, run_task: RunTask, capfd: pytest.CaptureFixture[str]
) -> None:
    manager = await make_manager(1)
    assert manager.initialized
    first = value_of(await run_task(manager, pool_tasks.which_loop()))
    second = value_of(await run_task(manager, pool_tasks.which_loop()))
    assert first == second  # same process, same loop
    assert "on-demand event loop" not in capfd.readouterr().err


async def test_without_initialize_processes_start_on_demand_and_warn_once_each(
    make_manager: MakeManager, run_task: RunTask, capfd: pytest.CaptureFixture[str]
) -> None:
    manager = await make_manager(1, initialize=False)
    assert not manager.initialized
    assert manager.pids == ()
    replies = [await run_task(manager, pool_tasks.which_loop()) for _ in range(3)]
    assert len({value_of(reply)[0] for reply in replies}) == 1  # type: ignore[index]
    await manager.shutdown()
    err = capfd.readouterr().err
    assert err.count("falling back to an on-demand event loop") == 1
    assert "pool_tasks:which_loop" in err
    assert "await manager.initialize()" in err


async def test_a_process_is_replaced_after_max_tasks_per_child(
    make_manager: MakeManager, run_task: RunTask
) -> None:
    manager = await make_manager(1, 2)
    pids = [value_of(await run_task(manager, pool_tasks.where_am_i()))["pid"] for _ in range(6)]  # type: ignore[index]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]
    assert len(set(pids)) == 3
    await eventually(lambda: not any(alive(pid) for pid in set(pids[:4])))


async def test_tasks_waiting_for_a_recycled_process_are_not_stranded(
    make_manager: MakeManager, run_task: RunTask
) -> None:
    manager = await make_manager(2, 1)
    replies = await asyncio.gather(*(run_task(manager, pool_tasks.where_am_i()) for _ in range(5)))
    assert len({value_of(reply)["pid"] for reply in replies}) == 5  # type: ignore[index]


@pytest.mark.parametrize(
    ("mode", "how"),
    [
        ("exit", "exited with code 1"),
        ("sigkill", "was killed by SIGKILL (from outside: e.g. the kernel's out-of-memory killer)"),
        ("segfault", "was killed by SIGSEGV (a crash in native code)"),
    ],
)
async def test_a_dead_pool_process_fails_only_its_task_and_is_replaced(
    make_manager: MakeManager, run_task: RunTask, mode: str, how: str
) -> None:
    manager = await make_manager(2)
    before = manager.pids
    with pytest.raises(PoolProcessDiedError) as caught:
        await run_task(manager, pool_tasks.crash("", mode))
    assert "task 'tests.integration.process_pool.pool_tasks:crash'" in str(caught.value)
    assert how in str(caught.value)
    await eventually(lambda: len(manager.pids) == 2)
    survivors = set(before) & set(manager.pids)
    assert len(survivors) == 1  # only the crashed process was replaced
    assert value_of(await run_task(manager, pool_tasks.echo(7))) == 7


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("unpicklable_exception", "raised LockedError: holding a lock in its pool process"),
        ("unrebuildable_exception", "raised NeedsTwoError: this and that in its pool process"),
        ("unpicklable_result", "the result of task"),
    ],
)
async def test_what_cannot_cross_back_becomes_a_readable_error_and_the_process_lives_on(
    make_manager: MakeManager, run_task: RunTask, mode: str, words: str
) -> None:
    manager = await make_manager(1)
    before = manager.pids
    reply = await run_task(manager, pool_tasks.crash("", mode))
    assert isinstance(reply, Failed)
    assert isinstance(reply.error, SerializationError)
    assert words in str(reply.error)
    assert "pool_tasks:crash" in str(reply.error)
    assert manager.pids == before
    assert manager.processes_started == 1


async def test_a_plain_exception_crosses_with_its_type_and_a_note_from_the_pool(
    make_manager: MakeManager, run_task: RunTask
) -> None:
    manager = await make_manager(1)
    reply = await run_task(manager, pool_tasks.crash("", "no such mode"))
    assert isinstance(reply, Failed)
    assert isinstance(reply.error, ValueError)
    assert str(reply.error) == "unknown crash mode 'no such mode'"
    assert "raised in pool process" in reply.error.__notes__[0]


async def test_arguments_that_cannot_be_pickled_fail_before_anything_is_sent(
    make_manager: MakeManager, run_task: RunTask
) -> None:
    manager = await make_manager(1)
    with pytest.raises(SerializationError) as caught:
        await run_task(manager, pool_tasks.echo(threading.Lock()))
    assert "the arguments of task 'tests.integration.process_pool.pool_tasks:echo'" in str(
        caught.value
    )
    assert "cannot be sent to a pool process" in str(caught.value)
    assert manager.processes_started == 1


async def test_a_task_past_its_timeout_has_its_process_killed(
    make_manager: MakeManager, run_task: RunTask
) -> None:
    manager = await make_manager(1)
    [pid] = manager.pids
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await run_task(manager, pool_tasks.sleeper("", 60), limit_seconds=0.5)
    assert time.monotonic() - started < 30  # not the task's 60 s
    await eventually(lambda: not alive(pid))
    await eventually(lambda: len(manager.pids) == 1)  # replaced


async def test_a_cancelled_run_kills_its_process(
    make_manager: MakeManager, run_task: RunTask
) -> None:
    manager = await make_manager(1)
    [pid] = manager.pids
    running = asyncio.ensure_future(run_task(manager, pool_tasks.sleeper("", 60)))
    await asyncio.sleep(0.3)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await eventually(lambda: not alive(pid))


async def test_shutdown_stops_every_process(make_manager: MakeManager) -> None:
    manager = await make_manager(2)
    pids = manager.pids
    assert len(pids) == 2
    await manager.shutdown()
    assert manager.pids == ()
    assert not any(alive(pid) for pid in pids)
    await manager.shutdown()  # twice is fine


async def test_a_manager_nobody_refers_to_stops_its_processes() -> None:
    manager = ProcessPoolManager(2)
    await manager.initialize()
    pids = manager.pids
    del manager
    gc.collect()
    await eventually(lambda: not any(alive(pid) for pid in pids))


async def test_a_task_module_that_does_not_import_in_the_pool_is_a_clear_error(
    memory_handle: Handle,
) -> None:
    async with ProcessPoolManager(1) as manager:
        with pytest.raises(ProcessPoolUnavailableError) as caught:
            await manager.bind(child_spec(memory_handle, ("no_such_module_h16",)))
    assert "cannot load the task modules ['no_such_module_h16']" in str(caught.value)
    assert "ModuleNotFoundError" in str(caught.value)


SEED_EXAMPLE = '''\
from asynctasq import ProcessPoolManager

# Initialize the process pool with warm event loops
async def init_worker():
    """Call this during worker startup (before processing tasks)."""
    manager = ProcessPoolManager(
        async_max_workers=4,  # Number of worker processes for async pool
        async_max_tasks_per_child=100  # Recycle after 100 tasks
    )
    await manager.initialize()
    # Event loops are now pre-initialized in all worker processes

# In your worker startup code
import asyncio
asyncio.run(init_worker())
'''


def test_the_seeds_warm_event_loop_example_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "init_worker.py"  # no `if __name__ == "__main__"` guard, as in the seed
    script.write_text(SEED_EXAMPLE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_pool_processes_exit_when_their_worker_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(
        "import asyncio, sys, time\n"
        "from asynctasq import ProcessPoolManager\n"
        "async def main():\n"
        "    manager = ProcessPoolManager(2)\n"
        "    await manager.initialize()\n"
        "    print(*manager.pids, flush=True)\n"
        "    time.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    owner = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        pids = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(pids) == 2
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in pids)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        if owner.stdout is not None:
            owner.stdout.close()


UNGUARDED = "tests.integration.process_pool.unguarded_tasks"


def test_a_script_without_a_main_guard_stops_its_worker_instead_of_forking_without_end() -> None:
    """Its pool process imports the script, which runs the worker again: refused, not looped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    script = subprocess.Popen(
        [sys.executable, "-m", UNGUARDED],
        cwd=REPO_ROOT,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # every process it starts can be ended with it
    )
    try:
        _, stderr = script.communicate(timeout=90)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script.pid, signal.SIGKILL)
        script.wait(10)
    assert script.returncode == 1, stderr
    assert "PoolProcessRefusedError: pool process" in stderr
    assert "run_worker() was called in a pool process" in stderr
    assert 'Put that call under `if __name__ == "__main__":`' in stderr


async def test_a_pool_started_on_demand_stops_starting_processes_its_modules_refuse(
    memory_handle: Handle, run_task: RunTask, caplog: pytest.LogCaptureFixture
) -> None:
    manager = ProcessPoolManager(1)  # not initialised: processes start when tasks need one
    try:
        await manager.bind(child_spec(memory_handle, (UNGUARDED,)))
        errors = []
        for _ in range(3):
            with pytest.raises(ProcessPoolUnavailableError) as caught:
                await run_task(manager, pool_tasks.echo(1))
            errors.append(str(caught.value))
    finally:
        await manager.shutdown()
    assert "run_worker() was called in a pool process" in errors[0]
    assert errors == [errors[0]] * 3  # one pool process (its pid is in the text) refused
    assert caplog.text.count("the process pool stops starting processes") == 1
