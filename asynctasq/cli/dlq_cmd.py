"""``asynctasq dlq``: list, show, requeue and purge a queue's dead letters.

::

    asynctasq dlq list --queue emails            # oldest first: id, task, error, attempts, when
    asynctasq dlq show --queue emails 3f2a...    # one entry, with its arguments
    asynctasq dlq requeue --queue emails 3f2a... # back to the queue at attempt 1, same id
    asynctasq dlq requeue --queue emails --all
    asynctasq dlq purge --queue emails           # asks first; --yes to skip the question

``purge`` deletes for good, so it asks for confirmation on a terminal; with no terminal on
stdin (CI, a pipe) it refuses unless ``--yes`` is given (exit 2). ``list`` and ``show``
take ``--json``. Exit codes: 0 done, 1 broker failure or no such entry, 2 usage or
configuration error (also: a driver that has no dead-letter inspection).

Source: issue 6 item 4; the functions are :mod:`asynctasq.monitoring.dead_letters`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from asynctasq.cli.command import Parser, Subparsers, UsageError
from asynctasq.cli.flags import FLAGS_USAGE
from asynctasq.cli.session import add_session_flags, run_with_handle
from asynctasq.drivers.protocol import DeadLetterEntry
from asynctasq.errors import AsyncTasQError
from asynctasq.handle import Handle
from asynctasq.message import TaskMessage
from asynctasq.monitoring import dead_letters as dlq

NAME = "dlq"

MESSAGE_WIDTH = 60
"""Characters of an error message shown by ``dlq list`` (``show`` prints all of it)."""


class NoSuchEntryError(AsyncTasQError):
    """No dead letter has that task id on that queue."""


def _action(actions: Any, name: str, help_text: str, usage: str = "") -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        usage=f"%(prog)s [-h] --queue Q {usage}[--env-file PATH] [{FLAGS_USAGE}]",
    )
    parser.add_argument("--queue", required=True, metavar="Q", help="the queue (required)")
    return parser


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``dlq`` parser with its ``list``/``show``/``requeue``/``purge`` actions."""
    parser = subparsers.add_parser(
        NAME,
        help="list, show, requeue or purge dead-lettered tasks",
        description="Inspect and act on a queue's dead letters (tasks that will not run again).",
    )
    actions = parser.add_subparsers(
        title="actions", metavar="ACTION", dest="action", required=True, parser_class=Parser
    )
    listing = _action(actions, "list", "list dead letters, oldest first", "[--limit N] [--json] ")
    listing.add_argument("--limit", metavar="N", default="100", help="at most N (default 100)")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    show = _action(actions, "show", "show one dead letter with its arguments", "[--json] TASK_ID ")
    show.add_argument("task_id", metavar="TASK_ID", help="the task id")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    requeue = _action(
        actions,
        "requeue",
        "put dead letters back on the queue at attempt 1, keeping their task ids",
        "(TASK_ID ... | --all) ",
    )
    requeue.add_argument("task_ids", nargs="*", metavar="TASK_ID", help="the tasks to requeue")
    requeue.add_argument("--all", action="store_true", help="requeue every dead letter")
    purge = _action(actions, "purge", "delete every dead letter of the queue", "[--yes] ")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for action in (listing, show, requeue, purge):
        add_session_flags(action)
    return parser


