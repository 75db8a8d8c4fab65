"""Pool managers on the memory driver, and worker subprocesses importing ``pool_tasks``.

The ledger, worker records and environment come from the worker tests' conftest; the queue
and the test's handle are the local Redis's (these tests are about the pool, not brokers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from asynctasq.handle import Handle, configured
from asynctasq.tasks.dispatch import build_message
from asynctasq.tasks.infrastructure.frames import Done, Failed, Run
from asynctasq.tasks.infrastructure.process_pool_manager import ProcessPoolManager
from asynctasq.tasks.pending import PendingDispatch
from asynctasq.worker.pool import child_spec
from tests.integration.worker.conftest import (  # noqa: F401 -- `ledger` is a fixture
    REPO_ROOT,
    Ledger,
    Worker,
    ledger,
    queue_keys,
    worker_env,
)

TASKS_MODULE = "tests.integration.process_pool.pool_tasks"
MAINTENANCE_SECONDS = 0.5
POOL_COMMAND_MARK = "asynctasq.tasks.infrastructure.child"

RunTask = Callable[..., Awaitable[Done | Failed]]


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    """A queue name no other test uses; its keys are removed afterwards."""
    name = f"pp-{uuid.uuid4().hex[:12]}"
    yield name
    with redis.Redis.from_url(redis_url) as client:
        client.delete(*(f"queue:{name}{s}" for s in ("", ":processing", ":delayed", ":dead")))


@pytest.fixture
async def handle(redis_url: str) -> AsyncIterator[Handle]:
    """The test's own handle on the local Redis, for dispatching and inspection."""
    settings = {"url": redis_url, "delayed_task_interval": MAINTENANCE_SECONDS}
    async with configured(driver="redis", redis=settings) as opened:
        yield opened


async def eventually(check: Callable[[], bool], seconds: float = 60.0) -> None:
    """Poll ``check`` until it holds; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {seconds} s")
        await asyncio.sleep(0.02)


@pytest.fixture
async def memory_handle() -> AsyncIterator[Handle]:
    async with configured(driver="memory") as opened:
        yield opened


@pytest.fixture
async def make_manager(
    memory_handle: Handle,
) -> AsyncIterator[Callable[..., Awaitable[ProcessPoolManager]]]:
    """Build managers loaded with ``pool_tasks``; every one is shut down at the end."""
    made: list[ProcessPoolManager] = []

    async def make(*args: Any, initialize: bool = True) -> ProcessPoolManager:
        manager = ProcessPoolManager(*args)
        made.append(manager)
        if initialize:
            await manager.initialize()
        await manager.bind(child_spec(memory_handle, (TASKS_MODULE,)))
        return manager

    yield make
    for manager in made:
        await manager.shutdown()


@pytest.fixture
def run_task(memory_handle: Handle) -> RunTask:
    """``await run_task(manager, pending, limit_seconds=None, attempt=1)``: one execution."""

    async def run(
        manager: ProcessPoolManager,
        pending: PendingDispatch,
        limit_seconds: float | None = None,
        attempt: int = 1,
    ) -> Done | Failed:
        message = build_message(pending, memory_handle.config)
        return await manager.run(Run(message, attempt, "test-worker"), limit_seconds)

    return run


def pool_processes_of(parent_pid: int) -> list[int]:
    """Return the pids of the live pool processes whose parent is ``parent_pid`` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == parent_pid and POOL_COMMAND_MARK in command and state != "Z":
            found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    """Return whether ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def start_worker(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start ``python -m asynctasq worker --import pool_tasks ARGS``; kill leftovers at the end."""
    started: list[Worker] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "asynctasq", "worker", "--import", TASKS_MODULE, *args],
                cwd=REPO_ROOT,
                env=env or worker_env(redis_url),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        children = pool_processes_of(worker.pid)
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(10)
        for pid in children:  # they exit by themselves within a second; do not wait
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
