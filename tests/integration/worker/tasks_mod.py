"""Tasks the worker subprocesses of these tests import (``--import`` this module).

Every task writes rows to a ledger kept outside the queue under test: a Redis list in db 14
of the local Redis (``LEDGER_URL``), one JSON row per event, so a test can prove "ran
once", "never lost" or "never early" whatever happened to the worker or its broker.
"""

from __future__ import annotations

import asyncio
import atexit
import faulthandler
import json
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

import redis

from asynctasq.tasks import current_task, task

LEDGER_URL = os.environ.get("LEDGER_URL", "redis://127.0.0.1:6379/14")

_ledger = redis.Redis.from_url(LEDGER_URL)
atexit.register(_ledger.close)


def _dump_stacks(signum: int, frame: FrameType | None) -> None:
    """On SIGUSR1, write every thread's stack and every asyncio task's stack to stderr.

    ``Worker.wait`` sends it to a worker that outlives its deadline, so the failure shows
    where the worker is stuck.
    """
    del signum, frame
    print("=== SIGUSR1: thread stacks", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(all_threads=True)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    print("=== SIGUSR1: asyncio tasks", file=sys.stderr, flush=True)
    for running in asyncio.all_tasks(loop):
        print(f"task {running.get_name()}:", file=sys.stderr)
        awaited: Any = running.get_coro()
        while awaited is not None:  # the await chain, outermost first
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is None:
                print(f"    awaiting {awaited!r:.200}", file=sys.stderr)
                break
            print(
                f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}",
                file=sys.stderr,
            )
            awaited = getattr(awaited, "cr_await", None)
    sys.stderr.flush()


signal.signal(signal.SIGUSR1, _dump_stacks)


def _row(event: str, **fields: Any) -> str:
    info = current_task()
    return json.dumps(
        {
            "event": event,
            "task_id": info.task_id if info else None,
            "attempt": info.attempt if info else None,
            "pid": os.getpid(),
            "t": time.time(),
            **fields,
        }
    )


async def note(key: str, event: str, **fields: Any) -> None:
    """Append a row to the ledger list ``key`` (a quick blocking call; fine for tests)."""
    note_sync(key, event, **fields)


def note_sync(key: str, event: str, **fields: Any) -> None:
    """Append a row to the ledger list ``key``; safe from worker threads."""
    _ledger.rpush(key, _row(event, **fields))


async def first_start(key: str) -> bool:
    """Return True the first time any worker starts this task id (a counter in the ledger)."""
    info = current_task()
    assert info is not None
    return int(_ledger.incr(f"{key}:starts:{info.task_id}")) == 1  # type: ignore[arg-type]


@task
async def record(key: str, label: str) -> None:
    """Write one ``run`` row."""
    await note(key, "run", label=label)


@task
async def slow(key: str, seconds: float, label: str = "", first_only: bool = False) -> None:
    """Write ``start``, sleep ``seconds`` (only on the first start if ``first_only``), ``end``."""
    await note(key, "start", label=label)
    if not first_only or await first_start(key):
        await asyncio.sleep(seconds)
    await note(key, "end", label=label)


@task
def slow_sync(key: str, seconds: float) -> None:
    """The sync twin of :func:`slow`: blocks its thread."""
    note_sync(key, "start")
    time.sleep(seconds)
    note_sync(key, "end")


@task
async def crash_first_attempt(key: str, seconds: float) -> None:
    """Sleep ``seconds`` on attempt 1 (the test kills the worker then); return at once later."""
    info = current_task()
    assert info is not None
    await note(key, "start")
    if info.attempt == 1:
        await asyncio.sleep(seconds)
    await note(key, "end")


@task
async def failing(key: str) -> None:
    """Write ``start`` and raise."""
    await note(key, "start")
    raise ValueError("always fails")


@task
async def hog(key: str, seconds: float) -> None:
    """An async task that blocks the worker's event loop (the mistake of FIELD-CASES C16)."""
    await note(key, "start")
    time.sleep(seconds)  # noqa: ASYNC251 -- blocking on purpose
    await note(key, "end")
