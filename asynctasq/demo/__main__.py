"""``python -m asynctasq.demo``: start a worker, dispatch four tasks, report each outcome.

What it does, on the broker configured like any asynctasq program (defaults to the local
Redis; ``.env``, ``ASYNCTASQ_*`` variables and ``--driver``-style flags are honoured):

0. on an SQL driver, creates its tables where missing (as ``asynctasq migrate`` does); on
   SQLite (``ASYNCTASQ_DRIVER=sqlite``: no server at all) in a file of its temporary
   directory unless ``ASYNCTASQ_SQLITE_PATH`` names one;
1. starts ``python -m asynctasq worker --import asynctasq.demo.tasks`` on a fresh queue;
2. dispatches a quick task, a task delayed by 2 s, one that fails once then succeeds, and
   one that fails every attempt;
3. waits (at most 60 s) until each has an outcome, read from a SQLite ledger the tasks
   write and from the broker's dead-letter store;
4. stops the worker with SIGTERM, prints a table of what happened, and removes its queue.

Exit code 0 when all four behaved as expected, 1 otherwise, 2 on a configuration error.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import attrs

from asynctasq import init
from asynctasq.config.records import Config
from asynctasq.demo.tasks import LEDGER_ENV, doomed, flaky, greet, open_ledger
from asynctasq.drivers import build_driver
from asynctasq.drivers.protocol import DeadLetterStore
from asynctasq.drivers.sql import SQLDriver
from asynctasq.errors import AsyncTasQError, ConfigError
from asynctasq.handle import Handle

DELAY_SECONDS = 2.0
DEADLINE_SECONDS = 60.0


@attrs.frozen
class Row:
    """One line of the demo's report."""

    task: str
    expected: str
    observed: str
    ok: bool


def start_worker(
    queue: str, ledger: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start the worker subprocess on ``queue``; its log goes to this terminal."""
    env = {**os.environ, LEDGER_ENV: str(ledger), **(extra_env or {})}
    command = [
        sys.executable, "-m", "asynctasq", "worker",
        "--import", "asynctasq.demo.tasks", "--queues", queue, "--concurrency", "4",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env)  # noqa: S603 - our own CLI, fixed arguments


def runs(ledger: Path, label: str) -> list[tuple[int, str, float]]:
    """Return ``(attempt, outcome, time)`` of each execution of ``label`` so far."""
    with open_ledger(str(ledger)) as connection:
        rows = connection.execute(
            "SELECT attempt, outcome, at FROM runs WHERE label = ? ORDER BY at", (label,)
        ).fetchall()
    return [(int(a), str(o), float(t)) for a, o, t in rows]


async def dead_letter_ids(handle: Handle, queue: str) -> dict[str, str]:
    """Return ``{task_id: "ErrorType: message (N attempts)"}`` from the dead-letter store."""
    driver = await handle.driver()
    if not isinstance(driver, DeadLetterStore):
        return {}
    return {
        entry.task_id: f"{entry.error_type}: {entry.error_message} ({entry.attempts} attempts)"
        for entry in await driver.dead_letters(queue)
    }


def report(ledger: Path, ids: dict[str, str], dead: dict[str, str], sent: float) -> list[Row]:
    """Compare what the ledger and the dead-letter store show with what should happen."""
    quick = runs(ledger, "quick")
    delayed = runs(ledger, "delayed")
    retried = runs(ledger, "flaky")
    failing = runs(ledger, "doomed")
    waited = delayed[0][2] - sent if delayed else None
    return [
        Row(
            "greet (quick)",
            "runs once and succeeds",
            f"{len(quick)} run(s): " + ", ".join(o for _, o, _ in quick) if quick else "not run",
            [o for _, o, _ in quick] == ["succeeded"],
        ),
        Row(
            f"greet (delayed {DELAY_SECONDS:.0f} s)",
            f"starts no earlier than {DELAY_SECONDS:.0f} s after dispatch",
            f"started {waited:.2f} s after dispatch" if waited is not None else "not run",
            waited is not None and waited >= DELAY_SECONDS and len(delayed) == 1,
        ),
        Row(
            "flaky",
            "attempt 1 fails, attempt 2 succeeds",
            ", ".join(f"attempt {a} {o}" for a, o, _ in retried) or "not run",
            [(a, o) for a, o, _ in retried] == [(1, "failed"), (2, "succeeded")],
        ),
        Row(
            "doomed",
            "fails 2 attempts, then dead-lettered",
            (", ".join(f"attempt {a} {o}" for a, o, _ in failing) or "not run")
            + (f"; dead letter: {dead[ids['doomed']]}" if ids["doomed"] in dead else ""),
            len(failing) == 2 and ids["doomed"] in dead,
        ),
    ]


def print_report(rows: list[Row], worker_exit: int | None) -> None:
    """Print the report as a rich table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="asynctasq demo: what happened to each task")
    for column in ("task", "expected", "observed", "ok"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.task, row.expected, row.observed, "yes" if row.ok else "NO")
    console = Console()
    console.print(table)
    console.print(f"worker stopped with SIGTERM, exit code {worker_exit}")


