"""``asynctasq`` / ``python -m asynctasq``: the command line.

Subcommands are the modules in :data:`COMMANDS`; adding one is one entry there (see
:mod:`asynctasq.cli.command` for what a module provides). Exit codes: 0 success,
2 usage or configuration error, 1 runtime failure; errors are printed to stderr as one
message, without a traceback of asynctasq's own (a task module that raised at import gets
its own traceback: :func:`asynctasq.cli.worker_cmd.import_failure`). Warnings (e.g. an
unknown ``ASYNCTASQ_*`` variable) are printed to stderr as ``asynctasq: warning: ...``.
When stdout is closed early (``asynctasq config --json | head -2``) the command stops
quietly with exit code 141 (128 + SIGPIPE, what a shell reports for tools stopped that
way), without a traceback.

Source: SPEC §7.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from importlib import metadata
from typing import Any, TextIO

from asynctasq.cli import config_cmd, dlq_cmd, migrate_cmd, publish, stats_cmd, worker_cmd
from asynctasq.cli.command import Command, Parser, UsageError
from asynctasq.errors import AsyncTasQError, ConfigError

PROG = "asynctasq"

COMMANDS: tuple[Command, ...] = (worker_cmd, migrate_cmd, stats_cmd, dlq_cmd, config_cmd, publish)
"""Every subcommand module, in ``--help`` order."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141


def _version() -> str:
    try:
        return metadata.version("asynctasq")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with one subparser per module in :data:`COMMANDS`.

    Each subparser's namespace carries ``run``, the module's ``run`` function.
    """
    parser = Parser(
        prog=PROG,
        description="asynctasq: an async-first background task queue for Python.",
        epilog="Run 'asynctasq COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", dest="command", required=True, parser_class=Parser
    )
    for command in COMMANDS:
        command.add_parser(subparsers).set_defaults(run=command.run)
    return parser


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _exit_code(exc: SystemExit) -> int:
    code: Any = exc.code
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code.

    Args:
        argv: the arguments after the program name; ``None`` means ``sys.argv[1:]``.

    Returns:
        0 on success, 2 for a usage or configuration error (``UsageError``,
        ``ConfigError``, argparse errors), 1 for any other ``AsyncTasQError``, 141 when
        stdout was closed before everything was written.

    """
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version and argparse's own usage errors
            return _exit_code(exc)
        try:
            return int(args.run(args))
        except (ConfigError, UsageError) as exc:
            print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except AsyncTasQError as exc:
            print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
