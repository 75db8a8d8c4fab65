"""``asynctasq dlq``: list, show, requeue and purge a queue's dead letters.

::

    asynctasq dlq list --queue emails            # oldest first: #, id, task, attempts, when, error
    asynctasq dlq show --queue emails 3f2a...    # one entry, with its arguments
    asynctasq dlq show --queue emails --position 2   # the 2nd of the list (any entry)
    asynctasq dlq requeue --queue emails 3f2a... # back to the queue at attempt 1, same id
    asynctasq dlq requeue --queue emails --position 2
    asynctasq dlq requeue --queue emails --all
    asynctasq dlq purge --queue emails           # asks first; --yes to skip the question

An entry is addressed by its task id or by its position in ``dlq list`` (``#``, 1 = the
oldest): a dead letter whose message could not be decoded has no task id (listed as ``-``)
and only a position names it. Positions count from the oldest, so new dead letters do not
move them; requeueing or purging does. The brokers find dead letters by task id, so the
entries without one are requeued together: ``requeue --position`` of one of them needs the
positions of all of them (or ``--all``).

``purge`` deletes for good, so it asks for confirmation on a terminal (the question is
asked between two broker sessions, with no event loop running, so Ctrl-C works); with no
terminal on stdin (CI, a pipe) it refuses unless ``--yes`` is given (exit 2). Answering
anything but ``y``/``yes`` deletes nothing (exit 0); end of input (Ctrl-D) deletes nothing
(exit 1), and so does Ctrl-C (exit 130). ``list`` says when ``--limit`` cut the list
(``130 dead letter(s) ..., showing the oldest 100``; with ``--json``, on stderr).
``requeue`` of a task id with no dead letter names it (exit 1; the others are requeued).
``list`` and ``show`` take ``--json``. Exit codes: 0 done, 1 broker failure or no such
entry, 2 usage or configuration error (also: a driver that has no dead-letter inspection),
130 interrupted at the purge question.

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

PROG_DLQ = "asynctasq dlq"
"""How this command names itself on stderr."""

MESSAGE_WIDTH = 60
"""Characters of an error message shown by ``dlq list`` (``show`` prints all of it)."""

BODY_SHOWN_BYTES = 512
"""Bytes of an undecodable dead letter's stored body ``show`` prints (its ``repr``)."""

POSITION_HELP = (
    "the entry at this position of `dlq list` (#, 1 = oldest; also entries without a task id)"
)


EXIT_NO_ANSWER = 1
"""``purge``: the question got end of input (Ctrl-D); nothing was deleted."""

EXIT_INTERRUPTED = 130
"""``purge``: Ctrl-C at the question; nothing was deleted."""


class NoSuchEntryError(AsyncTasQError):
    """No dead letter has that task id (or is at that position) on that queue."""


class PartlyRequeuedError(NoSuchEntryError):
    """Some task ids given to ``requeue`` had no dead letter; the others were requeued.

    Attributes:
        done: what was requeued, the text ``requeue`` prints on stdout.
    """

    def __init__(self, message: str, done: str) -> None:
        super().__init__(message)
        self.done = done


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
    show = _action(
        actions,
        "show",
        "show one dead letter with its arguments",
        "[--json] (TASK_ID | --position N) ",
    )
    show.add_argument("task_id", nargs="?", metavar="TASK_ID", help="the task id")
    show.add_argument("--position", metavar="N", help=POSITION_HELP)
    show.add_argument("--json", action="store_true", help="print a JSON object")
    requeue = _action(
        actions,
        "requeue",
        "put dead letters back on the queue at attempt 1, keeping their task ids",
        "(TASK_ID ... | --position N ... | --all) ",
    )
    requeue.add_argument("task_ids", nargs="*", metavar="TASK_ID", help="the tasks to requeue")
    requeue.add_argument(
        "--position", metavar="N", action="append", default=[], help=POSITION_HELP + "; repeatable"
    )
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


def raw_body(body: bytes, shown: int = BODY_SHOWN_BYTES) -> str:
    r"""Return the ``repr`` of ``body``'s first ``shown`` bytes, saying how many more there are.

    ``b'hello \xff'`` or ``b'xxx...' ... and 1488 more bytes``: one line, ASCII only,
    every byte recoverable from it (``ast.literal_eval``) when nothing was cut.
    """
    text = repr(body[:shown])
    if len(body) > shown:
        text += f" ... and {len(body) - shown} more bytes"
    return text


