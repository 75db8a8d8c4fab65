"""``asynctasq publish``: write ``.env.example``, a template listing every setting.

The text comes from :func:`asynctasq.config.schema.env_example_text`; every variable is
commented out with its default, so copying the file to ``.env`` changes nothing until a
line is uncommented. An existing file is only replaced with ``--force``.

Source: seed "init()" (the ``asynctasq publish`` tip); SPEC §7.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asynctasq.cli.command import Subparsers, UsageError
from asynctasq.config.schema import env_example_text, settings
from asynctasq.errors import AsyncTasQError

NAME = "publish"

FILE_NAME = ".env.example"


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``publish`` parser and return it."""
    parser = subparsers.add_parser(
        NAME,
        help="write .env.example, a template of every setting with its default",
        description=(
            f"Write {FILE_NAME}: every ASYNCTASQ_* variable, commented out, with its help "
            "text and default. Copy it to .env and uncomment what you change."
        ),
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        default=".",
        help="directory to write .env.example into (default: the current directory)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing .env.example")
    return parser


def run(args: argparse.Namespace) -> int:
    """Write ``<output dir>/.env.example``; return 0.

    Raises:
        UsageError: the directory does not exist, or the file exists and ``--force`` is
            not given.
        AsyncTasQError: the file cannot be written (permissions, disk).

    """
    directory = Path(args.output_dir)
    if not directory.is_dir():
        message = f"--output-dir {directory}: no such directory"
        raise UsageError(message)
    target = directory / FILE_NAME
    if target.exists() and not args.force:
        message = f"{target} already exists; pass --force to overwrite it"
        raise UsageError(message)
    try:
        target.write_text(env_example_text(), encoding="utf-8", newline="\n")
    except OSError as exc:
        message = f"cannot write {target}: {exc.strerror or exc}"
        raise AsyncTasQError(message) from exc
    count = sum(1 for spec in settings() if spec.env is not None)
    print(f"Wrote {target} ({count} settings). Copy it to .env and uncomment what you change.")
    return 0