def _when(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")


def _short(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def entry_json(entry: DeadLetterEntry, *, with_message: bool = False) -> dict[str, Any]:
    """Return ``entry`` as a JSON-ready dict, without its body.

    With ``with_message``, also ``"message"``: the decoded message's fields (arguments as
    ``repr`` text), or ``{"unreadable": reason}`` when this process cannot decode it.
    """
    found: dict[str, Any] = {
        "task_id": entry.task_id,
        "task_name": entry.task_name,
        "queue": entry.queue,
        "error_type": entry.error_type,
        "error_message": entry.error_message,
        "attempts": entry.attempts,
        "failed_at": _when(entry.failed_at),
    }
    if with_message:
        message = dlq.read_message(entry)
        if isinstance(message, TaskMessage):
            found["message"] = {
                "args": repr(message.args),
                "kwargs": repr(message.kwargs),
                "attempt": message.attempt,
                "max_attempts": message.max_attempts,
                "correlation_id": message.correlation_id,
                "dispatched_at": _when(message.dispatched_at),
            }
        else:
            found["message"] = {"unreadable": message}
    return found


def render_list(entries: list[DeadLetterEntry], queue: str) -> str:
    """Return the ``dlq list`` table (plain text, stable)."""
    if not entries:
        return f"No dead letters on queue {queue!r}.\n"
    rows = [("TASK ID", "TASK", "ATTEMPTS", "FAILED AT (UTC)", "ERROR")]
    for e in entries:
        error = _short(f"{e.error_type}: {e.error_message}", MESSAGE_WIDTH)
        rows.append(
            (e.task_id or "-", e.task_name or "-", str(e.attempts), _when(e.failed_at), error)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"{len(entries)} dead letter(s) on queue {queue!r}:", ""]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines) + "\n"


def render_entry(entry: DeadLetterEntry) -> str:
    """Return the ``dlq show`` text of one entry."""
    fields = entry_json(entry, with_message=True)
    fields.update(fields.pop("message"))
    width = max(map(len, fields)) + 2
    lines = []
    for key, value in fields.items():
        text = str(value).replace("\n", "\n" + " " * width)
        lines.append(f"{key.ljust(width)}{text}")
    return "\n".join(lines) + "\n"


def _limit(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"--limit must be a whole number >= 1, got {text!r}")
    return value


def _can_ask() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # closed or replaced stdin
        return False


def _confirm(count: int, queue: str) -> bool:
    answer = input(f"Delete {count} dead letter(s) of queue {queue!r} for good? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


async def _purge(handle: Handle, args: argparse.Namespace) -> str:
    store = await dlq.dead_letter_store(handle)
    dead = (await (await handle.driver()).sizes(args.queue)).dead
    if dead == 0:
        return f"No dead letters on queue {args.queue!r}.\n"
    if not args.yes and not _confirm(dead, args.queue):
        return "Nothing deleted.\n"
    purged = await store.purge_dead(args.queue)
    return f"Purged {purged} dead letter(s) from queue {args.queue!r}.\n"


async def _requeue(handle: Handle, args: argparse.Namespace) -> str:
    ids = None if args.all else list(args.task_ids)
    moved = await dlq.requeue_dead_letters(handle, args.queue, ids)
    text = f"Requeued {moved} dead letter(s) on queue {args.queue!r} (attempt count reset).\n"
    missing = 0 if ids is None else len(set(ids)) - moved
    if missing:
        text += f"{missing} of the given task ids had no dead letter there.\n"
    return text


async def _list(handle: Handle, args: argparse.Namespace) -> str:
    entries = await dlq.list_dead_letters(handle, args.queue, limit=_limit(args.limit))
    if args.json:
        return json.dumps([entry_json(e) for e in entries], indent=2) + "\n"
    return render_list(entries, args.queue)


async def _show(handle: Handle, args: argparse.Namespace) -> str:
    entry = await dlq.find_dead_letter(handle, args.queue, args.task_id)
    if entry is None:
        raise NoSuchEntryError(
            f"no dead letter with task id {args.task_id!r} on queue {args.queue!r}"
        )
    if args.json:
        return json.dumps(entry_json(entry, with_message=True), indent=2) + "\n"
    return render_entry(entry)


_ACTIONS = {"list": _list, "show": _show, "requeue": _requeue, "purge": _purge}


def run(args: argparse.Namespace) -> int:
    """Run the action and print its result; return 0.

    Raises:
        UsageError: a bad ``--limit``, ``requeue`` with neither task ids nor ``--all`` (or
            both), or ``purge`` without ``--yes`` and without a terminal to ask on.
        ConfigError: the configuration is invalid, or the driver has no dead-letter store.
        DriverError: the broker cannot be reached.
        NoSuchEntryError: ``show`` of a task id with no dead letter.

    """
    if args.action == "requeue" and bool(args.task_ids) == bool(args.all):
        raise UsageError("dlq requeue: give the task ids to requeue, or --all (not both)")
    if args.action == "list":
        _limit(args.limit)
    if args.action == "purge" and not args.yes and not _can_ask():
        raise UsageError(
            f"refusing to purge the dead letters of queue {args.queue!r} without "
            "confirmation: stdin is not a terminal; pass --yes to purge"
        )
    action = _ACTIONS[args.action]

    async def work(handle: Handle) -> str:
        return await action(handle, args)

    print(run_with_handle(args, work), end="")
    return 0