def entry_json(entry: DeadLetterEntry, *, with_message: bool = False) -> dict[str, Any]:
    """Return ``entry`` as a JSON-ready dict, without its body.

    With ``with_message``, also ``"message"``: the decoded message's fields (arguments as
    ``repr`` text), or, when this process cannot decode it, ``{"unreadable": reason,
    "body_bytes": size, "body": raw}`` with the stored bytes as :func:`raw_body` shows them.
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
            found["message"] = {
                "unreadable": message,
                "body_bytes": len(entry.body),
                "body": raw_body(entry.body),
            }
    return found


def cut_note(shown: int, total: int) -> str:
    """Return what ``dlq list`` says when ``--limit`` cut the list, or ``""`` when it did not."""
    if total <= shown:
        return ""
    return f"showing the oldest {shown} of {total}; pass --limit {total} to see all"


def render_list(entries: list[DeadLetterEntry], queue: str, total: int | None = None) -> str:
    """Return the ``dlq list`` table (plain text, stable); ``#`` is the position, 1 = oldest.

    Args:
        entries: the entries shown, oldest first.
        queue: the queue name.
        total: how many dead letters the queue has, when more than shown (``--limit``).

    """
    if not entries:
        return f"No dead letters on queue {queue!r}.\n"
    rows = [("#", "TASK ID", "TASK", "ATTEMPTS", "FAILED AT (UTC)", "ERROR")]
    for number, e in enumerate(entries, 1):
        error = _short(f"{e.error_type}: {e.error_message}", MESSAGE_WIDTH)
        task = e.task_name or "-"
        rows.append(
            (str(number), e.task_id or "-", task, str(e.attempts), _when(e.failed_at), error)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    note = cut_note(len(entries), total or 0)
    if note:
        lines = [f"{total} dead letter(s) on queue {queue!r}, {note}:", ""]
    else:
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


def _whole(flag: str, text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{flag} must be a whole number >= 1, got {text!r}")
    return value


def _limit(text: str) -> int:
    return _whole("--limit", text)


def _positions(args: argparse.Namespace) -> list[int]:
    given = args.position if isinstance(args.position, list) else [args.position]
    return [_whole("--position", text) for text in given if text is not None]


async def _all_entries(handle: Handle, queue: str) -> list[DeadLetterEntry]:
    return await dlq.list_dead_letters(handle, queue, limit=dlq.SCAN_LIMIT)


def _at(entries: list[DeadLetterEntry], position: int, queue: str) -> DeadLetterEntry:
    if position > len(entries):
        raise NoSuchEntryError(
            f"no dead letter at position {position} on queue {queue!r} "
            f"(it has {len(entries)}; see dlq list)"
        )
    return entries[position - 1]


def _task_ids_at(entries: list[DeadLetterEntry], positions: list[int], queue: str) -> list[str]:
    """Return the task ids to requeue for ``positions`` (``""``: the entries without one).

    Raises:
        NoSuchEntryError: a position past the end of the list.
        UsageError: a position names an entry without a task id while others without one
            are not named: the brokers can requeue those only together.

    """
    chosen = {position: _at(entries, position, queue) for position in positions}
    ids = [entry.task_id for entry in chosen.values()]
    if "" in ids:
        nameless = [n for n, entry in enumerate(entries, 1) if not entry.task_id]
        if not set(nameless) <= set(chosen):
            listed = ", ".join(map(str, nameless))
            raise UsageError(
                f"the dead letters without a task id on queue {queue!r} (positions {listed}) "
                "can only be requeued together: give all their positions, or --all"
            )
    return ids


def _can_ask() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # closed or replaced stdin
        return False


def _confirm(count: int, queue: str) -> bool:
    """Ask on the terminal; ``EOFError`` and ``KeyboardInterrupt`` reach the caller."""
    answer = input(f"Delete {count} dead letter(s) of queue {queue!r} for good? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


async def _dead_count(handle: Handle, args: argparse.Namespace) -> int:
    await dlq.dead_letter_store(handle)  # the driver must have one, before asking
    return (await (await handle.driver()).sizes(args.queue)).dead


async def _purge(handle: Handle, args: argparse.Namespace) -> str:
    if await _dead_count(handle, args) == 0:
        return f"No dead letters on queue {args.queue!r}.\n"
    purged = await (await dlq.dead_letter_store(handle)).purge_dead(args.queue)
    return f"Purged {purged} dead letter(s) from queue {args.queue!r}.\n"


def _purge_asking(args: argparse.Namespace) -> int:
    """``purge`` without ``--yes``: count, ask with no event loop running, then purge.

    The question is asked between two broker sessions: ``input()`` inside a running loop
    would block it, and Ctrl-C would be swallowed by the loop's signal handling.
    """

    async def count(handle: Handle) -> int:
        return await _dead_count(handle, args)

    dead = run_with_handle(args, count)
    if dead == 0:
        print(f"No dead letters on queue {args.queue!r}.")
        return 0
    try:
        confirmed = _confirm(dead, args.queue)
    except EOFError:
        print(f"\n{PROG_DLQ}: no answer (end of input): nothing deleted", file=sys.stderr)
        return EXIT_NO_ANSWER
    except KeyboardInterrupt:
        print(f"\n{PROG_DLQ}: interrupted: nothing deleted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not confirmed:
        print("Nothing deleted.")
        return 0

    async def work(handle: Handle) -> str:
        return await _purge(handle, args)

    print(run_with_handle(args, work), end="")
    return 0


async def _requeue(handle: Handle, args: argparse.Namespace) -> str:
    ids: list[str] | None = None  # None: --all
    missing: list[str] = []  # given ids with no dead letter (a typo, already requeued)
    if not args.all:
        entries = await _all_entries(handle, args.queue)
        present = {entry.task_id for entry in entries if entry.task_id}
        missing = [i for i in dict.fromkeys(args.task_ids) if i not in present]
        ids = [i for i in args.task_ids if i in present]
        ids += _task_ids_at(entries, _positions(args), args.queue)
    moved = 0 if ids == [] else await dlq.requeue_dead_letters(handle, args.queue, ids)
    text = f"Requeued {moved} dead letter(s) on queue {args.queue!r} (attempt count reset).\n"
    if missing:
        named = ", ".join(repr(i) for i in missing)
        hint = ""
        if "-" in missing or "" in missing:
            hint = " (an entry listed with task id '-' has none: use --position N)"
        done = f"requeued the other {moved}" if moved else "nothing requeued"
        raise PartlyRequeuedError(
            f"no dead letter with task id {named} on queue {args.queue!r}{hint}; {done}",
            text if moved else "",
        )
    return text


async def _list(handle: Handle, args: argparse.Namespace) -> str:
    limit = _limit(args.limit)
    entries = await dlq.list_dead_letters(handle, args.queue, limit=limit)
    total = len(entries)
    if total >= limit:  # maybe cut: say how many there are
        total = max(total, (await (await handle.driver()).sizes(args.queue)).dead)
    if args.json:
        note = cut_note(len(entries), total)
        if note:
            print(
                f"{PROG_DLQ}: {total} dead letter(s) on queue {args.queue!r}, {note}",
                file=sys.stderr,
            )
        listed = [{"position": n, **entry_json(e)} for n, e in enumerate(entries, 1)]
        return json.dumps(listed, indent=2) + "\n"
    return render_list(entries, args.queue, total)


async def _show(handle: Handle, args: argparse.Namespace) -> str:
    positions = _positions(args)
    if positions:
        entry = _at(await _all_entries(handle, args.queue), positions[0], args.queue)
    else:
        found = await dlq.find_dead_letter(handle, args.queue, args.task_id)
        if found is None:
            hint = ""
            if args.task_id in ("-", ""):
                hint = "; an entry listed with task id '-' has none: use --position N"
            raise NoSuchEntryError(
                f"no dead letter with task id {args.task_id!r} on queue {args.queue!r}{hint}"
            )
        entry = found
    if args.json:
        return json.dumps(entry_json(entry, with_message=True), indent=2) + "\n"
    return render_entry(entry)


_ACTIONS = {"list": _list, "show": _show, "requeue": _requeue, "purge": _purge}


def run(args: argparse.Namespace) -> int:
    """Run the action and print its result; return 0.

    Raises:
        UsageError: a bad ``--limit`` or ``--position``, ``show`` with neither or both of a
            task id and ``--position``, ``requeue`` with neither task ids (or positions) nor
            ``--all`` (or both), ``requeue --position`` of some but not all entries without
            a task id, or ``purge`` without ``--yes`` and without a terminal to ask on.
        ConfigError: the configuration is invalid, or the driver has no dead-letter store.
        DriverError: the broker cannot be reached.
        NoSuchEntryError: ``show`` of a task id with no dead letter, or a position past the
            end of the list.

    """
    if args.action == "requeue":
        named = bool(args.task_ids or args.position)
        if named == bool(args.all):
            raise UsageError(
                "dlq requeue: give the task ids (or --position) to requeue, or --all (not both)"
            )
        _positions(args)
    if args.action == "show":
        if (args.task_id is None) == (args.position is None):
            raise UsageError("dlq show: give a task id or --position N (one of them)")
        _positions(args)
    if args.action == "list":
        _limit(args.limit)
    if args.action == "purge" and not args.yes:
        if not _can_ask():
            raise UsageError(
                f"refusing to purge the dead letters of queue {args.queue!r} without "
                "confirmation: stdin is not a terminal; pass --yes to purge"
            )
        return _purge_asking(args)
    action = _ACTIONS[args.action]

    async def work(handle: Handle) -> str:
        return await action(handle, args)

    try:
        print(run_with_handle(args, work), end="")
    except PartlyRequeuedError as exc:
        print(exc.done, end="")  # what was done, then the error (exit 1)
        raise
    return 0
