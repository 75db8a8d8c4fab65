"""``asynctasq config``: print the resolved configuration, each value with its source.

Secrets are masked (:mod:`asynctasq.config.diff`). ``--diff`` keeps only the settings that
differ from their defaults; ``--json`` prints a JSON list of
``{"path", "value", "default", "source"}`` objects instead of the table.

A setting the selected driver requires but that is not set (``postgres.dsn`` with
``--driver postgres``) is not an error here, since nothing connects: it is printed as a
warning line on stderr, and the commands that build the driver fail with it (exit 2).

Source: SPEC §7 (``config``); issue 2 item 8.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asynctasq.cli.command import Subparsers, UsageError
from asynctasq.cli.flags import FLAGS_USAGE, add_config_flags, flag_overrides
from asynctasq.config.diff import Row, diff_rows, rows
from asynctasq.config.resolve import resolve
from asynctasq.config.validate import required_problems

NAME = "config"

_HEADINGS = ("SETTING", "VALUE", "DEFAULT", "SOURCE")


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``config`` parser (options below plus one flag per setting) and return it."""
    parser = subparsers.add_parser(
        NAME,
        help="print the resolved configuration and where each value came from",
        usage=f"%(prog)s [-h] [--diff] [--json] [--env-file PATH] [{FLAGS_USAGE}]",
        description=(
            "Print the configuration asynctasq resolves from defaults, .env, the environment "
            "and the flags below, with the source of each value. Secrets are masked."
        ),
    )
    parser.add_argument(
        "--diff", action="store_true", help="show only the settings that differ from their defaults"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {path, value, default, source} objects",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        default=None,
        help="the .env file to read (default: .env in the current directory, if present)",
    )
    add_config_flags(parser)
    return parser


def _text(value: Any) -> str:
    return str(value)


def render_table(shown: Sequence[Row], *, total: int, diff: bool) -> str:
    """Return ``shown`` as an aligned plain-text table with a one-line summary on top.

    Args:
        shown: the rows to print.
        total: how many settings exist (for the summary of a full listing).
        diff: whether ``shown`` holds only the settings that differ from their defaults.

    Returns:
        Text ending with a newline; no colour, no trailing spaces, stable for snapshots.

    """
    changed = sum(row.changed for row in shown)
    verb = "differs" if changed == 1 else "differ"
    if diff and not shown:
        return "Every setting has its default value.\n"
    if diff:
        noun = "setting" if changed == 1 else "settings"
        summary = f"{changed} {noun} {verb} from the defaults:"
    else:
        summary = f"{total} settings, {changed} {verb} from the defaults:"
    table = [_HEADINGS, *((r.path, _text(r.value), _text(r.default), r.source) for r in shown)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_HEADINGS))]
    lines = [summary, ""]
    for line in table:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Resolve the configuration and print it; return 0.

    Raises:
        UsageError: ``--env-file`` names a file that does not exist, or a directory.
        ConfigError: the configuration is invalid (every problem listed).

    """
    env_file: str = ".env"
    if args.env_file is not None:
        env_file = args.env_file
        if Path(env_file).is_dir():
            raise UsageError(f"--env-file {env_file}: is a directory, not a file")
        if not Path(env_file).is_file():
            raise UsageError(f"--env-file {env_file}: no such file")
    resolved = resolve(env_file=env_file, flags=flag_overrides(args))
    for problem in required_problems(resolved.config, resolved.provenance):
        warning = f"{problem.render()}; commands that use the driver fail until it is set"
        print(f"asynctasq: warning: {warning}", file=sys.stderr)
    every = rows(resolved.config, resolved.provenance)
    shown = diff_rows(resolved.config, resolved.provenance) if args.diff else every
    if args.json:
        print(json.dumps([row.as_json() for row in shown], indent=2, default=str))
    else:
        print(render_table(shown, total=len(every), diff=args.diff), end="")
    return 0
