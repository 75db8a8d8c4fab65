"""Tasks for the process-pool tests: every mode, every way a pool process can fail.

Worker subprocesses import this module (``--import``), and so do their pool processes.
Rows go to the ledger of :mod:`tests.integration.worker.tasks_mod` (Redis db 14), with the
pid of the process that wrote them, so a test can tell pool processes from the worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import os
import signal
import threading
import time
from typing import Any

from asynctasq.tasks import (
    AsyncProcessTask,
    SyncProcessTask,
    TaskConfig,
    current_task,
    task,
)
from asynctasq.tasks.infrastructure.guard import in_pool_process
from tests.integration.worker.tasks_mod import note_sync, record

if in_pool_process():  # a test makes pool processes slow to start (a stop during start-up)
    time.sleep(float(os.environ.get("POOL_TASKS_IMPORT_SECONDS", "0")))

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")
"""Set in the parent by a test; a pool process must see the default (FIELD-CASES C39.5)."""


def burn(iterations: int) -> int:
    """CPU-bound work: a sum of squares."""
    return sum(i * i for i in range(iterations))


@task
async def plain_async(key: str) -> None:
    note_sync(key, "run", mode="async")


@task
def plain_sync(key: str) -> None:
    note_sync(key, "run", mode="sync")


@task(process=True)
def cpu(key: str, iterations: int) -> int:
    """A ``sync_process`` function task."""
    note_sync(key, "run", mode="sync_process")
    return burn(iterations)


@task(process=True)
async def cpu_async(key: str, iterations: int) -> int:
    """An ``async_process`` function task: it awaits, and burns CPU."""
    await asyncio.sleep(0)
    loop_id = id(asyncio.get_running_loop())
    note_sync(key, "run", mode="async_process", loop=loop_id)
    return burn(iterations)


class Crunch(SyncProcessTask):
    """A ``SyncProcessTask`` class."""

    def __init__(self, key: str) -> None:
        super().__init__(key=key)

    def execute(self) -> None:
        note_sync(self.key, "run", mode="SyncProcessTask")


class CrunchAsync(AsyncProcessTask):
    """An ``AsyncProcessTask`` class."""

    config: TaskConfig = {"max_attempts": 1}

    def __init__(self, key: str) -> None:
        super().__init__(key=key)

    async def execute(self) -> None:
        await asyncio.sleep(0)
        note_sync(self.key, "run", mode="AsyncProcessTask")


@task(process=True)
async def fan_out(key: str, queue: str) -> None:
    """Dispatch a plain task from inside a pool process (through the pool's handle)."""
    task_id = await record(key, "from the pool").on_queue(queue).dispatch()
    note_sync(key, "dispatched", child=task_id)


class LockedError(Exception):
    """An exception that cannot be pickled: it holds a lock."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.lock = threading.Lock()


class NeedsTwoError(Exception):
    """An exception that pickles but cannot be rebuilt (its ``__init__`` takes two values)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} and {second}")


def _crash(mode: str) -> Any:
    if mode == "exit":
        os._exit(1)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "segfault":
        ctypes.string_at(0)
    if mode == "unpicklable_exception":
        raise LockedError("holding a lock")
    if mode == "unrebuildable_exception":
        raise NeedsTwoError("this", "that")
    if mode == "unpicklable_result":
        return threading.Lock()
    raise ValueError(f"unknown crash mode {mode!r}")


CRASH_MODES = (
    "exit",
    "sigkill",
    "segfault",
    "unpicklable_exception",
    "unrebuildable_exception",
    "unpicklable_result",
)


@task(process=True)
def crash(key: str, mode: str) -> Any:
    """Write ``start`` (with a ledger ``key``), then fail in the way ``mode`` names."""
    if key:
        note_sync(key, "start", mode=mode)
    return _crash(mode)


@task(process=True)
def sleeper(key: str, seconds: float) -> None:
    """Write ``start``, sleep in the pool process, write ``end`` (no rows without a key)."""
    if key:
        note_sync(key, "start")
    time.sleep(seconds)
    if key:
        note_sync(key, "end")


@task(process=True)
def spin(key: str, seconds: float) -> None:
    """A CPU loop of ``seconds`` (FIELD-CASES C06 variant C)."""
    note_sync(key, "start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        burn(10_000)
    note_sync(key, "end")


@task(process=True)
def where_am_i() -> dict[str, Any]:
    """Return what the pool process sees: pid, execution info, a ContextVar."""
    info = current_task()
    return {
        "pid": os.getpid(),
        "attempt": info.attempt if info else None,
        "worker_id": info.worker_id if info else None,
        "request_id": REQUEST_ID.get(),
    }


@task(process=True)
async def which_loop() -> tuple[int, int]:
    """Return ``(pid, id of the running loop)``."""
    return os.getpid(), id(asyncio.get_running_loop())


@task(process=True)
def echo(value: Any) -> Any:
    """Return ``value`` (it crosses the boundary twice)."""
    return value
