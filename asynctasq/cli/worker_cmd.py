"""``asynctasq worker``: import the task modules, then run a worker until stopped.

::

    asynctasq worker --import myapp.tasks --queues high,default --concurrency 20
    python -m asynctasq worker myapp.tasks --max-tasks 100 --redis-url redis://127.0.0.1:6379

Everything is checked before anything connects (FIELD-CASES C37): the worker's own flags,
every configuration flag (parsed like its environment variable) and the imports. A bad
value is one line naming the flag, exit code 2; so is a task module that does not exist,
while one whose own code raised at import also gets its traceback (:func:`import_failure`),
as does one that called ``sys.exit()`` at import (naming the module, the code and the line).
The current directory is put on ``sys.path`` first, so ``--import tasks`` finds
``./tasks.py`` as ``python -m`` would.

The worker runs exactly the tasks defined in (or imported into) the modules named here,
and for a package those of its submodules it imported: their registry is built from those
modules alone (SPEC §4, Security). A message naming any other task is dead-lettered. With
no module, or modules that define no task, it does not start (exit 2, naming the modules).
SIGTERM/SIGINT stop it gracefully (exit 0); a second signal stops it at once, still
returning unfinished tasks to the queue.

Source: SPEC §4, §7.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from asynctasq import context
from asynctasq.cli.command import Subparsers, UsageError
from asynctasq.cli.flags import FLAGS_USAGE, add_config_flags, flag_overrides
from asynctasq.config.resolve import resolve
from asynctasq.handle import Handle
from asynctasq.runner import run as run_coroutine
from asynctasq.tasks.registry import Registry, build_registry
from asynctasq.worker.run import run_worker
from asynctasq.worker.shutdown import timed_stop_step, unless_signalled
from asynctasq.worker.state import MAX_CONCURRENCY, WorkerStats

NAME = "worker"

LOG_LEVELS = ("debug", "info", "warning", "error")


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``worker`` parser (its options plus one flag per setting) and return it."""
    parser = subparsers.add_parser(
        NAME,
        help="run a worker that executes tasks from the queues",
        usage=(
            "%(prog)s [-h] [--import MODULE ...] [--queues Q1,Q2] [--concurrency N] "
            f"[--max-tasks N] [--shutdown-timeout S] [{FLAGS_USAGE}] [MODULE ...]"
        ),
        description=(
            "Import the modules that define your tasks, then run them from the queues until "
            "SIGTERM/SIGINT (graceful; a second signal stops at once). Only tasks defined in "
            "the imported modules can run."
        ),
    )
    parser.add_argument(
        "modules", nargs="*", metavar="MODULE", help="modules to import (same as --import)"
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        nargs="+",
        default=[],
        metavar="MODULE",
        help="a module defining tasks, e.g. myapp.tasks (repeatable)",
    )
    parser.add_argument(
        "--queues",
        metavar="Q1,Q2",
        help="queues to serve, highest priority first (default: task_defaults.queue)",
    )
    parser.add_argument(
        "--concurrency",
        metavar="N",
        default="10",
        help=f"tasks in flight at once, 1 to {MAX_CONCURRENCY} (default 10)",
    )
    parser.add_argument(
        "--max-tasks", metavar="N", help="stop after handling N tasks (default: run until stopped)"
    )
    parser.add_argument(
        "--shutdown-timeout",
        metavar="SECONDS",
        default="30",
        help="how long running tasks may finish after SIGTERM/SIGINT (default 30)",
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="log level (default info)"
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        default=".env",
        help="the .env file to read (default: .env in the current directory, if present)",
    )
    add_config_flags(parser)
    return parser


