"""``python -m asynctasq`` as a user runs it: exit codes and messages (FIELD-CASES C37).

These few run a subprocess (10 s timeout each) to check the real entry point: the exit
status, that stderr names the flag or variable, and that no traceback is printed. The full
matrix of bad values runs in-process below.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO_ROOT, Result, run_module

Cli = Callable[..., Result]


def test_done_when_env_driver_and_dotenv_dsn_show_with_sources_and_no_password(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text(
        "ASYNCTASQ_POSTGRES_DSN=postgresql://app:s3cret@db/app\n", encoding="utf-8"
    )
    result = run_module("config", "--diff", env={"ASYNCTASQ_DRIVER": "postgres"}, cwd=tmp_path)
    assert (result.code, result.err) == (0, "")
    lines = result.out.splitlines()
    assert any(
        line.split()
        == ["driver", "postgres", "redis", "environment", "variable", "ASYNCTASQ_DRIVER"]
        for line in lines
    )
    assert any(
        line.split() == ["postgres.dsn", "postgresql://app:***@db/app", "None", ".env", "line", "1"]
        for line in lines
    )
    assert "s3cret" not in result.out + result.err


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (("--redis-db", "99"), {}, "flag --redis-db"),
        (("--driver", "redsi"), {}, "flag --driver"),
        ((), {"ASYNCTASQ_REDIS_DB": "-1"}, "environment variable ASYNCTASQ_REDIS_DB"),
    ],
)
def test_bad_config_exits_2_naming_the_source_without_traceback(
    tmp_path: Path, argv: tuple[str, ...], env: dict[str, str], named: str
) -> None:
    result = run_module("config", *argv, env=env, cwd=tmp_path)
    assert (result.code, result.out) == (2, "")
    assert named in result.err
    assert "Traceback" not in result.err


def test_publish_refusal_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("mine\n", encoding="utf-8")
    result = run_module("publish", cwd=tmp_path)
    assert result.code == 2
    assert "--force" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("flag", "value", "rule"),
    [
        ("--redis-db", "99", "must be between 0 and 15"),
        ("--redis-db", "-1", "must be between 0 and 15"),
        ("--redis-db", "abc", "--redis-db"),
        ("--redis-db", "1.5", "--redis-db"),
        (
            "--driver",
            "redsi",
            "must be one of: redis, postgres, mysql, rabbitmq, sqs, sqlite, memory",
        ),
        ("--task-defaults-max-attempts", "0", "must be at least 1"),
        ("--task-defaults-retry-delay", "-5", "must be between 0 and 31536000 seconds (365 days)"),
        ("--redis-delayed-task-interval", "0", "must be at least 0.1 seconds"),
        ("--events-heartbeat-interval", "1e-6", "must be at least 0.1 seconds"),
        ("--redis-delayed-task-interval", "1e9", "must be at most 3600 seconds (one hour"),
        ("--rabbitmq-delayed-task-interval", "1e300", "must be at most 3600 seconds (one hour"),
        ("--events-heartbeat-interval", "1e300", "must be at most 3600 seconds (one hour"),
        ("--process-pool-size", "0", "must be between 1 and 1024"),
        ("--process-pool-size", "99999999999999999999", "must be between 1 and 1024"),
        ("--events-enable-all", "maybe", "must be a boolean"),
    ],
)
def test_bad_flag_values_exit_2_naming_the_flag(cli: Cli, flag: str, value: str, rule: str) -> None:
    result = cli("config", flag, value)
    assert (result.code, result.out) == (2, "")
    assert f"(from flag {flag})" in result.err
    assert rule in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ASYNCTASQ_REDIS_DB", "99"),
        ("ASYNCTASQ_REDIS_DB", "abc"),
        ("ASYNCTASQ_DRIVER", "redsi"),
        ("ASYNCTASQ_TASK_DEFAULTS_MAX_ATTEMPTS", "0"),
    ],
)
def test_bad_environment_values_exit_2_naming_the_variable(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = cli("config")
    assert result.code == 2
    assert f"(from environment variable {variable})" in result.err


def test_a_required_dsn_missing_for_the_selected_driver_is_a_warning_in_config(cli: Cli) -> None:
    result = cli("config", "--driver", "postgres", "--diff")
    assert result.code == 0
    assert "driver   postgres  redis    flag --driver" in result.out
    assert result.err == (
        "asynctasq: warning: postgres.dsn = <missing> (from default): is required when driver "
        "is 'postgres' (set ASYNCTASQ_POSTGRES_DSN or pass it in code); commands that use the "
        "driver fail until it is set\n"
    )


def test_config_without_missing_required_settings_prints_no_warning(cli: Cli) -> None:
    result = cli("config", "--driver", "postgres", "--postgres-dsn", "postgresql://h/db")
    assert (result.code, result.err) == (0, "")


def test_a_closed_stdout_stops_quietly_without_a_traceback(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited: every write fails
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "asynctasq", "config", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=10,
            env=env,
            cwd=tmp_path,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")
