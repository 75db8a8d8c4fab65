"""Running one piece of work against the configured broker, for the inspection commands.

``asynctasq stats`` and ``asynctasq dlq`` resolve the configuration from their flags, the
environment and ``.env`` (like ``worker``), open a handle on a new event loop, run their
coroutine and close the handle (its connections) whatever happens.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TypeVar

from asynctasq.cli.command import Parser
from asynctasq.cli.flags import add_config_flags, flag_overrides
from asynctasq.config.resolve import resolve
from asynctasq.handle import Handle
from asynctasq.runner import run as run_coroutine

T = TypeVar("T")


def add_session_flags(parser: argparse.ArgumentParser | Parser) -> None:
    """Add ``--env-file`` and the configuration flags (``--driver``, ``--redis-url``, ...)."""
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        default=".env",
        help="the .env file to read (default: .env in the current directory, if present)",
    )
    add_config_flags(parser)


def run_with_handle(args: argparse.Namespace, work: Callable[[Handle], Awaitable[T]]) -> T:
    """Resolve the configuration, run ``work(handle)`` on a new loop, close the handle.

    Raises:
        ConfigError: the configuration is invalid.
        DriverError: the broker cannot be reached or a call failed.

    """
    resolved = resolve(flags=flag_overrides(args), env_file=args.env_file)
    handle = Handle(resolved.config, resolved.provenance, env_file=args.env_file)

    async def session() -> T:
        async with handle:
            return await work(handle)

    return run_coroutine(session())
