"""What a CLI subcommand module provides, and the parser class every subcommand gets.

A subcommand is a module with two functions, listed once in
:data:`asynctasq.cli.main.COMMANDS`::

    def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser: ...
    def run(args: argparse.Namespace) -> int: ...

``add_parser`` calls ``subparsers.add_parser(name, help=..., description=...)``, adds its
arguments (``asynctasq.cli.flags.add_config_flags`` for the per-setting flags) and returns
the parser; ``run`` does the work and returns the exit code. ``run`` raises
:class:`UsageError` or ``ConfigError`` for exit code 2 and any other ``AsyncTasQError``
for exit code 1; ``main`` prints them as one message without a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias

from asynctasq.errors import AsyncTasQError


class UsageError(AsyncTasQError):
    """The command line is not valid."""


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser``: no abbreviated options; unknown ones get their command's usage.

    ``--redis-d`` would otherwise be taken for ``--redis-db``; with one flag per setting,
    a prefix is too easily a typo for a different setting. argparse leaves arguments a
    subcommand does not know to the top-level parser, which printed ``usage: asynctasq
    [-h] [--version] COMMAND ...`` for ``asynctasq worker --bogus-flag``; a parser without
    subcommands of its own refuses them itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]  # typeshed overloads on namespace
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse like argparse; a parser without subcommands refuses arguments it does not know.

        Raises:
            SystemExit: exit code 2 after printing this parser's usage and
                ``unrecognized arguments: ...`` naming them (``self.error``).
        """
        parsed, unknown = super().parse_known_args(args, namespace)
        if unknown and self._subparsers is None:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed, unknown


Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
"""The object ``add_parser`` receives (what ``parser.add_subparsers()`` returns)."""


class Command(Protocol):
    """A subcommand module: ``add_parser(subparsers)`` and ``run(args) -> int``."""

    def add_parser(self, subparsers: Subparsers) -> argparse.ArgumentParser:
        """Add this command's parser to ``subparsers`` and return it."""
        ...

    def run(self, args: argparse.Namespace) -> int:
        """Run the command with parsed ``args``; return the process exit code."""
        ...
