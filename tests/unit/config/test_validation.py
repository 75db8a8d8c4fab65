"""Validation: every rule, every problem reported at once, values masked, unknown names warned."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asynctasq.config.records import Config
from asynctasq.config.resolve import resolve
from asynctasq.config.validate import require_driver_settings, required_problems, value_at
from asynctasq.errors import ConfigError, ConfigProblem, UnknownSettingWarning
from asynctasq.handle import configured, init


def problems_of(overrides: Any = None, env: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        resolve(overrides, environ=env or {})
    return list(caught.value.problems)


def nested(path: str, value: Any) -> dict[str, Any]:
    group, _, name = path.partition(".")
    return {group: {name: value}} if name else {group: value}


INTERVAL_RULE = (
    "must be at least 0.1 seconds (a shorter period keeps the worker busy with this loop alone)"
)

REDIS_LIMIT_RULE = (
    "must be at most 3600 seconds (one hour: a longer period leaves delayed tasks dispatched "
    "by other processes, and the tasks of workers that died, waiting that long)"
)

RABBITMQ_LIMIT_RULE = (
    "must be at most 3600 seconds (one hour: a longer period leaves delayed tasks dispatched "
    "by other processes waiting that long)"
)

HEARTBEAT_LIMIT_RULE = (
    "must be at most 3600 seconds (one hour: a dead worker stays listed three periods, and "
    "brokers refuse much longer expiries, failing every heartbeat)"
)

POSTGRES_POOL_RULE = (
    "must be at most 10000 (asyncpg sets up every slot when it makes the pool: 1000000 took "
    "20 s and 1.7 GB before the first query, 1000000000 had not started after a minute; "
    "PostgreSQL allows 100 connections by default)"
)

TABLE_RULE = (
    "must be a table name: letters, digits and underscores, optionally schema.name, "
    "at most 48 characters each"
)

RULES = [
    ("driver", "kafka", "must be one of: redis, postgres, mysql, rabbitmq, sqs, sqlite, memory"),
    ("redis.db", 16, "must be between 0 and 15"),
    ("redis.db", -1, "must be between 0 and 15"),
    ("redis.max_connections", 0, "must be at least 1"),
    ("redis.warmup_connections", -1, "must be at least 0"),
    ("redis.delayed_task_interval", 0.0, INTERVAL_RULE),
    ("redis.delayed_task_interval", 1e-6, INTERVAL_RULE),
    ("redis.delayed_task_interval", 3600.001, REDIS_LIMIT_RULE),
    ("redis.delayed_task_interval", 1e9, REDIS_LIMIT_RULE),
    ("redis.url", "", "must not be empty"),
    ("redis.url", "http://localhost:6379", "must start with one of redis://, rediss://, unix://"),
    ("postgres.dsn", "mysql://u@h/db", "must start with one of postgresql://, postgres://"),
    ("postgres.queue_table", " ", TABLE_RULE),
    ("postgres.dead_letter_table", "a;drop", TABLE_RULE),
    ("postgres.min_pool_size", 0, "must be at least 1"),
    ("postgres.max_pool_size", 10_001, POSTGRES_POOL_RULE),
    ("postgres.warmup_connections", -2, "must be at least 0"),
    ("mysql.dsn", "postgresql://u@h/db", "must start with one of mysql://"),
    ("mysql.queue_table", "", TABLE_RULE),
    ("mysql.min_pool_size", 0, "must be at least 1"),
    ("mysql.warmup_connections", -1, "must be at least 0"),
    ("rabbitmq.url", "redis://h", "must start with one of amqp://, amqps://"),
    ("rabbitmq.exchange_name", "", "must not be empty"),
    (
        "rabbitmq.exchange_name",
        "amq.direct",
        "must not start with 'amq.' (RabbitMQ reserves those names)",
    ),
    (
        "rabbitmq.exchange_name",
        "x" * 244,
        "must be at most 243 bytes (AMQP names are at most 255, and the driver names its "
        "monitoring queues '<exchange>.reader-lock')",
    ),
    ("rabbitmq.prefetch_count", 0, "must be between 1 and 65535"),
    ("rabbitmq.prefetch_count", 65_536, "must be between 1 and 65535"),
    ("rabbitmq.delayed_task_interval", -1.0, INTERVAL_RULE),
    ("rabbitmq.delayed_task_interval", 0.05, INTERVAL_RULE),
    ("events.heartbeat_interval", 1e-9, INTERVAL_RULE),
    ("events.heartbeat_interval", 0.0, INTERVAL_RULE),
    ("rabbitmq.delayed_task_interval", 86_400, RABBITMQ_LIMIT_RULE),
    ("events.heartbeat_interval", 3601, HEARTBEAT_LIMIT_RULE),
    ("events.heartbeat_interval", 1e300, HEARTBEAT_LIMIT_RULE),
    ("sqs.endpoint_url", "ftp://h", "must start with one of http://, https://"),
    ("events.redis_url", "amqp://h", "must start with one of redis://, rediss://, unix://"),
    ("events.channel", "", "must not be empty"),
    ("task_defaults.queue", "", "must not be empty"),
    ("task_defaults.max_attempts", 0, "must be at least 1"),
    ("task_defaults.retry_strategy", "linear", "must be one of: fixed, exponential"),
    ("task_defaults.retry_delay", -1, "must be between 0 and 31536000 seconds (365 days)"),
    ("task_defaults.retry_delay", 10**12, "must be between 0 and 31536000 seconds (365 days)"),
    ("process_pool.size", 0, "must be between 1 and 1024"),
    ("process_pool.size", 100_000, "must be between 1 and 1024"),
    ("process_pool.size", 99999999999999999999, "must be between 1 and 1024"),
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


def test_a_postgres_pool_too_large_to_make_is_refused_naming_value_and_source() -> None:
    # 1000000000 was accepted; asyncpg then did not finish making the pool (the first
    # dispatch hung for over a minute)
    name = "ASYNCTASQ_POSTGRES_MAX_POOL_SIZE"
    (problem,) = problems_of(env={name: "1000000000"})
    assert problem.render() == (
        f"postgres.max_pool_size = '1000000000' (from environment variable {name}): "
        f"{POSTGRES_POOL_RULE}"
    )


def test_a_postgres_pool_of_ten_thousand_is_accepted() -> None:
    config = resolve({"postgres": {"max_pool_size": 10_000}}, environ={}).config
    assert config.postgres.max_pool_size == 10_000


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


@pytest.mark.parametrize("group", ["postgres", "mysql", "sqlite"])
def test_one_table_for_queue_and_dead_letters_names_both_settings(group: str) -> None:
    env = {f"ASYNCTASQ_{group.upper()}_QUEUE_TABLE": "jobs"}
    (problem,) = problems_of({group: {"dead_letter_table": "Jobs"}}, env)
    assert problem.render() == (
        f"{group}.dead_letter_table = 'Jobs' (from code): must differ from {group}.queue_table "
        f"('jobs', from environment variable ASYNCTASQ_{group.upper()}_QUEUE_TABLE): "
        "dead letters need a table of their own"
    )


@pytest.mark.parametrize(
    ("queue", "dead", "clash"),
    [("jobs", "jobs_workers", "jobs_workers"), ("jobs", "jobs_ready", "jobs_ready"),
     ("x_queue", "x", "x_queue"), ("s.jobs", "s.jobs_completed", "s.jobs_completed")],
)  # fmt: skip
def test_a_dead_letter_table_named_like_a_companion_of_the_queue_table_is_a_problem(
    queue: str, dead: str, clash: str
) -> None:
    (problem,) = problems_of({"postgres": {"queue_table": queue, "dead_letter_table": dead}})
    assert problem.path == "postgres.dead_letter_table"
    assert problem.rule.startswith(
        f"clashes with postgres.queue_table ({queue!r}, from code): both would create {clash!r}"
    )


def test_the_same_table_name_in_two_schemas_is_fine() -> None:
    config = resolve(
        {"postgres": {"queue_table": "a.jobs", "dead_letter_table": "b.jobs"}}, environ={}
    ).config
    assert config.postgres.dead_letter_table == "b.jobs"


def test_the_seed_example_selecting_postgres_resolves() -> None:
    resolved = resolve({"driver": "postgres"}, environ={})  # seed: "init({'driver': 'postgres'})"
    assert resolved.config.driver == "postgres"
    assert resolved.config.postgres.dsn is None


def test_postgres_dsn_is_required_when_the_postgres_driver_is_built() -> None:
    resolved = resolve({"driver": "postgres"}, environ={})
    with pytest.raises(ConfigError) as caught:
        require_driver_settings(resolved.config, resolved.provenance, "postgres")
    (problem,) = caught.value.problems
    assert problem == ConfigProblem(
        path="postgres.dsn",
        value=None,
        source="default",
        rule=(
            "is required when driver is 'postgres' (set ASYNCTASQ_POSTGRES_DSN or pass it in code)"
        ),
    )
    assert "postgres.dsn = <missing> (from default)" in str(caught.value)


def test_required_settings_name_where_an_explicit_none_came_from() -> None:
    resolved = resolve({"driver": "postgres", "postgres": {"dsn": None}}, environ={})
    (problem,) = required_problems(resolved.config, resolved.provenance)
    assert (problem.path, problem.source) == ("postgres.dsn", "code")


def test_required_settings_of_another_driver_are_not_checked() -> None:
    resolved = resolve({"driver": "postgres"}, environ={})
    require_driver_settings(resolved.config, resolved.provenance, "redis")
    require_driver_settings(resolved.config, resolved.provenance, "memory")


def test_sqs_region_and_prefix_are_required_for_the_sqs_driver() -> None:
    resolved = resolve(environ={"ASYNCTASQ_DRIVER": "sqs"})
    required = "is required when driver is 'sqs' (set {} or pass it in code)"
    assert [(p.path, p.rule) for p in required_problems(resolved.config, {})] == [
        ("sqs.region_name", required.format("ASYNCTASQ_SQS_REGION")),
        ("sqs.queue_url_prefix", required.format("ASYNCTASQ_SQS_QUEUE_URL_PREFIX")),
    ]
    config = resolve(
        {"driver": "sqs", "sqs": {"region": "us-east-1", "queue_url_prefix": "https://q/1/"}},
        environ={},
    ).config
    assert config.sqs.region_name == "us-east-1"
    require_driver_settings(config, {})


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


@pytest.mark.parametrize(
    ("overrides", "path", "expected"),
    [
        ({"redis": {"db": "5"}}, "redis.db", 5),
        ({"redis": {"db": " 5 "}}, "redis.db", 5),
        ({"events": {"enable_all": "yes"}}, "events.enable_all", True),
        ({"events": {"enable_all": "OFF"}}, "events.enable_all", False),
        ({"events": {"enable_all": 1}}, "events.enable_all", True),
        ({"events": {"enable_all": 0}}, "events.enable_all", False),
        ({"redis": {"delayed_task_interval": "0.5"}}, "redis.delayed_task_interval", 0.5),
        ({"redis": {"delayed_task_interval": 2}}, "redis.delayed_task_interval", 2.0),
        ({"process_pool": {"size": "none"}}, "process_pool.size", None),
        ({"process_pool": {"size": "4"}}, "process_pool.size", 4),
    ],
)
def test_code_values_in_text_parse_like_environment_values(
    overrides: dict[str, Any], path: str, expected: object
) -> None:
    config = resolve(overrides, environ={}).config
    assert value_at(config, path) == expected
    assert type(value_at(config, path)) is type(expected)


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"events": {"enable_all": 2}}, "must be a boolean"),
        ({"events": {"enable_all": 1.0}}, "must be a boolean"),
        ({"redis": {"db": 5.0}}, "must be a whole number"),
        ({"redis": {"db": ""}}, "must be a whole number"),
        ({"redis": {"url": 5}}, "must be a string"),
    ],
)
def test_code_values_of_the_wrong_type_are_rejected(overrides: dict[str, Any], rule: str) -> None:
    (problem,) = problems_of(overrides)
    assert problem.rule.startswith(rule)


@pytest.mark.parametrize(
    ("given", "shown"),
    [("redis://x", "redis://x"), ("redis://u:s3cret@x/0", "redis://u:***@x/0"), (5, "5")],
)
def test_a_group_given_as_a_plain_value_shows_that_value_masked(given: object, shown: str) -> None:
    (problem,) = problems_of({"redis": given})
    assert problem.render() == f"redis = {shown!r} (from code): must be a RedisConfig or a mapping"


def test_overrides_that_are_not_a_mapping_show_what_was_given() -> None:
    with pytest.raises(ConfigError, match=r"<overrides> = 'postgres://u:\*\*\*@h/db'"):
        resolve("postgres://u:s3cret@h/db", environ={})  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "shown"), [("0", "0"), (" 0 ", "0"), ("-1.50", "-1.50")])
def test_a_number_breaking_a_rule_is_shown_as_written(text: str, shown: str) -> None:
    (problem,) = problems_of(env={"ASYNCTASQ_REDIS_DELAYED_TASK_INTERVAL": text})
    assert problem.render() == (
        f"redis.delayed_task_interval = {shown!r} (from environment variable "
        f"ASYNCTASQ_REDIS_DELAYED_TASK_INTERVAL): {INTERVAL_RULE}"
    )


@pytest.mark.parametrize("text", ["1e-6", "1e-9", "0.099"])
def test_a_heartbeat_interval_too_short_to_be_a_period_is_refused(text: str) -> None:
    # 1e-6 was accepted and kept a worker at ~90 % CPU, never listed as live
    (problem,) = problems_of(env={"ASYNCTASQ_EVENTS_HEARTBEAT_INTERVAL": text})
    assert problem.render() == (
        f"events.heartbeat_interval = {text!r} (from environment variable "
        f"ASYNCTASQ_EVENTS_HEARTBEAT_INTERVAL): {INTERVAL_RULE}"
    )


@pytest.mark.parametrize(
    "path",
    ["events.heartbeat_interval", "redis.delayed_task_interval", "rabbitmq.delayed_task_interval"],
)
def test_an_interval_of_a_tenth_of_a_second_is_accepted(path: str) -> None:
    group, _, name = path.partition(".")
    config = resolve(nested(path, 0.1), environ={}).config
    assert getattr(getattr(config, group), name) == 0.1


@pytest.mark.parametrize(
    ("path", "name", "rule"),
    [
        # 1e9 was accepted: delayed tasks dispatched by other processes then waited forever
        (
            "redis.delayed_task_interval",
            "ASYNCTASQ_REDIS_DELAYED_TASK_INTERVAL",
            REDIS_LIMIT_RULE,
        ),
        (
            "rabbitmq.delayed_task_interval",
            "ASYNCTASQ_RABBITMQ_DELAYED_TASK_INTERVAL",
            RABBITMQ_LIMIT_RULE,
        ),
        # 1e300 was accepted; then every heartbeat failed in Redis ("value is not an
        # integer or out of range"), and from 1e9 on in RabbitMQ (expiration too large)
        ("events.heartbeat_interval", "ASYNCTASQ_EVENTS_HEARTBEAT_INTERVAL", HEARTBEAT_LIMIT_RULE),
    ],
)
@pytest.mark.parametrize("text", ["1e9", "1e300", "3600.5"])
def test_an_interval_longer_than_an_hour_is_refused_naming_value_and_source(
    path: str, name: str, rule: str, text: str
) -> None:
    (problem,) = problems_of(env={name: text})
    assert problem.render() == f"{path} = {text!r} (from environment variable {name}): {rule}"


@pytest.mark.parametrize(
    "path",
    ["events.heartbeat_interval", "redis.delayed_task_interval", "rabbitmq.delayed_task_interval"],
)
def test_an_interval_of_an_hour_is_accepted(path: str) -> None:
    group, _, name = path.partition(".")
    config = resolve(nested(path, "3600"), environ={}).config
    assert getattr(getattr(config, group), name) == 3600.0


def test_a_code_number_breaking_a_rule_is_shown_as_given() -> None:
    (problem,) = problems_of({"rabbitmq": {"delayed_task_interval": 0}})
    assert problem.value == "0"


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity"])
def test_nan_and_infinity_must_be_finite(text: str) -> None:
    (problem,) = problems_of(env={"ASYNCTASQ_RABBITMQ_DELAYED_TASK_INTERVAL": text})
    assert (problem.value, problem.rule) == (text, "must be a finite number")


def test_a_redis_url_without_a_host_is_an_error() -> None:
    (problem,) = problems_of(env={"ASYNCTASQ_REDIS_URL": "redis://"})
    assert problem.rule == "names no host, e.g. redis://localhost"


def warnings_from(call: Callable[[], object]) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    return record


def enter_configured() -> None:
    with configured(driver="memory"):
        pass


@pytest.mark.parametrize(
    "call",
    [
        lambda: resolve(),
        lambda: init(),
        lambda: Config.get(),
        enter_configured,
    ],
    ids=["resolve", "init", "Config.get", "configured"],
)
def test_unknown_setting_warnings_point_at_the_callers_line(
    monkeypatch: pytest.MonkeyPatch, call: Callable[[], object]
) -> None:
    monkeypatch.setenv("ASYNCTASQ_REDIS_DBB", "1")
    Path(".env").write_text("not a setting line\n")
    found = warnings_from(call)
    assert [w.category for w in found] == [UnknownSettingWarning, UnknownSettingWarning]
    assert {w.filename for w in found} == {__file__}
