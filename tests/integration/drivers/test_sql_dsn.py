"""Passwords with ``@ # % / : space + ä $`` work when percent-encoded (FIELD-CASES C29).

For each password, a database user is created with it, the DSN carries it percent-encoded,
and ``migrate`` plus one task run through a real worker succeed; the user is dropped after.
MySQL checks the password. The shared PostgreSQL trusts local logins, so there a small
stand-in server that asks for the password in clear text records what asyncpg sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiomysql
import anyio
import asyncpg
import pytest

from asynctasq.config.resolve import resolve
from asynctasq.drivers import build_driver
from asynctasq.drivers.mysql import connect_params
from asynctasq.errors import ConfigError, DriverError
from asynctasq.handle import configured
from asynctasq.tasks import task
from asynctasq.worker import run_worker
from tests.integration.sql_servers import (
    MYSQL_DSN,
    MYSQL_HOST,
    MYSQL_PORT,
    PG_DSN,
    PG_HOST,
    PG_PORT,
    drop,
    group_settings,
    migrate,
    query,
    require_server,
)

pytestmark = pytest.mark.anyio

PASSWORDS = ["p@ss", "p#ss", "p%ss", "p/ss", "p:ss", "p ss", "p+ss", "pä$s", "p%41ss"]
"""C29's passwords, plus ``p%41ss``: decoded twice it would become ``pAss``."""


@contextlib.asynccontextmanager
async def mysql_user(password: str) -> AsyncIterator[str]:
    """Create a MySQL user with ``password`` (allowed on the test database); drop it after."""
    require_server("mysql")
    user = f"u{uuid.uuid4().hex[:10]}"
    admin = await aiomysql.connect(**connect_params(MYSQL_DSN), autocommit=True)
    try:
        async with admin.cursor() as cursor:
            await cursor.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
            await cursor.execute(f"GRANT ALL ON test.* TO `{user}`@'127.0.0.1'")
        yield user
    finally:
        async with admin.cursor() as cursor:
            await cursor.execute(f"DROP USER IF EXISTS `{user}`@'127.0.0.1'")
        admin.close()


@contextlib.asynccontextmanager
async def postgres_user(name: str) -> AsyncIterator[str]:
    """Create a PostgreSQL role that may create tables in ``public``; drop it and its tables."""
    require_server("postgres")
    admin = await asyncpg.connect(PG_DSN)
    quoted = '"' + name.replace('"', '""') + '"'
    try:
        await admin.execute(f"CREATE ROLE {quoted} LOGIN PASSWORD 'unused under trust'")
        await admin.execute(f"GRANT ALL ON SCHEMA public TO {quoted}")
        yield name
    finally:
        await admin.execute(f"DROP OWNED BY {quoted}")
        await admin.execute(f"DROP ROLE IF EXISTS {quoted}")
        await admin.close()


async def run_one_task(driver: str, settings: dict[str, Any]) -> None:
    """Dispatch one task and run it with an in-process worker (lease thread included)."""
    ran: list[str] = []

    @task
    async def hello(who: str) -> None:
        ran.append(who)

    async with configured(driver=driver, **{driver: settings}) as handle:
        await hello("dsn").on_queue("dsn").dispatch()
        with anyio.fail_after(30):
            await run_worker(
                handle, tasks=[hello], queues=["dsn"], max_tasks=1, handle_signals=False
            )
    assert ran == ["dsn"]


@pytest.mark.parametrize("password", PASSWORDS)
async def test_a_percent_encoded_mysql_password_migrates_and_runs_a_task(
    password: str, tmp_path: Path
) -> None:
    async with mysql_user(password) as user:
        dsn = f"mysql://{user}:{quote(password, safe='')}@{MYSQL_HOST}:{MYSQL_PORT}/test"
        settings = group_settings("mysql", tmp_path, dsn=dsn)
        config = resolve({"driver": "mysql", "mysql": settings}, environ={}).config
        try:
            lines = await migrate(config, "mysql")
            assert lines[0] == f"created table {settings['queue_table']}"
            await run_one_task("mysql", settings)
        finally:
            await drop("mysql", settings)


