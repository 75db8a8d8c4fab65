"""Tasks for ``sql_bench.py``, imported by the worker subprocess as ``sql_bench_tasks``.

They keep what they observe in memory and an ``atexit`` hook writes it as JSON to the
file named by ``BENCH_STATS_FILE`` when the worker exits:

* ``noop``: count, wall time of the first and last execution;
* ``stamp(sent)``: ``(sent, started)`` pairs, both ``time.time()`` on this machine.
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
    """Do nothing but note the time."""
    now = time.time()
    if _noop["first"] is None:
        _noop["first"] = now
    _noop["last"] = now
    _noop["count"] += 1


@task
async def stamp(sent: float) -> None:
    """Note when this body started next to when the dispatcher sent it."""
    _stamps.append((sent, time.time()))


def _write_stats() -> None:
    path = os.environ.get("BENCH_STATS_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"noop": _noop, "stamps": _stamps}, out)


atexit.register(_write_stats)
