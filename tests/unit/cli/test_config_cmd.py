"""``asynctasq config``: the resolved configuration with sources, secrets masked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result
from syrupy.assertion import SnapshotAssertion

from asynctasq.cli.config_cmd import render_table
from asynctasq.config.diff import diff_rows, rows
from asynctasq.config.records import RedisConfig
from asynctasq.config.resolve import resolve
from asynctasq.config.schema import settings

Cli = Callable[..., Result]


def write_dotenv(*lines: str, name: str = ".env") -> Path:
    path = Path(name)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def set_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(f"ASYNCTASQ_{name}", value)


def test_diff_development_redis(cli: Cli, snapshot: SnapshotAssertion) -> None:
    write_dotenv(
        "ASYNCTASQ_DRIVER=redis",
        "ASYNCTASQ_REDIS_URL=redis://localhost:6379",
        "ASYNCTASQ_REDIS_DB=1",
        "ASYNCTASQ_TASK_DEFAULTS_MAX_ATTEMPTS=1",
        "ASYNCTASQ_TASK_DEFAULTS_RETRY_STRATEGY=fixed",
        "ASYNCTASQ_TASK_DEFAULTS_RETRY_DELAY=0",
        "ASYNCTASQ_EVENTS_ENABLE_EVENT_EMITTER_REDIS=true",
    )
    result = cli("config", "--diff")
    assert (result.code, result.err) == (0, "")
    assert result.out == snapshot


def production_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    write_dotenv(
        "# production database",
        "ASYNCTASQ_POSTGRES_DSN=postgresql://app:s3cr%40t@db.internal:5432/app",
        "ASYNCTASQ_POSTGRES_MIN_POOL_SIZE=5",
        "ASYNCTASQ_POSTGRES_MAX_POOL_SIZE=20",
    )
    set_env(
        monkeypatch,
        DRIVER="postgres",
        POSTGRES_MAX_POOL_SIZE="50",
        REPOSITORY_KEEP_COMPLETED_TASKS="yes",
        PROCESS_POOL_SIZE="8",
        PROCESS_POOL_MAX_TASKS_PER_CHILD="500",
    )


def test_diff_production_postgres_from_dotenv_and_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    production_postgres(monkeypatch)
    result = cli("config", "--diff")
    assert (result.code, result.err) == (0, "")
    assert "s3cr" not in result.out
    assert result.out == snapshot


def test_json_lists_path_value_default_and_source(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    production_postgres(monkeypatch)
    result = cli("config", "--diff", "--json")
    assert result.code == 0
    parsed = json.loads(result.out)
    assert parsed[0] == {
        "path": "driver",
        "value": "postgres",
        "default": "redis",
        "source": "environment variable ASYNCTASQ_DRIVER",
    }
    assert "s3cr" not in result.out
    assert result.out == snapshot


def test_json_without_diff_lists_every_setting(cli: Cli) -> None:
    result = cli("config", "--json")
    assert [item["path"] for item in json.loads(result.out)] == [s.path for s in settings()]


def test_diff_sqs_masks_the_aws_keys(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    set_env(
        monkeypatch,
        DRIVER="sqs",
        SQS_REGION="eu-west-1",
        SQS_QUEUE_URL_PREFIX="https://sqs.eu-west-1.amazonaws.com/123456789012/",
        SQS_AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
        SQS_AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        TASK_DEFAULTS_QUEUE="emails",
    )
    result = cli("config", "--diff")
    assert result.code == 0
    assert "AKIA" not in result.out
    assert "wJalr" not in result.out
    assert result.out == snapshot


def test_diff_mix_of_dotenv_environment_and_flags(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    write_dotenv(
        "ASYNCTASQ_REDIS_URL=redis://:hunter2@cache.internal:6379",
        "ASYNCTASQ_REDIS_DB=1",
        "ASYNCTASQ_TASK_DEFAULTS_QUEUE=from-dotenv",
    )
    set_env(monkeypatch, REDIS_DB="2", EVENTS_ENABLE_ALL="on")
    result = cli(
        "config", "--diff", "--redis-max-connections", "20", "--task-defaults-queue", "emails"
    )
    assert result.code == 0
    assert "hunter2" not in result.out
    assert result.out == snapshot


def test_diff_mix_of_dotenv_environment_and_code(
    monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    write_dotenv("ASYNCTASQ_REDIS_URL=redis://:hunter2@cache.internal:6379")
    set_env(monkeypatch, TASK_DEFAULTS_MAX_ATTEMPTS="5")
    resolved = resolve({"redis": RedisConfig(db=5), "task_defaults": {"retry_delay": 10}})
    shown = diff_rows(resolved.config, resolved.provenance)
    text = render_table(shown, total=len(rows(resolved.config, {})), diff=True)
    assert "hunter2" not in text
    assert text == snapshot


def test_full_listing_shows_every_setting_with_its_source(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    set_env(monkeypatch, REDIS_PASSWORD="hunter2")
    result = cli("config")
    assert result.code == 0
    assert "hunter2" not in result.out
    assert result.out == snapshot


def test_diff_with_everything_at_its_default_says_so(cli: Cli) -> None:
    result = cli("config", "--diff")
    assert (result.code, result.out) == (0, "Every setting has its default value.\n")


def test_a_value_equal_to_its_default_is_not_a_difference(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, REDIS_DB="0")
    assert cli("config", "--diff").out == "Every setting has its default value.\n"


def test_env_file_option_reads_that_file(cli: Cli) -> None:
    write_dotenv("ASYNCTASQ_REDIS_DB=4", name="prod.env")
    result = cli("config", "--diff", "--env-file", "prod.env")
    assert "redis.db  4      0        prod.env line 1" in result.out


def test_a_missing_env_file_option_is_a_usage_error(cli: Cli) -> None:
    result = cli("config", "--env-file", "nope.env")
    assert (result.code, result.out) == (2, "")
    assert result.err == "asynctasq config: error: --env-file nope.env: no such file\n"


def test_invalid_configuration_exits_2_with_every_problem(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    write_dotenv("ASYNCTASQ_POSTGRES_DSN=postgresql://app:s3cret@db/app")
    set_env(monkeypatch, REDIS_DB="20", TASK_DEFAULTS_RETRY_STRATEGY="linear")
    result = cli("config", "--driver", "redsi", "--task-defaults-max-attempts", "0")
    assert (result.code, result.out) == (2, "")
    assert "s3cret" not in result.err
    assert "Traceback" not in result.err
    assert result.err == snapshot


def test_unknown_variables_are_a_warning_not_an_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, REDIS_DBB="3")
    result = cli("config", "--diff")
    assert result.code == 0
    assert result.err.startswith("asynctasq: warning: ignoring unknown asynctasq settings:")
    assert "ASYNCTASQ_REDIS_DBB" in result.err


def test_an_env_file_option_naming_a_directory_says_so(cli: Cli, tmp_path: Path) -> None:
    result = cli("config", "--env-file", str(tmp_path))
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        f"asynctasq config: error: --env-file {tmp_path}: is a directory, not a file\n"
    )
