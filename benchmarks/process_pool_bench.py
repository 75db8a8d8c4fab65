"""Process-pool figures from one run: CPU-bound speed-up, and per-task overhead.

Run ``.venv/bin/python benchmarks/process_pool_bench.py`` (no broker needed). It prints:

1. CPU-bound throughput. ``TASKS`` executions of ``burn(ITERATIONS)`` (a pure-Python sum
   of squares, tens of milliseconds each):

   * inline: called one after another in this process — the reference;
   * threads: the same work as ``sync`` tasks of a worker (memory driver, concurrency 2):
     they run in threads and share one GIL;
   * pool 1 / pool 2: the same work as ``sync_process`` tasks of a worker (memory driver,
     concurrency 2) with ``process_pool.size`` 1 and 2;

   each as tasks per second and as a speed-up ratio over inline, the best of ``REPEATS``
   runs (the machine may be busy with other work). Starting the pool
   processes is not counted (they are started before the worker); the worker's own
   start-up and its memory-driver round trips are. "manager only" runs the same tasks
   straight through a manager, without a worker or broker.

2. Per-task overhead of ``async_process`` tasks whose body does nothing, run one at a time
   through a :class:`~asynctasq.ProcessPoolManager` of one process: with warm event loops
   (``await manager.initialize()``) and with event loops made on demand (no
   ``initialize()``); plus a ``sync_process`` no-op for the bare round trip. Mean and
   median milliseconds per task, over ``ROUND_TRIPS`` runs after one warm-up run.

The tasks are defined here, so pool processes import this file by its module name
(``process_pool_bench``); hence the ``__main__`` guard.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asynctasq import ProcessPoolManager, configured, run_worker, task
from asynctasq.tasks.dispatch import build_message
from asynctasq.tasks.infrastructure.frames import Done, Run
from asynctasq.tasks.infrastructure.process_pool_manager import set_default_manager
from asynctasq.worker.pool import child_spec

TASKS = 40
ITERATIONS = 600_000
ROUND_TRIPS = 200
REPEATS = 3
MODULE = "process_pool_bench"


def burn(iterations: int) -> int:
    """CPU-bound work: a sum of squares in pure Python."""
    return sum(i * i for i in range(iterations))


@task
def burn_in_thread(iterations: int) -> int:
    """The work as a ``sync`` task (a worker thread)."""
    return burn(iterations)


@task(process=True)
def burn_in_pool(iterations: int) -> int:
    """The work as a ``sync_process`` task."""
    return burn(iterations)


@task(process=True)
async def nothing_async() -> None:
    """An ``async_process`` task that does nothing."""


@task(process=True)
def nothing_sync() -> None:
    """A ``sync_process`` task that does nothing."""


def inline_seconds() -> float:
    started = time.perf_counter()
    for _ in range(TASKS):
        burn(ITERATIONS)
    return time.perf_counter() - started


async def worker_seconds(pending: Callable[[], Any], size: int | None) -> float:
    """Dispatch ``TASKS`` calls, run a worker (concurrency 2) until done; return its time.

    With ``size``, the worker uses a manager of that size set as the handle's default and
    started beforehand, so the time excludes starting pool processes.
    """
    async with configured(driver="memory", task_defaults={"queue": "bench"}) as handle:
        manager = None
        if size is not None:
            manager = ProcessPoolManager(size)
            await manager.initialize()
            await manager.bind(child_spec(handle, (MODULE,)))
            set_default_manager(manager)
        for _ in range(TASKS):
            await pending().dispatch()
        began = time.monotonic()
        try:
            stats = await run_worker(
                handle,
                tasks=[burn_in_thread, burn_in_pool],
                queues=["bench"],
                concurrency=2,
                max_tasks=TASKS,
                handle_signals=False,
            )
        finally:
            if manager is not None:
                await manager.shutdown()
        seconds = time.monotonic() - began
    if stats.succeeded != TASKS:
        raise RuntimeError(f"expected {TASKS} successes, got {stats}")
    return seconds


async def pool_seconds(size: int) -> float:
    """The same work through a manager directly (the pool's own throughput, no broker)."""
    async with configured(driver="memory") as handle, ProcessPoolManager(size) as manager:
        await manager.bind(child_spec(handle, (MODULE,)))
        messages = [build_message(burn_in_pool(ITERATIONS), handle.config) for _ in range(TASKS)]
        began = time.monotonic()
        replies = await asyncio.gather(*(manager.run(Run(m, 1, "bench"), None) for m in messages))
        ended = time.monotonic()
    if not all(isinstance(reply, Done) for reply in replies):
        raise RuntimeError(f"a task failed: {replies}")
    return ended - began


async def round_trips_ms(pending: Callable[[], Any], *, warm: bool) -> list[float]:
    """Run ``pending()`` ``ROUND_TRIPS`` times, one at a time; return milliseconds each."""
    async with configured(driver="memory") as handle:
        manager = ProcessPoolManager(1)
        try:
            if warm:
                await manager.initialize()
            await manager.bind(child_spec(handle, (MODULE,)))
            message = build_message(pending(), handle.config)
            await manager.run(Run(message, 1, "bench"), None)  # start-up and warm-up
            timings = []
            for _ in range(ROUND_TRIPS):
                began = time.perf_counter()
                reply = await manager.run(Run(message, 1, "bench"), None)
                timings.append((time.perf_counter() - began) * 1000.0)
                if not isinstance(reply, Done):
                    raise RuntimeError(f"a task failed: {reply}")
        finally:
            await manager.shutdown()
    return timings


async def best(measure: Callable[[], Awaitable[float]]) -> float:
    """Return the shortest of ``REPEATS`` measurements (the least disturbed by other load)."""
    return min([await measure() for _ in range(REPEATS)])


def row(label: str, seconds: float, reference: float) -> str:
    rate, ratio = TASKS / seconds, reference / seconds
    return f"  {label:<38} {seconds:7.2f} s  {rate:7.1f} tasks/s  speed-up x{ratio:.2f}"


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the on-demand warning is expected below
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"python {sys.version.split()[0]}, {cpus} CPUs")
    print(f"1. CPU-bound: {TASKS} x burn({ITERATIONS:,})")
    inline = min(inline_seconds() for _ in range(REPEATS))
    print(row("inline (one after another)", inline, inline))
    threads = await best(lambda: worker_seconds(lambda: burn_in_thread(ITERATIONS), None))
    print(row("worker, sync tasks in threads (c=2)", threads, inline))

    def pool_call() -> Any:
        return burn_in_pool(ITERATIONS)

    for size in (1, 2):
        seconds = await best(functools.partial(worker_seconds, pool_call, size))
        print(row(f"worker, sync_process, pool size {size}", seconds, inline))
    for size in (1, 2):
        seconds = await best(functools.partial(pool_seconds, size))
        print(row(f"manager only, pool size {size}", seconds, inline))
    print(f"2. Per-task overhead, {ROUND_TRIPS} no-op tasks one at a time (ms per task)")
    for label, pending, warm in (
        ("async_process, warm event loop", nothing_async, True),
        ("async_process, on-demand event loop", nothing_async, False),
        ("sync_process (bare round trip)", nothing_sync, True),
    ):
        timings = await round_trips_ms(pending, warm=warm)
        print(
            f"  {label:<38} mean {statistics.fmean(timings):6.3f}  "
            f"median {statistics.median(timings):6.3f}  p95 "
            f"{statistics.quantiles(timings, n=20)[-1]:6.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
