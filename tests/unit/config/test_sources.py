"""The sources: .env as python-decouple reads it, the environment, code overrides and flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from asynctasq.config.records import Config, RedisConfig, SQSConfig
from asynctasq.config.resolve import resolve
from asynctasq.config.sources import (
    Layer,
    defaults,
    dotenv,
    dotenv_line_numbers,
    environ,
    flags,
    merge,
    overrides,
)
from asynctasq.errors import UnknownSettingWarning


def write_env(text: str, name: str = ".env") -> Path:
    path = Path(name)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_cover_every_leaf_with_source_default() -> None:
    layer = defaults()
    assert layer.values["redis"]["db"] == 0
    assert layer.values["driver"] == "redis"
    assert set(layer.sources.values()) == {"default"}
    assert "sqs.region_name" in layer.sources


def test_missing_env_file_is_an_empty_layer() -> None:
    assert dotenv("does-not-exist.env") == Layer()
    assert dotenv(None) == Layer()


def test_dotenv_values_and_line_numbers() -> None:
    write_env(
        "# a comment line\n"
        "\n"
        "ASYNCTASQ_DRIVER=memory\n"
        "  ASYNCTASQ_REDIS_DB = 3  \n"
        "ASYNCTASQ_REDIS_URL='redis://quoted:6379'\n"
        'ASYNCTASQ_TASK_DEFAULTS_QUEUE="double quoted"\n'
    )
    layer = dotenv(".env")
    assert layer.values == {
        "driver": "memory",
        "redis": {"db": "3", "url": "redis://quoted:6379"},
        "task_defaults": {"queue": "double quoted"},
    }
    assert layer.sources == {
        "driver": ".env line 3",
        "redis.db": ".env line 4",
        "redis.url": ".env line 5",
        "task_defaults.queue": ".env line 6",
    }


def test_dotenv_keeps_equals_signs_and_hashes_inside_values() -> None:
    write_env("ASYNCTASQ_REDIS_PASSWORD=a=b#c\nASYNCTASQ_EVENTS_CHANNEL=chan # not a comment\n")
    layer = dotenv(".env")
    assert layer.values["redis"]["password"] == "a=b#c"
    assert layer.values["events"]["channel"] == "chan # not a comment"


def test_dotenv_repeated_key_last_line_wins_with_its_line_number() -> None:
    write_env("ASYNCTASQ_REDIS_DB=1\nASYNCTASQ_REDIS_DB=2\n")
    layer = dotenv(".env")
    assert layer.values["redis"]["db"] == "2"
    assert layer.sources["redis.db"] == ".env line 2"


def test_dotenv_source_names_the_file() -> None:
    write_env("ASYNCTASQ_REDIS_DB=1\n", name="prod.env")
    assert dotenv("prod.env").sources["redis.db"] == "prod.env line 1"


def test_dotenv_blank_values_are_unset() -> None:
    write_env("ASYNCTASQ_REDIS_DB=\nASYNCTASQ_DRIVER=   \nASYNCTASQ_EVENTS_CHANNEL=''\n")
    layer = dotenv(".env")
    assert layer.values == {}
    assert layer.sources == {}


def test_line_numbers_skip_what_decouple_skips() -> None:
    text = "# X=1\n\nnoequals\nA=1\n B = 2\n"
    assert dotenv_line_numbers(text) == {"A": 4, "B": 5}


def test_an_env_file_that_is_a_directory_is_a_problem_saying_so() -> None:
    Path(".env").mkdir()
    (problem,) = dotenv(".env").problems
    assert problem.path == "env_file"
    assert problem.rule == "is a directory, not a file"


def test_dotenv_that_is_not_utf8_is_a_problem() -> None:
    Path(".env").write_bytes(b"ASYNCTASQ_DRIVER=\xff\xfe\n")
    (problem,) = dotenv(".env").problems
    assert "UnicodeDecodeError" in problem.rule


def test_environ_reads_only_prefixed_names() -> None:
    layer = environ({"DRIVER": "sqs", "REDIS_DB": "4", "ASYNCTASQ_REDIS_DB": "2", "HOME": "/"})
    assert layer.values == {"redis": {"db": "2"}}
    assert layer.sources == {"redis.db": "environment variable ASYNCTASQ_REDIS_DB"}


def test_environ_records_unknown_prefixed_names_without_values() -> None:
    layer = environ({"ASYNCTASQ_REDIS_DBB": "secret-ish", "ASYNCTASQ_SQS_REGION_NAME": "x"})
    assert layer.values == {}
    assert set(layer.unknown) == {
        ("ASYNCTASQ_REDIS_DBB", "environment variable ASYNCTASQ_REDIS_DBB"),
        ("ASYNCTASQ_SQS_REGION_NAME", "environment variable ASYNCTASQ_SQS_REGION_NAME"),
    }


def test_environ_uses_the_sqs_region_name_from_field_metadata() -> None:
    layer = environ({"ASYNCTASQ_SQS_REGION": "eu-west-1"})
    assert layer.values == {"sqs": {"region_name": "eu-west-1"}}


def test_environ_code_only_settings_are_unknown() -> None:
    layer = environ({"ASYNCTASQ_TORTOISE_ORM": "{}"})
    assert layer.values == {}
    assert layer.unknown[0][0] == "ASYNCTASQ_TORTOISE_ORM"


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCTASQ_REDIS_DB", "6")
    assert environ().values == {"redis": {"db": "6"}}


def test_overrides_from_nested_dict() -> None:
    layer = overrides({"driver": "memory", "redis": {"db": 5}})
    assert layer.values == {"driver": "memory", "redis": {"db": 5}}
    assert layer.sources == {"driver": "code", "redis.db": "code"}


def test_overrides_from_record_set_exactly_the_explicit_keys() -> None:
    layer = overrides({"redis": RedisConfig(db=5)})
    assert layer.values == {"redis": {"db": 5}}


def test_overrides_from_config_record_set_exactly_the_explicit_keys() -> None:
    layer = overrides(Config(driver="memory", redis=RedisConfig(db=5)))
    assert layer.values == {"driver": "memory", "redis": {"db": 5}}


def test_overrides_accept_region_alias_in_dict_and_record() -> None:
    assert overrides({"sqs": {"region": "eu-west-1"}}).values == {
        "sqs": {"region_name": "eu-west-1"}
    }
    record = SQSConfig(region="eu-west-1")  # type: ignore[call-arg]  # alias, added by @record
    assert overrides({"sqs": record}).values == {"sqs": {"region_name": "eu-west-1"}}


def test_overrides_alias_and_name_together_is_a_problem() -> None:
    (problem,) = overrides({"sqs": {"region": "a", "region_name": "b"}}).problems
    assert problem.path == "sqs.region_name"
    assert "given twice" in problem.rule


@pytest.mark.parametrize(
    ("given", "path", "suggestion"),
    [
        ({"drivr": "redis"}, "drivr", "did you mean 'driver'?"),
        ({"redis": {"max_conections": 3}}, "redis.max_conections", "'redis.max_connections'"),
        ({"task_defaults": {"max_attempt": 3}}, "task_defaults.max_attempt", "max_attempts"),
        ({"reddis": {"db": 1}}, "reddis", "did you mean 'redis'?"),
    ],
)
def test_unknown_code_keys_suggest_the_nearest_valid_key(
    given: dict[str, object], path: str, suggestion: str
) -> None:
    (problem,) = overrides(given).problems
    assert problem.path == path
    assert problem.source == "code"
    assert suggestion in problem.rule


def test_unknown_code_key_without_a_near_match_lists_valid_keys() -> None:
    (problem,) = overrides({"repository": {"zzz": 1}}).problems
    assert problem.rule == "unknown setting; valid keys: keep_completed_tasks"


def test_unknown_code_key_value_is_masked_when_text() -> None:
    (problem,) = overrides({"redis": {"pasword": "hunter2"}}).problems
    assert problem.value == "***"


@pytest.mark.parametrize("group", [5, "redis://x", SQSConfig()])
def test_group_of_the_wrong_kind_is_a_problem(group: object) -> None:
    (problem,) = overrides({"redis": group}).problems
    assert problem.path == "redis"
    assert "must be a RedisConfig or a mapping" in problem.rule


def test_overrides_that_are_not_a_mapping_are_a_problem() -> None:
    (problem,) = overrides(RedisConfig(db=1)).problems  # type: ignore[arg-type]
    assert "must be a mapping or a Config" in problem.rule


def test_flags_name_their_flag_and_drop_unset() -> None:
    layer = flags({"redis": {"db": " 5 ", "url": None, "password": "  "}, "driver": "memory"})
    assert layer.values == {"redis": {"db": "5"}, "driver": "memory"}
    assert layer.sources == {"redis.db": "flag --redis-db", "driver": "flag --driver"}


def test_flag_source_for_multiword_names() -> None:
    layer = flags({"task_defaults": {"max_attempts": "2"}})
    assert layer.sources == {"task_defaults.max_attempts": "flag --task-defaults-max-attempts"}


def test_merge_later_layers_win_per_leaf() -> None:
    low = overrides({"redis": {"db": 1, "url": "redis://a"}})
    high = environ({"ASYNCTASQ_REDIS_DB": "2"})
    merged = merge(low, high)
    assert merged.values == {"redis": {"db": "2", "url": "redis://a"}}
    assert merged.sources == {
        "redis.db": "environment variable ASYNCTASQ_REDIS_DB",
        "redis.url": "code",
    }


WHITESPACE = {
    "ASYNCTASQ_DRIVER": " memory ",
    "ASYNCTASQ_TASK_DEFAULTS_QUEUE": " q ",
    "ASYNCTASQ_TASK_DEFAULTS_RETRY_STRATEGY": "\tfixed\n",
    "ASYNCTASQ_REDIS_URL": " redis://h:6379/0 ",
    "ASYNCTASQ_REDIS_PASSWORD": " pw ",
}


def check_trimmed(config: Config) -> None:
    assert config.driver == "memory"
    assert config.task_defaults.queue == "q"
    assert config.task_defaults.retry_strategy == "fixed"
    assert config.redis.url == "redis://h:6379/0"
    assert config.redis.password == "pw"


def test_surrounding_whitespace_is_ignored_for_every_environment_value() -> None:
    assert environ({"ASYNCTASQ_DRIVER": " redis "}).values == {"driver": "redis"}
    check_trimmed(resolve(environ=WHITESPACE, env_file=None).config)


def test_surrounding_whitespace_inside_dotenv_quotes_is_ignored_too() -> None:
    one_line = {name: value.replace("\n", " ") for name, value in WHITESPACE.items()}
    write_env("".join(f'{name}="{value}"\n' for name, value in one_line.items()))
    check_trimmed(resolve(environ={}).config)


def test_code_values_are_kept_exactly_as_given() -> None:
    config = resolve({"task_defaults": {"queue": " q "}}, environ={}).config
    assert config.task_defaults.queue == " q "


def test_dotenv_accepts_an_export_prefix() -> None:
    write_env("export ASYNCTASQ_REDIS_DB=5\nexport\tASYNCTASQ_DRIVER = memory\n")
    layer = dotenv(".env")
    assert layer.values == {"redis": {"db": "5"}, "driver": "memory"}
    assert layer.sources == {"redis.db": ".env line 1", "driver": ".env line 2"}
    assert layer.malformed == ()


def test_dotenv_export_and_plain_lines_of_one_key_last_line_wins() -> None:
    write_env("export ASYNCTASQ_REDIS_DB=1\nASYNCTASQ_REDIS_DB=2\nexport ASYNCTASQ_REDIS_DB=3\n")
    layer = dotenv(".env")
    assert (layer.values, layer.sources) == ({"redis": {"db": "3"}}, {"redis.db": ".env line 3"})


def test_dotenv_strips_a_utf8_byte_order_mark() -> None:
    Path(".env").write_bytes("ASYNCTASQ_DRIVER=memory\nASYNCTASQ_REDIS_DB=4\n".encode("utf-8-sig"))
    layer = dotenv(".env")
    assert layer.values == {"driver": "memory", "redis": {"db": "4"}}
    assert layer.sources["driver"] == ".env line 1"
    assert layer.unknown == ()


def test_dotenv_lines_that_are_not_key_value_are_listed() -> None:
    write_env(
        "# fine\n\nASYNCTASQ_DRIVER=memory\nASYNCTASQ_REDIS_DB 5\n=oops\nnot a key=1\nOTHER=1\n"
    )
    layer = dotenv(".env")
    assert layer.values == {"driver": "memory"}
    assert layer.malformed == (".env line 4", ".env line 5", ".env line 6")


def test_malformed_dotenv_lines_warn_naming_file_and_line_without_their_text() -> None:
    write_env("ASYNCTASQ_REDIS_PASSWORD hunter2\nASYNCTASQ_DRIVER=memory\n", name="prod.env")
    with pytest.warns(UnknownSettingWarning) as record:
        config = resolve(environ={}, env_file="prod.env").config
    (warning,) = record
    assert str(warning.message) == (
        "ignoring lines that are not KEY=value: prod.env line 1 "
        "(write KEY=value, optionally after 'export '; comments start with '#')"
    )
    assert "hunter2" not in str(warning.message)
    assert config.driver == "memory"
