"""Secrets never appear in repr, str or ConfigError text."""

from __future__ import annotations

import pytest

from asynctasq.config.mask import mask_urls_in_text
from asynctasq.config.records import (
    Config,
    PostgresConfig,
    RedisConfig,
    SQSConfig,
    TaskDefaultsConfig,
)
from asynctasq.config.resolve import resolve
from asynctasq.errors import ConfigError
from asynctasq.handle import init

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


TORTOISE = {
    "connections": {
        "default": "postgres://user:s3cretpw@localhost/db",
        "replica": {
            "engine": "tortoise.backends.asyncpg",
            "credentials": {"host": "db", "user": "app", "password": "s3cretpw", "port": 5432},
        },
    },
    "apps": {"models": {"models": ["app.models"], "default_connection": "default"}},
}


def test_tortoise_config_passwords_never_appear_in_the_config_repr() -> None:
    init(tortoise_config=TORTOISE, env_file=None)
    for shown in (repr(Config.get()), str(Config.get())):
        assert "s3cretpw" not in shown
        assert "postgres://user:***@localhost/db" in shown
        assert "'password': '***'" in shown
        assert "'host': 'db'" in shown  # the rest stays readable


def test_a_url_password_in_any_free_form_value_is_masked_in_the_repr() -> None:
    config = Config(task_defaults=TaskDefaultsConfig(queue="redis://u:s3cretpw@h/0"))
    assert "s3cretpw" not in repr(config)
    assert "queue='redis://u:***@h/0'" in repr(config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "{'db_url': 'postgres://user:s3cretpw@localhost/db', 'x': 1}",
            "{'db_url': 'postgres://user:***@localhost/db', 'x': 1}",
        ),
        ("Engine(postgresql://u:s3cretpw@h/db)", "Engine(postgresql://u:***@h/db)"),
        (
            "see amqp://a:s3cretpw@mq/ and redis://h:6379/0",
            "see amqp://a:***@mq/ and redis://h:6379/0",
        ),
        ("['postgres://u:p@s,s@h/db', 'x']", "['postgres://u:***@h/db', 'x']"),
        (
            '{"url":"mysql://u:s3cretpw@h/d","pwd":"s3cretpw"}',
            '{"url":"mysql://u:***@h/d","pwd":"***"}',
        ),
        ("host=db password=s3cretpw dbname=app", "host=db password=*** dbname=app"),
        ("RedisConfig(password=None, db=1)", "RedisConfig(password=None, db=1)"),
        ("{'api_token': 12345, 'db_password': None}", "{'api_token': ***, 'db_password': None}"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("http://h/q?password=s3cretpw&x=1", "http://h/q?password=***&x=1"),
    ],
)
def test_mask_urls_in_text_masks_passwords_anywhere(text: str, expected: str) -> None:
    assert mask_urls_in_text(text) == expected


def test_a_string_given_for_tortoise_orm_is_masked_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({"tortoise_orm": "postgres://u:12345678@h/db"}, environ={})
    (problem,) = caught.value.problems
    assert problem.value == "postgres://u:***@h/db"
    assert problem.rule == "must be of type dict | None"
