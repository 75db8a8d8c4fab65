"""Config flags: one per setting, raw strings handed to resolve() so they parse like env."""

from __future__ import annotations

import argparse

import pytest

from asynctasq.cli.command import Parser
from asynctasq.cli.flags import add_config_flags, flag_overrides, option_strings
from asynctasq.config.resolve import resolve
from asynctasq.config.schema import by_path, settings
from asynctasq.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    parser = Parser(prog="t")
    add_config_flags(parser)
    return parser.parse_args(list(argv))


def test_every_setting_with_a_variable_has_a_flag_and_code_only_ones_do_not() -> None:
    parser = Parser(prog="t")
    add_config_flags(parser)
    known = {opt for action in parser._actions for opt in action.option_strings}
    for spec in settings():
        if spec.env is None:
            assert spec.flag is None
        else:
            assert spec.flag in known


def test_no_flags_given_means_no_overrides() -> None:
    assert flag_overrides(parse()) == {}


def test_flag_overrides_are_nested_raw_strings_of_only_the_flags_given() -> None:
    namespace = parse("--driver", "postgres", "--redis-db", " 5 ", "--events-enable-all", "yes")
    assert flag_overrides(namespace) == {
        "driver": "postgres",
        "redis": {"db": " 5 "},
        "events": {"enable_all": "yes"},
    }


def test_flag_values_parse_like_environment_values() -> None:
    flags = flag_overrides(parse("--redis-db", " 5 ", "--events-enable-all", "ON"))
    config = resolve(flags=flags, environ={}, env_file=None).config
    assert (config.redis.db, config.events.enable_all) == (5, True)


def test_a_flag_beats_the_environment_and_names_itself_as_the_source() -> None:
    flags = flag_overrides(parse("--redis-db", "3"))
    resolved = resolve(flags=flags, environ={"ASYNCTASQ_REDIS_DB": "2"}, env_file=None)
    assert resolved.config.redis.db == 3
    assert resolved.provenance["redis.db"] == "flag --redis-db"


def test_an_empty_flag_value_means_unset() -> None:
    flags = flag_overrides(parse("--redis-db", ""))
    resolved = resolve(flags=flags, environ={"ASYNCTASQ_REDIS_DB": "2"}, env_file=None)
    assert resolved.config.redis.db == 2


def test_a_bad_flag_value_is_a_config_error_naming_the_flag_and_rule() -> None:
    flags = flag_overrides(parse("--redis-db", "99"))
    with pytest.raises(ConfigError, match=r"from flag --redis-db\): must be between 0 and 15"):
        resolve(flags=flags, environ={}, env_file=None)


def test_bool_flags_take_a_value() -> None:
    with pytest.raises(SystemExit):
        parse("--events-enable-all")


def test_the_sqs_region_answers_to_its_variable_spelling_too() -> None:
    spec = by_path()["sqs.region_name"]
    assert option_strings(spec) == ["--sqs-region-name", "--sqs-region"]
    assert flag_overrides(parse("--sqs-region", "eu-west-1")) == {
        "sqs": {"region_name": "eu-west-1"}
    }


def test_other_settings_have_exactly_one_flag() -> None:
    assert option_strings(by_path()["redis.db"]) == ["--redis-db"]


def test_abbreviated_flags_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--redis-max", "5")
    assert "unrecognized arguments: --redis-max" in capsys.readouterr().err


def test_help_shows_choices_default_and_variable() -> None:
    parser = Parser(prog="t")
    add_config_flags(parser)
    text = " ".join(parser.format_help().split())
    assert "--task-defaults-retry-strategy {fixed,exponential}" in text
    assert "Choices: fixed, exponential. Default: exponential." in text
    assert "Env: ASYNCTASQ_TASK_DEFAULTS_RETRY_STRATEGY." in text


def test_only_limits_the_flags_to_the_given_top_level_keys() -> None:
    parser = Parser(prog="t")
    add_config_flags(parser, only=("driver", "postgres"))
    known = {opt for action in parser._actions for opt in action.option_strings}
    assert {"--driver", "--postgres-dsn", "--postgres-max-pool-size"} <= known
    assert "--redis-db" not in known


def test_surrounding_whitespace_is_ignored_in_text_and_choice_flags() -> None:
    flags = flag_overrides(
        parse(
            "--driver",
            " memory ",
            "--task-defaults-queue",
            " q ",
            "--task-defaults-retry-strategy",
            "\tfixed\n",
            "--redis-url",
            " redis://h:6379/0 ",
        )
    )
    config = resolve(flags=flags, environ={}, env_file=None).config
    assert config.driver == "memory"
    assert config.task_defaults.queue == "q"
    assert config.task_defaults.retry_strategy == "fixed"
    assert config.redis.url == "redis://h:6379/0"
