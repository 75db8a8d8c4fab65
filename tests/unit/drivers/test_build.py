"""build_driver: names to drivers, lazily; clear errors for the rest. No network."""

from __future__ import annotations

import sys

import pytest

from asynctasq.config.records import Config, PostgresConfig, RedisConfig
from asynctasq.drivers import build_driver
from asynctasq.drivers.protocol import Outgoing
from asynctasq.drivers.redis import DEFAULT_MAX_MESSAGE_BYTES, RedisDriver
from asynctasq.drivers.sql import SQLDriver
from asynctasq.errors import ConfigError, MessageTooLargeError

pytestmark = pytest.mark.anyio


def test_the_driver_named_in_the_config_is_built() -> None:
    driver = build_driver(Config(driver="redis"))
    assert isinstance(driver, RedisDriver)


def test_an_explicit_name_wins_over_the_config() -> None:
    assert build_driver(Config(driver="redis"), "memory").name == "memory"


@pytest.mark.parametrize("name", ["postgres", "mysql", "sqlite"])
def test_the_sql_drivers_build_without_connecting(name: str) -> None:
    config = Config(postgres=PostgresConfig(dsn="postgresql://u@127.0.0.1:1/db"))
    driver = build_driver(config, name)
    assert isinstance(driver, SQLDriver)
    assert driver.name == name


def test_an_unknown_driver_lists_the_available_ones() -> None:
    with pytest.raises(
        ConfigError,
        match="unknown driver 'kafka'; available drivers: memory, mysql, postgres, rabbitmq, "
        "redis, sqlite, sqs",
    ):
        build_driver(Config(), "kafka")


def test_a_missing_client_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "asynctasq.drivers.redis", raising=False)
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigError, match=r"pip install 'asynctasq\[redis\]'"):
        build_driver(Config(), "redis")


def test_the_redis_driver_reads_its_group() -> None:
    config = Config(redis=RedisConfig(delayed_task_interval=0.25))
    driver = build_driver(config, "redis")
    assert driver.maintenance_interval_seconds == 0.25
    assert driver.max_message_bytes == DEFAULT_MAX_MESSAGE_BYTES


async def test_a_body_over_the_limit_is_refused_before_any_network_call() -> None:
    driver = RedisDriver(RedisConfig(url="redis://127.0.0.1:1"), max_message_bytes=10)
    with pytest.raises(MessageTooLargeError, match="11 bytes"):
        await driver.enqueue(Outgoing("q", b"x" * 11))
    with pytest.raises(MessageTooLargeError):
        await driver.enqueue_many([Outgoing("q", b"ok"), Outgoing("q", b"x" * 11)])
    await driver.close()
