"""Validation: every rule, every problem reported at once, values masked, unknown names warned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asynctasq.config.resolve import resolve
from asynctasq.errors import ConfigError, ConfigProblem, UnknownSettingWarning


def problems_of(overrides: Any = None, env: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        resolve(overrides, environ=env or {})
    return list(caught.value.problems)


def nested(path: str, value: Any) -> dict[str, Any]:
    group, _, name = path.partition(".")
    return {group: {name: value}} if name else {group: value}


RULES = [
    ("driver", "kafka", "must be one of: redis, postgres, mysql, rabbitmq, sqs, memory"),
    ("redis.db", 16, "must be between 0 and 15"),
    ("redis.db", -1, "must be between 0 and 15"),
    ("redis.max_connections", 0, "must be at least 1"),
    ("redis.warmup_connections", -1, "must be at least 0"),
    ("redis.delayed_task_interval", 0.0, "must be greater than 0"),
    ("redis.url", "", "must not be empty"),
    ("redis.url", "http://localhost:6379", "must start with one of redis://, rediss://, unix://"),
    ("postgres.dsn", "mysql://u@h/db", "must start with one of postgresql://, postgres://"),
    ("postgres.queue_table", " ", "must not be empty"),
    ("postgres.dead_letter_table", "", "must not be empty"),
    ("postgres.min_pool_size", 0, "must be at least 1"),
    ("postgres.warmup_connections", -2, "must be at least 0"),
    ("mysql.dsn", "postgresql://u@h/db", "must start with one of mysql://"),
    ("mysql.queue_table", "", "must not be empty"),
    ("mysql.min_pool_size", 0, "must be at least 1"),
    ("mysql.warmup_connections", -1, "must be at least 0"),
    ("rabbitmq.url", "redis://h", "must start with one of amqp://, amqps://"),
    ("rabbitmq.exchange_name", "", "must not be empty"),
    ("rabbitmq.prefetch_count", 0, "must be at least 1"),
    ("rabbitmq.delayed_task_interval", -1.0, "must be greater than 0"),
    ("sqs.endpoint_url", "ftp://h", "must start with one of http://, https://"),
    ("events.redis_url", "amqp://h", "must start with one of redis://, rediss://, unix://"),
    ("events.channel", "", "must not be empty"),
    ("task_defaults.queue", "", "must not be empty"),
    ("task_defaults.max_attempts", 0, "must be at least 1"),
    ("task_defaults.retry_strategy", "linear", "must be one of: fixed, exponential"),
    ("task_defaults.retry_delay", -1, "must be at least 0"),
    ("process_pool.size", 0, "must be at least 1"),
    ("process_pool.max_tasks_per_child", 0, "must be at least 1"),
    ("redis.db", "abc", "must be a whole number"),
    ("redis.db", None, "must be a whole number"),
    (
        "events.enable_all",
        "maybe",
        "must be a boolean: true/false, 1/0, yes/no, on/off, t/f or y/n",
    ),
    ("redis.delayed_task_interval", "soon", "must be a number"),
    ("events.channel", 5, "must be a string"),
    ("tortoise_orm", "not a dict", "must be of type dict | None"),
]


@pytest.mark.parametrize(("path", "value", "rule"), RULES)
def test_each_rule_is_one_problem_naming_path_source_and_rule(
    path: str, value: Any, rule: str
) -> None:
    (problem,) = problems_of(nested(path, value))
    assert problem.path == path
    assert problem.source == "code"
    assert problem.rule == rule


def test_max_pool_size_rule_reports_both_bounds() -> None:
    found = {(p.path, p.rule) for p in problems_of({"postgres": {"max_pool_size": 0}})}
    assert ("postgres.max_pool_size", "must be at least 1") in found
    assert (
        "postgres.min_pool_size",
        "must not exceed postgres.max_pool_size (0, from code)",
    ) in found


@pytest.mark.parametrize("group", ["postgres", "mysql"])
def test_min_pool_size_above_max_is_a_problem(group: str) -> None:
    env = {f"ASYNCTASQ_{group.upper()}_MAX_POOL_SIZE": "5"}
    (problem,) = problems_of({group: {"min_pool_size": 8}}, env)
    assert problem.path == f"{group}.min_pool_size"
    assert problem.value == "8"
    assert problem.rule == (
        f"must not exceed {group}.max_pool_size "
        f"(5, from environment variable ASYNCTASQ_{group.upper()}_MAX_POOL_SIZE)"
    )


def test_min_equal_to_max_is_fine() -> None:
    config = resolve({"mysql": {"min_pool_size": 4, "max_pool_size": 4}}, environ={}).config
    assert (config.mysql.min_pool_size, config.mysql.max_pool_size) == (4, 4)


def test_postgres_dsn_is_required_only_when_postgres_is_selected() -> None:
    assert resolve(environ={}).config.postgres.dsn is None
    (problem,) = problems_of({"driver": "postgres"})
    assert problem == ConfigProblem(
        path="postgres.dsn",
        value=None,
        source="default",
        rule=(
            "is required when driver is 'postgres' (set ASYNCTASQ_POSTGRES_DSN or pass it in code)"
        ),
    )
    assert "postgres.dsn = <missing> (from default)" in str(ConfigError([problem]))


def test_sqs_region_and_prefix_are_required_only_when_sqs_is_selected() -> None:
    found = problems_of(env={"ASYNCTASQ_DRIVER": "sqs"})
    required = "is required when driver is 'sqs' (set {} or pass it in code)"
    assert [(p.path, p.rule) for p in found] == [
        ("sqs.region_name", required.format("ASYNCTASQ_SQS_REGION")),
        ("sqs.queue_url_prefix", required.format("ASYNCTASQ_SQS_QUEUE_URL_PREFIX")),
    ]
    config = resolve(
        {"driver": "sqs", "sqs": {"region": "us-east-1", "queue_url_prefix": "https://q/1/"}},
        environ={},
    ).config
    assert config.sqs.region_name == "us-east-1"


def test_every_problem_is_reported_at_once() -> None:
    Path(".env").write_text("ASYNCTASQ_TASK_DEFAULTS_MAX_ATTEMPTS=0\n")
    env = {
        "ASYNCTASQ_REDIS_DB": "abc",
        "ASYNCTASQ_DRIVER": "kafka",
        "ASYNCTASQ_EVENTS_ENABLE_ALL": "maybe",
    }
    with pytest.raises(ConfigError) as caught:
        resolve({"redis": {"max_conections": 3}, "process_pool": {"size": 0}}, environ=env)
    rendered = {(p.path, p.source) for p in caught.value.problems}
    assert rendered == {
        ("redis.max_conections", "code"),
        ("redis.db", "environment variable ASYNCTASQ_REDIS_DB"),
        ("events.enable_all", "environment variable ASYNCTASQ_EVENTS_ENABLE_ALL"),
        ("driver", "environment variable ASYNCTASQ_DRIVER"),
        ("task_defaults.max_attempts", ".env line 1"),
        ("process_pool.size", "code"),
    }
    message = str(caught.value)
    assert message.startswith("invalid asynctasq configuration (6 problems):")
    assert (
        "redis.db = 'abc' (from environment variable ASYNCTASQ_REDIS_DB): must be a whole number"
        in message
    )
    assert "task_defaults.max_attempts = '0' (from .env line 1): must be at least 1" in message


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"redis\.db"):
        resolve({"redis": {"db": 99}}, environ={})


def test_a_value_failing_conversion_is_not_also_checked_against_rules() -> None:
    (problem,) = problems_of(env={"ASYNCTASQ_POSTGRES_MIN_POOL_SIZE": "x"})
    assert problem.rule == "must be a whole number"


def test_unknown_prefixed_environment_variable_warns_with_its_name_and_a_suggestion() -> None:
    env = {"ASYNCTASQ_REDIS_DBB": "hunter2"}
    with pytest.warns(UnknownSettingWarning) as record:
        resolve(environ=env)
    (warning,) = record
    message = str(warning.message)
    assert "ASYNCTASQ_REDIS_DBB (environment variable; did you mean ASYNCTASQ_REDIS_DB?)" in message
    assert "hunter2" not in message


def test_unknown_prefixed_dotenv_variable_warns_with_its_line() -> None:
    Path(".env").write_text("ASYNCTASQ_DRIVER=memory\nASYNCTASQ_NOT_A_THING=1\n")
    with pytest.warns(UnknownSettingWarning, match=r"ASYNCTASQ_NOT_A_THING \(\.env line 2\)"):
        config = resolve(environ={}).config
    assert config.driver == "memory"


def test_unprefixed_names_do_not_warn() -> None:
    Path(".env").write_text("DRIVER=sqs\nPORT=5432\n")
    config = resolve(environ={"REDIS_URL": "redis://x"}).config  # warnings are errors here
    assert config.driver == "redis"
