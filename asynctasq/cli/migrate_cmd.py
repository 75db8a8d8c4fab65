"""``asynctasq migrate``: create the tables an SQL driver needs (PostgreSQL, MySQL, SQLite).

::

    asynctasq migrate --driver postgres --postgres-dsn postgresql://user:pass@db/app
    ASYNCTASQ_DRIVER=sqlite asynctasq migrate

Idempotent: it creates what is missing (tables, indexes, PostgreSQL's notify trigger),
says for each object whether it created it or found it, and is safe to run while workers
run (a lock keeps two migrations apart). The driver and its settings come from the flags,
the environment and ``.env`` like everywhere else; a driver that has no tables (redis,
rabbitmq, sqs, memory) is a usage error (exit 2), as is a bad setting (e.g. the same table
for queue and dead letters, or SQLite's ``:memory:``); a database that cannot be reached or
refuses a statement (a schema that does not exist, a missing privilege, a SQLite file that
cannot be created) is exit 1, with the database's first error.

Source: SPEC §5, §7 (``migrate --driver postgres|mysql|sqlite``, idempotent).
"""

from __future__ import annotations

import argparse
from typing import Any

from asynctasq.cli.command import Subparsers, UsageError
from asynctasq.cli.flags import add_config_flags, flag_overrides
from asynctasq.config.mask import mask_url
from asynctasq.config.resolve import resolve
from asynctasq.drivers import build_driver
from asynctasq.drivers.sql import SQLDriver
from asynctasq.runner import run as run_coroutine

NAME = "migrate"

SQL_DRIVERS = ("postgres", "mysql", "sqlite")


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``migrate`` parser (the driver's flags) and return it."""
    parser = subparsers.add_parser(
        NAME,
        help="create or update the tables of an SQL driver (postgres, mysql, sqlite)",
        usage=(
            "%(prog)s [-h] [--env-file PATH] [--driver {postgres,mysql,sqlite}] "
            "[--<driver>-<setting> VALUE ...]"
        ),
        description=(
            "Create the queue, dead-letter, worker and completed-task tables (and their "
            "indexes) of the selected SQL driver where they are missing. Idempotent: run it "
            "on every deploy, and after upgrading asynctasq."
        ),
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        default=".env",
        help="the .env file to read (default: .env in the current directory, if present)",
    )
    add_config_flags(parser, only=("driver", *SQL_DRIVERS))
    return parser


def target(driver: str, group: Any) -> str:
    """Return where the driver's tables live, password masked (a DSN, or a file path)."""
    where = group.path if driver == "sqlite" else mask_url(group.dsn or "")
    return f"{where} (queue table {group.queue_table}, dead-letter table {group.dead_letter_table})"


def run(args: argparse.Namespace) -> int:
    """Migrate the selected SQL driver's schema and print what was done; return 0.

    Raises:
        UsageError: the selected driver is not an SQL driver.
        ConfigError: a setting is invalid or missing (e.g. ``postgres.dsn``).
        DriverError: the database cannot be reached or refused a statement.

    """
    resolved = resolve(flags=flag_overrides(args), env_file=args.env_file)
    driver = resolved.config.driver
    if driver not in SQL_DRIVERS:
        source = resolved.provenance.get("driver", "default")
        raise UsageError(
            f"migrate needs an SQL driver (--driver postgres, mysql or sqlite); "
            f"the driver is {driver!r} (from {source})"
        )
    built = build_driver(resolved.config, provenance=resolved.provenance)
    if not isinstance(built, SQLDriver):  # pragma: no cover - the table maps SQL names here
        raise UsageError(f"driver {driver!r} has no tables to migrate")
    print(f"{driver}: migrating {target(driver, getattr(resolved.config, driver))}")
    lines = run_coroutine(built.migrate())
    for line in lines:
        print(f"{driver}: {line}")
    created = sum(line.startswith("created ") for line in lines)
    if created:
        print(f"{driver}: done; created {created} of {len(lines)} schema objects")
    else:
        print(f"{driver}: nothing to do; the schema is up to date")
    return 0
