"""A record passed in code overrides exactly the keys its caller wrote (SPEC §2)."""

from __future__ import annotations

from pathlib import Path

import attrs

from asynctasq.config.records import Config, RedisConfig, TaskDefaultsConfig
from asynctasq.config.resolve import resolve
from asynctasq.handle import init

URL = "redis://from-dotenv.example:6380"


def test_record_form_keeps_the_dotenv_url_and_sets_db() -> None:
    Path(".env").write_text(f"ASYNCTASQ_REDIS_URL={URL}\n")
    handle = init({"redis": RedisConfig(db=5)})
    assert handle.config.redis.url == URL
    assert handle.config.redis.db == 5
    assert handle.provenance["redis.url"] == ".env line 1"
    assert handle.provenance["redis.db"] == "code"


def test_dict_form_keeps_the_dotenv_url_and_sets_db() -> None:
    Path(".env").write_text(f"ASYNCTASQ_REDIS_URL={URL}\n")
    handle = init({"redis": {"db": 5}})
    assert (handle.config.redis.url, handle.config.redis.db) == (URL, 5)


def test_record_default_values_passed_explicitly_do_override() -> None:
    resolved = resolve(
        {"task_defaults": TaskDefaultsConfig(max_attempts=3)},
        environ={"ASYNCTASQ_TASK_DEFAULTS_MAX_ATTEMPTS": "7"},
    )
    assert resolved.config.task_defaults.max_attempts == 3
    assert resolved.provenance["task_defaults.max_attempts"] == "code"


def test_a_whole_config_record_overrides_only_what_it_was_built_with() -> None:
    resolved = resolve(
        Config(driver="memory"), environ={"ASYNCTASQ_REDIS_DB": "4", "ASYNCTASQ_DRIVER": "redis"}
    )
    assert resolved.config.driver == "memory"
    assert resolved.config.redis.db == 4


def test_an_evolved_record_overrides_every_field() -> None:
    record = attrs.evolve(RedisConfig(), db=3)  # type: ignore[misc]  # record is attrs-made
    resolved = resolve({"redis": record}, environ={"ASYNCTASQ_REDIS_URL": URL})
    assert resolved.config.redis.url == "redis://localhost:6379"
    assert resolved.provenance["redis.url"] == "code"


def test_resolved_records_are_frozen_and_equal_to_hand_built_ones() -> None:
    config = resolve({"redis": {"db": 2}}, environ={}).config
    assert config.redis == RedisConfig(db=2)
    assert config == Config(redis=RedisConfig(db=2))
