"""``asynctasq migrate``: the SQL drivers' tables, idempotently; usage errors exit 2.

SQLite needs no server, so its migration runs here for real, in the test's directory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result
from syrupy.assertion import SnapshotAssertion

Cli = Callable[..., Result]


def test_migrate_help(cli: Cli, snapshot: SnapshotAssertion) -> None:
    result = cli("migrate", "--help")
    assert result.code == 0
    assert result.out == snapshot
    assert "--redis-url" not in result.out  # only the SQL drivers' flags


def test_sqlite_tables_are_created_once_and_then_found(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    first = cli("migrate", "--driver", "sqlite", "--sqlite-path", str(path))
    assert first.code == 0, first.err
    assert first.out.splitlines() == [
        f"sqlite: migrating {path} (queue table task_queue, dead-letter table dead_letter_queue)",
        "sqlite: created table task_queue",
        "sqlite: created index task_queue_ready",
        "sqlite: created index task_queue_leased",
        "sqlite: created table dead_letter_queue",
        "sqlite: created index dead_letter_queue_queue",
        "sqlite: created table task_queue_workers",
        "sqlite: created table task_queue_completed",
        "sqlite: created index task_queue_completed_q",
        "sqlite: done; created 8 of 8 schema objects",
    ]
    again = cli("migrate", "--driver", "sqlite", "--sqlite-path", str(path))
    assert again.code == 0
    assert "sqlite: table task_queue already exists" in again.out
    assert again.out.splitlines()[-1] == "sqlite: nothing to do; the schema is up to date"
    with sqlite3.connect(path) as connection:
        [(mode,)] = connection.execute("PRAGMA journal_mode").fetchall()
    assert mode == "wal"


def test_table_names_come_from_the_environment_like_every_setting(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCTASQ_DRIVER", "sqlite")
    monkeypatch.setenv("ASYNCTASQ_SQLITE_PATH", str(tmp_path / "q.sqlite3"))
    monkeypatch.setenv("ASYNCTASQ_SQLITE_QUEUE_TABLE", "jobs")
    result = cli("migrate")
    assert result.code == 0, result.err
    assert "sqlite: created table jobs" in result.out


def test_a_driver_without_tables_is_a_usage_error(cli: Cli) -> None:
    result = cli("migrate")
    assert result.code == 2
    assert result.err == (
        "asynctasq migrate: error: migrate needs an SQL driver (--driver postgres, mysql or "
        "sqlite); the driver is 'redis' (from default)\n"
    )


def test_a_missing_dsn_is_a_config_error(cli: Cli) -> None:
    result = cli("migrate", "--driver", "postgres")
    assert result.code == 2
    assert "postgres.dsn = <missing>" in result.err


def test_a_raw_special_character_in_the_password_says_to_percent_encode_it(cli: Cli) -> None:
    result = cli("migrate", "--driver", "mysql", "--mysql-dsn", "mysql://u:p#ss@127.0.0.1/db")
    assert result.code == 2
    assert "percent-encode the password" in result.err
    assert "p#ss" not in result.err


def test_a_bad_table_name_is_a_config_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("migrate", "--driver", "sqlite", "--sqlite-queue-table", "jobs; drop")
    assert result.code == 2
    assert "sqlite.queue_table = 'jobs; drop' (from flag --sqlite-queue-table)" in result.err
    assert not list(tmp_path.iterdir())
