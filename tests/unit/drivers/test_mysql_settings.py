"""MySQL DSNs decoded exactly once (C29) and lock errors retried (C34), without a server."""

from __future__ import annotations

from urllib.parse import quote

import pymysql
import pytest

from asynctasq.config.records import MySQLConfig
from asynctasq.drivers.mysql import ATTEMPTS, MySQLConnector, connect_params
from asynctasq.errors import ConfigError

pytestmark = pytest.mark.anyio

PASSWORDS = ["p@ss", "p#ss", "p%ss", "p/ss", "p:ss", "p ss", "p+ss", "pä$s", "p%41ss"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_percent_encoded_password_is_decoded_exactly_once(password: str) -> None:
    dsn = f"mysql://u%40corp:{quote(password, safe='')}@db.example:3307/app%20db"
    params = connect_params(dsn)
    assert params == {
        "host": "db.example",
        "port": 3307,
        "user": "u@corp",
        "password": password,
        "db": "app db",
    }


def test_the_socket_and_timeout_options_are_passed_on() -> None:
    params = connect_params("mysql://u@localhost/app?unix_socket=/run/m.sock&connect_timeout=2.5")
    assert (params["unix_socket"], params["connect_timeout"]) == ("/run/m.sock", 2.5)


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("mysql://u:secret@h:3306/", "must name a database"),
        ("mysql://u:secret@h/app?sslmode=on", "unknown option ?sslmode="),
        ("mysql://u:secret@h/app?connect_timeout=soon", "option ?connect_timeout= has a bad"),
    ],
)
def test_a_dsn_the_driver_cannot_use_is_a_config_error_without_the_password(
    dsn: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=r"mysql\.dsn") as raised:
        connect_params(dsn)
    assert message in str(raised.value)
    assert "secret" not in str(raised.value)


async def test_deadlocks_and_lock_wait_timeouts_are_counted_and_retried() -> None:
    connector = MySQLConnector(MySQLConfig(dsn="mysql://u@127.0.0.1:1/app"))
    for code in (1213, 1205):
        await connector.retry_pause(pymysql.err.OperationalError(code, "lock"), 1)
    assert connector.lock_retries == 2


async def test_other_errors_and_the_last_attempt_are_raised() -> None:
    connector = MySQLConnector(MySQLConfig(dsn="mysql://u@127.0.0.1:1/app"))
    duplicate = pymysql.err.IntegrityError(1062, "duplicate")
    with pytest.raises(pymysql.err.IntegrityError):
        await connector.retry_pause(duplicate, 1)
    deadlock = pymysql.err.OperationalError(1213, "Deadlock found")
    with pytest.raises(pymysql.err.OperationalError):
        await connector.retry_pause(deadlock, ATTEMPTS)
    assert connector.lock_retries == 0
