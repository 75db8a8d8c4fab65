"""Secrets never appear in repr, str or ConfigError text."""

from __future__ import annotations

import pytest

from asynctasq.config.records import Config, PostgresConfig, RedisConfig, SQSConfig
from asynctasq.config.resolve import resolve
from asynctasq.errors import ConfigError

SECRET = "Sup3rS3cret"


def test_reprs_mask_passwords_keys_and_passwords_in_urls() -> None:
    config = resolve(
        {
            "redis": {"password": SECRET, "url": f"redis://:{SECRET}@h:6379/0"},
            "sqs": {"aws_access_key_id": SECRET, "aws_secret_access_key": SECRET},
            "postgres": {"dsn": f"postgresql://app:{SECRET}@db/app"},
            "mysql": {"dsn": f"mysql://app:{SECRET}@db/app"},
            "rabbitmq": {"url": f"amqp://app:{SECRET}@mq/"},
            "events": {"redis_url": f"redis://:{SECRET}@events:6379"},
        },
        environ={},
    ).config
    for shown in (repr(config), str(config), repr(config.redis), str(config.sqs)):
        assert SECRET not in shown
    assert "password=***" in repr(config.redis)


@pytest.mark.parametrize(
    "overrides",
    [
        {"redis": {"password": 12345678}},
        {"sqs": {"aws_secret_access_key": 12345678}},
        {"redis": {"url": "redis://:12345678@h/abc"}},
        {"postgres": {"dsn": "mysql://u:12345678@h/db"}},
        {"mysql": {"dsn": "mysql://u:12345678#@h/db"}},
        {"redis": {"paswod": "12345678"}},
        {"tortoise_orm": {"db_url": "postgres://u:12345678@h/db", 1: 2}},
    ],
)
def test_config_errors_never_show_secrets(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(overrides, environ={})
    assert "12345678" not in str(caught.value)
    assert "12345678" not in repr(caught.value.problems)


def test_secret_from_environment_is_masked_in_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(environ={"ASYNCTASQ_REDIS_URL": f"redis://:{SECRET}@h/1/2"})
    assert SECRET not in str(caught.value)


def test_hand_built_records_mask_too() -> None:
    assert SECRET not in repr(PostgresConfig(dsn=f"postgresql://u:{SECRET}@h/db"))
    assert SECRET not in repr(SQSConfig(aws_secret_access_key=SECRET))
    assert SECRET not in repr(Config(redis=RedisConfig(password=SECRET)))


def test_password_after_a_user_name_with_a_raw_at_sign_is_masked_in_repr() -> None:
    shown = repr(PostgresConfig(dsn=f"postgresql://me@tenant:{SECRET}@h/db"))
    assert SECRET not in shown
    assert "postgresql://me@tenant:***@h/db" in shown
