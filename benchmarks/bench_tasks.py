"""Tasks for ``redis_bench.py``, imported by the worker subprocess as ``bench_tasks``.

The tasks keep what they observe in memory (no I/O on the hot path) and an ``atexit``
hook writes it as JSON to the file named by ``BENCH_STATS_FILE`` when the worker exits:

* ``noop``: count, wall time (``time.time()``) of the first and last execution;
* ``stamp(sent)``: ``(sent, started)`` pairs — ``sent`` is the dispatcher's ``time.time()``
  just before ``dispatch()``, ``started`` the task body's (same machine, same clock);
* the process' ``VmHWM``/``VmRSS`` from ``/proc/self/status`` at exit (KiB).

The benchmark imports this module too (to dispatch); only the worker writes the file.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from typing import Any

from asynctasq import task

_noop: dict[str, Any] = {"count": 0, "first": None, "last": None}
_stamps: list[tuple[float, float]] = []


@task
async def noop() -> None:
    """Do nothing but note the time (first and last execution)."""
    now = time.time()
    if _noop["first"] is None:
        _noop["first"] = now
    _noop["last"] = now
    _noop["count"] += 1


@task
async def stamp(sent: float) -> None:
    """Note when this body started next to when the dispatcher sent it (epoch seconds)."""
    _stamps.append((sent, time.time()))


def _proc_status() -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmHWM", "VmRSS"):
                    found[name] = int(value.split()[0])  # kB
    except OSError:
        pass
    return found


def _write_stats() -> None:
    path = os.environ.get("BENCH_STATS_FILE")
    if not path:
        return
    stats = {
        "pid": os.getpid(),
        "exited_at": time.time(),
        "noop": _noop,
        "stamps": _stamps,
        **_proc_status(),
    }
    with open(path, "w", encoding="utf-8") as out:
        json.dump(stats, out)


atexit.register(_write_stats)
