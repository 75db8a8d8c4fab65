"""The demo's four tasks. Each writes what it did to a SQLite ledger outside the queue.

The ledger's path comes from the ``DEMO_LEDGER`` environment variable, set by the demo
for the worker process it starts.
"""

from __future__ import annotations

import os
import sqlite3
import time

from asynctasq.tasks import current_task, task

LEDGER_ENV = "DEMO_LEDGER"


def open_ledger(path: str) -> sqlite3.Connection:
    """Open (and create) the ledger: one row per execution of a demo task."""
    connection = sqlite3.connect(path, timeout=10, isolation_level=None)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS runs ("
        " task TEXT, label TEXT, attempt INTEGER, outcome TEXT, at REAL)"
    )
    return connection


def record(label: str, outcome: str) -> None:
    """Write one ledger row for the running task: its label, attempt and outcome."""
    info = current_task()
    attempt = info.attempt if info is not None else 0
    name = info.task_name if info is not None else "?"
    with open_ledger(os.environ[LEDGER_ENV]) as connection:
        connection.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?)", (name, label, attempt, outcome, time.time())
        )


class DemoError(RuntimeError):
    """Raised on purpose by the demo's failing tasks."""


@task
async def greet(label: str, who: str) -> str:
    """Succeed at once."""
    record(label, "succeeded")
    return f"hello, {who}"


@task(retry_strategy="fixed", retry_delay=1, max_attempts=3)
async def flaky(label: str) -> None:
    """Fail on the first attempt, succeed on the second (retried after 1 s)."""
    info = current_task()
    if info is not None and info.attempt == 1:
        record(label, "failed")
        raise DemoError("first attempt fails on purpose")
    record(label, "succeeded")


@task(retry_strategy="fixed", retry_delay=1, max_attempts=2)
def doomed(label: str) -> None:
    """Fail every time (a sync task, run in a thread); ends in the dead-letter store."""
    record(label, "failed")
    raise DemoError("this task always fails")