def positive_int(flag: str, text: str) -> int:
    """Return ``text`` as an int >= 1, or raise ``UsageError`` naming ``flag``."""
    try:
        value = int(text.strip())
    except ValueError:
        raise UsageError(f"{flag} must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise UsageError(f"{flag} must be a whole number >= 1, got {text!r}")
    return value


def concurrency_of(text: str) -> int:
    """Return ``--concurrency`` ``text`` as an int from 1 to :data:`MAX_CONCURRENCY`.

    Raises:
        UsageError: not a whole number >= 1, or above :data:`MAX_CONCURRENCY` (saying why).
    """
    value = positive_int("--concurrency", text)
    if value > MAX_CONCURRENCY:
        raise UsageError(
            f"--concurrency must be at most {MAX_CONCURRENCY}, got {text!r} (each slot is a "
            "coroutine made at start: 10000000 took 5.8 GB and ignored SIGTERM; for more "
            "throughput, run more worker processes)"
        )
    return value


def seconds(flag: str, text: str) -> float:
    """Return ``text`` as a finite number of seconds >= 0, or raise ``UsageError``."""
    try:
        value = float(text.strip())
    except ValueError:
        raise UsageError(f"{flag} must be a number of seconds >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{flag} must be a number of seconds >= 0, got {text!r}")
    return value


def queue_names(text: str) -> list[str]:
    """Return the queue names in ``"a,b"`` (spaces trimmed), or raise ``UsageError``."""
    names = [name.strip() for name in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise UsageError(f"--queues must list queue names separated by commas, got {text!r}")
    return names


def import_modules(names: Sequence[str]) -> list[ModuleType]:
    """Import each task module, the current directory first on ``sys.path``.

    Returns:
        The modules, in the order named.

    Raises:
        UsageError: a module cannot be imported (naming it and the reason; when the
            module's own code raised, where, with the traceback: :func:`import_failure`),
            or its code called ``sys.exit()`` (which would otherwise end the worker with
            that code and no message).
    """
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except (Exception, SystemExit) as exc:
            raise UsageError(import_failure(name, exc)) from None
    return modules


def _is_import_machinery(filename: str) -> bool:
    return (
        filename.startswith("<frozen importlib")
        or filename == importlib.__file__
        or filename == __file__
    )


def import_failure(name: str, exc: BaseException) -> str:
    """Return the error text for task module ``name`` whose import raised ``exc``.

    A module that does not exist (``ModuleNotFoundError`` for ``name`` or a package above
    it) is one line. Anything else went wrong in the user's code: the line names the file
    and line that raised, and the traceback follows (frames of the import machinery and of
    this command left out), then the exception, as Python prints them::

        cannot import task module 'myapp.tasks': RuntimeError: boom (raised at /app/myapp/tasks.py, line 3)
        Traceback (most recent call last):
          File "/app/myapp/tasks.py", line 3, in <module>
            raise RuntimeError("boom")
        RuntimeError: boom

    A ``SystemExit`` (``sys.exit(3)`` at import) is told as such: the line names the module
    whose code called it (``name`` or a module it imported), the code and where::

        cannot import task module 'myapp.tasks': module 'myapp.settings' called sys.exit(3) (at /app/myapp/settings.py, line 7)
    """  # noqa: E501 - the examples are one line of output
    headline = f"cannot import task module {name!r}: {type(exc).__name__}: {exc}"
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing is not None and (name == missing or name.startswith(missing + ".")):
        return headline
    trace = traceback.TracebackException.from_exception(exc)
    frames = [f for f in trace.stack if not _is_import_machinery(f.filename)]
    trace.stack = traceback.StackSummary.from_list(frames)
    if isinstance(exc, SystemExit):
        headline = f"cannot import task module {name!r}: {exit_text(exc)}"
        if frames:
            headline += f" (at {frames[-1].filename}, line {frames[-1].lineno})"
    elif frames and not isinstance(exc, SyntaxError):  # a SyntaxError names its line itself
        headline += f" (raised at {frames[-1].filename}, line {frames[-1].lineno})"
    return headline + "\n" + "".join(trace.format()).rstrip("\n")


def exit_text(exc: SystemExit) -> str:
    """Return ``"module 'm' called sys.exit(3)"`` for a ``SystemExit`` raised at import.

    ``m`` is the module whose code raised it: that of the innermost frame outside the
    import machinery; without such a frame, ``"its code called sys.exit(3)"``. The code is
    shown as written (``sys.exit()``, ``sys.exit('bye')``); ``raise SystemExit(3)`` reads
    the same.
    """
    code = "" if exc.code is None else repr(exc.code)
    caller = "its code"
    for frame, _line in traceback.walk_tb(exc.__traceback__):
        if not _is_import_machinery(frame.f_code.co_filename):
            caller = f"module {frame.f_globals.get('__name__', '?')!r}"
    return f"{caller} called sys.exit({code})"


def no_tasks_message(names: Sequence[str]) -> str:
    """Return the error for a worker with no task to run, naming the modules searched."""
    if not names:
        return (
            "no task modules given: name the modules that define your tasks, e.g. "
            "asynctasq worker --import myapp.tasks (or asynctasq worker myapp.tasks)"
        )
    return (
        f"no tasks found in {', '.join(names)}: "
        "a worker runs the @task functions and task classes defined in (or imported into) "
        "the modules it imports; import the modules that define them"
    )


def configure_logging(level: str) -> None:
    """Send log records to stderr at ``level`` unless the application configured logging."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    logging.getLogger("asynctasq").setLevel(level.upper())


def run(args: argparse.Namespace) -> int:
    """Validate everything, import the task modules, then run the worker; return 0.

    Raises:
        UsageError: a bad worker flag, a module that cannot be imported, or no task at all
            in the modules (a worker would dead-letter every message).
        ConfigError: a bad configuration flag, variable or ``.env`` line, or two tasks of
            the imported modules share a name.
        DriverError: the broker cannot be reached, or is not ready (an SQL driver's tables
            are missing or out of date): exit code 1.
    """
    concurrency = concurrency_of(args.concurrency)
    max_tasks = None if args.max_tasks is None else positive_int("--max-tasks", args.max_tasks)
    grace = seconds("--shutdown-timeout", args.shutdown_timeout)
    queues = None if args.queues is None else queue_names(args.queues)
    resolved = resolve(flags=flag_overrides(args), env_file=args.env_file)
    configure_logging(args.log_level)
    names = [*args.modules, *(name for group in args.imports for name in group)]
    registry = build_registry(import_modules(names))
    if not registry:
        raise UsageError(no_tasks_message(names))
    logging.getLogger("asynctasq.worker").info("registered tasks: %s", ", ".join(registry.names))
    handle = Handle(resolved.config, resolved.provenance, env_file=args.env_file)
    context.make_current(handle)
    run_until_stopped(handle, registry, queues, concurrency, max_tasks, grace)
    return 0


def run_until_stopped(
    handle: Handle,
    registry: Registry,
    queues: Sequence[str] | None,
    concurrency: int,
    max_tasks: int | None,
    grace: float,
) -> WorkerStats:
    """Run the worker on a new event loop (uvloop when installed); close the handle after."""

    async def serve() -> WorkerStats:
        try:
            return await run_worker(
                handle,
                tasks=registry,
                queues=queues,
                concurrency=concurrency,
                max_tasks=max_tasks,
                shutdown_grace_seconds=grace,
            )
        finally:
            step = "closing the broker connections"
            with timed_stop_step(step):
                await unless_signalled(step, handle.aclose())

    return run_coroutine(serve())