async def test_a_wrong_mysql_password_fails_without_showing_either_password(
    tmp_path: Path,
) -> None:
    async with mysql_user("right#1") as user:
        dsn = f"mysql://{user}:{quote('wrong#2', safe='')}@{MYSQL_HOST}:{MYSQL_PORT}/test"
        config = resolve({"driver": "mysql", "mysql": {"dsn": dsn}}, environ={}).config
        with pytest.raises(DriverError, match="Access denied") as raised:
            await build_driver(config).open()
    assert "wrong" not in str(raised.value)
    assert "right" not in str(raised.value)


@pytest.mark.parametrize("driver", ["postgres", "mysql"])
def test_a_raw_hash_in_the_password_asks_for_percent_encoding_and_hides_it(driver: str) -> None:
    scheme = "postgresql" if driver == "postgres" else "mysql"
    with pytest.raises(ConfigError, match="percent-encode the password") as raised:
        resolve({"driver": driver, driver: {"dsn": f"{scheme}://u:p#ss@h:1/db"}}, environ={})
    assert "p#ss" not in str(raised.value)


@pytest.mark.parametrize("user", ["asynctasq_dsn_user", "user@corp"])
async def test_a_percent_encoded_postgres_dsn_migrates_and_runs_a_task(
    user: str, tmp_path: Path
) -> None:
    name = f"{user}_{uuid.uuid4().hex[:6]}"
    async with postgres_user(name):
        for password in PASSWORDS:
            dsn = (
                f"postgresql://{quote(name, safe='')}:{quote(password, safe='')}"
                f"@{PG_HOST}:{PG_PORT}/test"
            )
            settings = group_settings("postgres", tmp_path, dsn=dsn)
            config = resolve({"driver": "postgres", "postgres": settings}, environ={}).config
            await migrate(config, "postgres")
            await run_one_task("postgres", settings)
            [(owner,)] = await query(
                "postgres",
                {"dsn": PG_DSN},
                f"SELECT tableowner FROM pg_tables WHERE tablename = '{settings['queue_table']}'",  # noqa: S608
            )
            assert owner == name  # the DSN's (decoded) user created it
            await drop("postgres", settings)


class PasswordCatcher:
    """A stand-in PostgreSQL server: asks for a clear-text password, records it, refuses."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> PasswordCatcher:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            body = await self._startup(reader, writer)
            fields = body[4:].split(b"\0")
            user = fields[fields.index(b"user") + 1].decode()
            writer.write(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            await writer.drain()
            kind, size = struct.unpack("!ci", await reader.readexactly(5))
            assert kind == b"p"
            password = (await reader.readexactly(size - 4)).rstrip(b"\0").decode()
            self.seen.append((user, password))
            error = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
            writer.write(b"E" + struct.pack("!i", 4 + len(error)) + error)
            await writer.drain()
        finally:
            writer.close()

    async def _startup(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        while True:
            (size,) = struct.unpack("!i", await reader.readexactly(4))
            body = await reader.readexactly(size - 4)
            if struct.unpack("!i", body[:4])[0] != 80877103:  # not an SSLRequest
                return body
            writer.write(b"N")
            await writer.drain()


@pytest.mark.parametrize("password", PASSWORDS)
async def test_asyncpg_receives_the_password_decoded_exactly_once(password: str) -> None:
    async with PasswordCatcher() as server:
        dsn = f"postgresql://user%40corp:{quote(password, safe='')}@127.0.0.1:{server.port}/db"
        config = resolve({"driver": "postgres", "postgres": {"dsn": dsn}}, environ={}).config
        with pytest.raises(DriverError, match="password authentication failed") as raised:
            await build_driver(config).open()
    assert server.seen[0] == ("user@corp", password)
    assert password not in str(raised.value)
    assert quote(password, safe="") not in str(raised.value)
