"""Worker subprocesses for ``redis_bench.py``: start, watch, and read what their tasks saw.

A worker is the real CLI, ``python -m asynctasq worker --import bench_tasks ...``, run with
``benchmarks/`` as its working directory, ``--log-level warning`` and no ``ASYNCTASQ_*``
variables (the flags say everything). Its tasks' observations come back through the JSON
file ``bench_tasks`` writes at exit (``BENCH_STATS_FILE``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

import asynctasq

HERE = Path(__file__).resolve().parent
TIMEOUT_SECONDS = 60.0


class BenchError(RuntimeError):
    """A phase did not complete as expected (wrong count, worker failure, timeout)."""


@attrs.define
class WorkerRun:
    """A finished worker subprocess.

    Attributes:
        spawned_at: ``time.time()`` just before the process was started.
        exited_at: ``time.time()`` when its exit was seen (polled every 50 ms).
        stats: what ``bench_tasks`` wrote at exit (``noop``, ``stamps``, ``VmHWM`` KiB...).
        hwm_polled_kib: the highest ``VmHWM`` read from outside while it ran.
        warnings: its WARNING/ERROR log lines, timestamps cut, as ``"<count>x <line>"``.
    """

    spawned_at: float
    exited_at: float
    stats: dict[str, Any]
    hwm_polled_kib: int
    warnings: list[str] = attrs.field(factory=list)


def log_warnings(text: str) -> list[str]:
    """Return the distinct WARNING/ERROR lines of a worker log with their counts."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        for level in (" WARNING ", " ERROR "):
            if level in line:
                message = level.strip() + " " + line.split(level, 1)[1]
                counts[message] = counts.get(message, 0) + 1
    return [f"{count}x {message}" for message, count in counts.items()]


def worker_env(python: str = sys.executable) -> dict[str, str]:
    """Return this environment without ASYNCTASQ_* variables.

    For another interpreter than this one (``python``), the directory asynctasq was
    imported from goes first on its ``PYTHONPATH``, so it runs the same code.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    if python != sys.executable:
        root = str(Path(asynctasq.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def read_hwm(pid: int) -> int:
    """Return VmHWM (KiB) of ``pid``, or 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _argv(
    url: str, tmp: Path, queue: str, concurrency: int, max_tasks: int, python: str
) -> list[str]:
    return [
        python, "-m", "asynctasq", "worker", "--import", "bench_tasks",
        "--queues", queue, "--concurrency", str(concurrency), "--max-tasks", str(max_tasks),
        "--log-level", "warning", "--redis-url", url, "--env-file", str(tmp / "no.env"),
    ]  # fmt: skip


async def run_worker(
    url: str,
    tmp: Path,
    queue: str,
    concurrency: int,
    max_tasks: int,
    feed: Callable[[], Awaitable[None]] | None = None,
    python: str = sys.executable,
) -> WorkerRun:
    """Run one worker until it handled ``max_tasks`` (``feed()`` runs alongside); return it.

    ``python`` is the worker's interpreter (e.g. a minimal virtualenv's, to measure memory
    without the development tools this one may have).

    Raises:
        BenchError: non-zero exit, no exit file, or no exit within ``TIMEOUT_SECONDS``.
    """
    stats_file = tmp / f"{queue}.json"
    log_file = tmp / f"{queue}.log"
    env = {**worker_env(python), "BENCH_STATS_FILE": str(stats_file)}
    with log_file.open("wb") as log:
        spawned = time.time()
        proc = subprocess.Popen(  # noqa: ASYNC220  (Popen returns at once; we poll)
            _argv(url, tmp, queue, concurrency, max_tasks, python),
            cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        polled = 0
        try:
            feeder = asyncio.ensure_future(feed()) if feed is not None else None
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise BenchError(f"worker on {queue} did not finish in {TIMEOUT_SECONDS} s")
                if feeder is not None and feeder.done():
                    feeder.result()  # a failed feed stops the run
                polled = max(polled, read_hwm(proc.pid))
                await asyncio.sleep(0.05)
            exited = time.time()
            if feeder is not None:
                await feeder
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode != 0 or not stats_file.exists():
        tail = log_file.read_text(errors="replace")[-2000:]
        raise BenchError(f"worker on {queue} exited {proc.returncode}:\n{tail}")
    stats = json.loads(stats_file.read_text())
    return WorkerRun(spawned, exited, stats, polled, log_warnings(log_file.read_text()))


def import_floor_mib(python: str = sys.executable) -> float:
    """Return VmHWM (MiB) of a ``python`` process that only imports what a worker imports."""
    code = (
        "import asynctasq, asynctasq.cli.main, redis.asyncio, bench_tasks\n"
        "try:\n    import uvloop\nexcept ImportError:\n    pass\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    out = subprocess.run(
        [python, "-c", code], cwd=HERE, env=worker_env(python), capture_output=True, check=True
    )
    return int(out.stdout) / 1024