def sqlite_file(ledger: Path) -> dict[str, str]:
    """Return ``ASYNCTASQ_SQLITE_PATH`` in the demo's directory, unless one is configured."""
    if os.environ.get("ASYNCTASQ_SQLITE_PATH", "").strip():
        return {}
    return {"ASYNCTASQ_SQLITE_PATH": str(ledger.with_name("queue.sqlite3"))}


async def migrate(config: Config) -> None:
    """Create the SQL driver's tables where missing, saying what was done."""
    built = build_driver(config)
    if isinstance(built, SQLDriver):
        for line in await built.migrate():
            print(f"demo: {config.driver}: {line}")


async def demo(ledger: Path) -> int:
    """Run the demo against the configured broker; return the process exit code."""
    queue = f"demo-{uuid.uuid4().hex[:8]}"
    overrides: dict[str, Any] = {"task_defaults": {"queue": queue}}
    extra_env = sqlite_file(ledger) if Config.get().driver == "sqlite" else {}
    if extra_env:
        overrides["sqlite"] = {"path": extra_env["ASYNCTASQ_SQLITE_PATH"]}
    async with init(overrides) as handle:
        await migrate(handle.config)
        await handle.driver()  # fail fast, before starting a worker, if the broker is down
        open_ledger(str(ledger)).close()
        worker = start_worker(queue, ledger, extra_env)
        try:
            sent = time.time()
            ids = {
                "quick": await greet("quick", "world").dispatch(),
                "delayed": await greet("delayed", "later").delay(DELAY_SECONDS).dispatch(),
                "flaky": await flaky("flaky").dispatch(),
                "doomed": await doomed("doomed").dispatch(),
            }
            print(f"demo: dispatched 4 tasks to queue {queue!r}; waiting for the worker")
            deadline = time.monotonic() + DEADLINE_SECONDS
            rows: list[Row] = []
            while time.monotonic() < deadline:
                rows = report(ledger, ids, await dead_letter_ids(handle, queue), sent)
                if all(row.ok for row in rows) or worker.poll() is not None:
                    break
                await asyncio.sleep(0.2)
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            worker_exit = worker.wait(timeout=30)
            driver = await handle.driver()
            if isinstance(driver, DeadLetterStore):
                await driver.purge_dead(queue)
    print_report(rows, worker_exit)
    return 0 if rows and all(row.ok for row in rows) and worker_exit == 0 else 1


def main() -> int:
    """Entry point: run the demo in a temporary directory for its ledger."""
    try:
        with tempfile.TemporaryDirectory(prefix="asynctasq-demo-") as directory:
            return asyncio.run(demo(Path(directory) / "ledger.sqlite3"))
    except ConfigError as error:
        print(f"asynctasq demo: {error}", file=sys.stderr)
        return 2
    except AsyncTasQError as error:
        print(f"asynctasq demo: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
