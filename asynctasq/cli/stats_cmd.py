"""``asynctasq stats``: every queue's counts and the live workers, as a table or JSON.

::

    asynctasq stats
    asynctasq stats --queues emails,default --json
    asynctasq stats --driver redis --redis-url redis://127.0.0.1:6379

Columns: READY (waiting), DELAYED (not due yet: delays and retry backoffs), IN FLIGHT (held
by a worker), DEAD (dead-lettered; see ``asynctasq dlq``), COMPLETED (kept by
``repository.keep_completed_tasks``; ``-`` when the driver keeps none). Workers: id, host,
pid, queues, concurrency, running now, processed, failed, and how long ago their last
heartbeat was. What the driver cannot tell is said below the tables.

The table is drawn by rich; when stdout is not a terminal it has no colour and a fixed
width, so it can be diffed and grepped. ``--json`` prints one object:
``{"driver", "taken_at", "queues": [...], "workers": [...] | null, "notes": [...]}``.

Source: issue 6 item 3.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from datetime import UTC, datetime
from typing import Any

import attrs

from asynctasq.cli.command import Subparsers
from asynctasq.cli.flags import FLAGS_USAGE
from asynctasq.cli.session import add_session_flags, run_with_handle
from asynctasq.cli.worker_cmd import queue_names
from asynctasq.handle import Handle
from asynctasq.monitoring.stats import Snapshot, snapshot

NAME = "stats"

PLAIN_WIDTH = 120
"""Table width when stdout is not a terminal."""

_WORKER_COLUMNS = (
    "WORKER",
    "HOST",
    "PID",
    "QUEUES",
    "CONC",
    "ACTIVE",
    "PROCESSED",
    "FAILED",
    "LAST HEARTBEAT",
)
_TEXT = frozenset({"WORKER", "HOST", "QUEUES", "LAST HEARTBEAT"})


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``stats`` parser and return it."""
    parser = subparsers.add_parser(
        NAME,
        help="show each queue's ready, delayed, in-flight and dead counts, and live workers",
        usage=f"%(prog)s [-h] [--queues Q1,Q2] [--json] [--env-file PATH] [{FLAGS_USAGE}]",
        description=(
            "Read the broker and print, per queue, the messages ready, delayed, in flight "
            "and dead-lettered (and completed ones kept), then the live workers with their "
            "last heartbeat."
        ),
    )
    parser.add_argument(
        "--queues",
        metavar="Q1,Q2",
        help="queues to show (default: every queue the broker holds)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_session_flags(parser)
    return parser


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")


def as_json(found: Snapshot) -> dict[str, Any]:
    """Return ``found`` as a JSON-ready dict (times as ISO 8601 UTC strings)."""
    workers = None
    if found.workers is not None:
        workers = []
        for worker in found.workers:
            fields = attrs.asdict(worker)
            fields["queues"] = list(worker.queues)
            fields["started_at"] = _iso(worker.started_at)
            fields["last_heartbeat"] = _iso(worker.last_heartbeat)
            fields["seconds_since_heartbeat"] = round(found.taken_at - worker.last_heartbeat, 3)
            workers.append(fields)
    return {
        "driver": found.driver,
        "taken_at": _iso(found.taken_at),
        "queues": [attrs.asdict(queue) for queue in found.queues],
        "workers": workers,
        "notes": list(found.notes),
    }


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def render(found: Snapshot, *, terminal: bool) -> str:
    """Return the tables for ``found``; plain (no colour, fixed width) unless ``terminal``."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(
        file=out,
        width=None if terminal else PLAIN_WIDTH,
        force_terminal=terminal,
        color_system="auto" if terminal else None,
        highlight=False,
    )
    queues = Table(title=f"Queues ({found.driver})", box=box.SIMPLE_HEAD, title_justify="left")
    for heading in ("QUEUE", "READY", "DELAYED", "IN FLIGHT", "DEAD", "COMPLETED"):
        queues.add_column(heading, justify="left" if heading == "QUEUE" else "right")
    for q in found.queues:
        completed = "-" if q.completed is None else str(q.completed)
        queues.add_row(
            q.queue, str(q.ready), str(q.delayed), str(q.in_flight), str(q.dead), completed
        )
    if not found.queues:
        console.print("No queues.")
    else:
        console.print(queues)
    if found.workers:
        workers = Table(title="Live workers", box=box.SIMPLE_HEAD, title_justify="left")
        for heading in _WORKER_COLUMNS:
            workers.add_column(heading, justify="left" if heading in _TEXT else "right")
        for w in found.workers:
            workers.add_row(
                w.worker_id,
                w.hostname,
                str(w.pid),
                ",".join(w.queues),
                str(w.concurrency),
                str(w.active),
                str(w.processed),
                str(w.failed),
                _ago(found.taken_at - w.last_heartbeat),
            )
        console.print(workers)
    elif found.workers is not None:
        console.print("No live workers.")
    for note in found.notes:
        console.print(f"Note: {note}.")
    if terminal:
        return out.getvalue()
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def run(args: argparse.Namespace) -> int:
    """Read the statistics and print them; return 0.

    Raises:
        UsageError: ``--queues`` is malformed.
        ConfigError: the configuration is invalid, or the driver is not available.
        DriverError: the broker cannot be reached.

    """
    queues = None if args.queues is None else queue_names(args.queues)

    async def read(handle: Handle) -> Snapshot:
        return await snapshot(handle, queues=queues)

    found = run_with_handle(args, read)
    if args.json:
        print(json.dumps(as_json(found), indent=2))
    else:
        print(render(found, terminal=sys.stdout.isatty()), end="")
    return 0
