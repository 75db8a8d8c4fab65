"""config.diff: the rows `asynctasq config` prints, secrets masked."""

from __future__ import annotations

from asynctasq.config.diff import Row, diff_rows, rows, shown
from asynctasq.config.records import Config, PostgresConfig, RedisConfig, SQSConfig
from asynctasq.config.schema import by_path, settings


class FakeEngine:
    def __repr__(self) -> str:
        return "Engine(postgresql+asyncpg://app:hunter2@db/app)"


def test_rows_cover_every_setting_in_schema_order_with_default_as_source() -> None:
    found = rows(Config(), {})
    assert [row.path for row in found] == [spec.path for spec in settings()]
    assert {row.source for row in found} == {"default"}
    assert not any(row.changed for row in found)


def test_diff_rows_are_the_values_that_differ_with_their_sources() -> None:
    config = Config(
        driver="postgres", postgres=PostgresConfig(dsn="postgresql://app:s3cret@db/app")
    )
    provenance = {"driver": "environment variable ASYNCTASQ_DRIVER", "postgres.dsn": ".env line 1"}
    assert diff_rows(config, provenance) == [
        Row("driver", "postgres", "redis", "environment variable ASYNCTASQ_DRIVER", True),
        Row("postgres.dsn", "postgresql://app:***@db/app", None, ".env line 1", True),
    ]


def test_a_value_set_explicitly_to_its_default_is_not_a_difference() -> None:
    config = Config(redis=RedisConfig(db=0))
    assert diff_rows(config, {"redis.db": "code"}) == []


def test_secret_fields_show_three_stars_when_set_and_none_when_unset() -> None:
    config = Config(sqs=SQSConfig(aws_secret_access_key="wJalrXUtnFEMI"))
    by = {row.path: row for row in rows(config, {})}
    assert by["sqs.aws_secret_access_key"].value == "***"
    assert by["sqs.aws_access_key_id"].value is None


def test_url_fields_hide_only_the_password() -> None:
    assert (
        shown(by_path()["redis.url"], "redis://:p%40ss@cache:6379/0") == "redis://:***@cache:6379/0"
    )


def test_code_only_values_have_embedded_url_passwords_masked() -> None:
    tortoise = {"connections": {"default": "postgres://app:hunter2@db/app"}, "apps": ["m"]}
    assert shown(by_path()["tortoise_orm"], tortoise) == {
        "connections": {"default": "postgres://app:***@db/app"},
        "apps": ["m"],
    }
    assert shown(by_path()["sqlalchemy_engine"], FakeEngine()) == (
        "Engine(postgresql+asyncpg://app:***@db/app)"
    )


def test_as_json_has_path_value_default_and_source() -> None:
    row = Row("redis.db", 5, 0, "code", True)
    assert row.as_json() == {"path": "redis.db", "value": 5, "default": 0, "source": "code"}


def test_code_only_mappings_mask_password_keys_and_urls_inside_text() -> None:
    tortoise = {
        "connections": {
            "default": {"credentials": {"user": "app", "password": "hunter2", "db_pwd": None}},
            "dsn": "host=db password=hunter2",
        }
    }
    assert shown(by_path()["tortoise_orm"], tortoise) == {
        "connections": {
            "default": {"credentials": {"user": "app", "password": "***", "db_pwd": None}},
            "dsn": "host=db password=***",
        }
    }
