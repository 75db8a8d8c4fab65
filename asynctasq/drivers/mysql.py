"""The MySQL driver: aiomysql (MySQL >= 8.0.1, MariaDB >= 10.6) under the shared SQL logic.

Connection glue only; the rules live in :mod:`asynctasq.drivers.sql` and
``queries/mysql.sql``. Sessions run in UTC at READ COMMITTED (fewer gap locks, so fewer
deadlocks). A claim is a short transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` in
``(available_at, id)`` order, then an ``UPDATE`` of the picked ids. A statement or
transaction that fails with a deadlock (1213) or a lock-wait timeout (1205) is rolled back
and run again, up to :data:`ATTEMPTS` times with jittered back-off; the retries are
counted in :attr:`MySQLConnector.lock_retries` and logged (FIELD-CASES C34). There is no
notification channel: idle consumers poll with an adaptive back-off.

Settings (group ``mysql``): ``dsn`` is ``mysql://user:password@host:port/database``,
user, password and database percent-decoded exactly once (C29), with optional
``?unix_socket=PATH&connect_timeout=SECONDS``; the pool holds ``min_pool_size`` to
``max_pool_size`` connections (a call waits for a free one, C35); ``open`` connects
``warmup_connections`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import aiomysql
import pymysql  # type: ignore[import-untyped]
from pymysql.converters import escape_bytes  # type: ignore[import-untyped]

from asynctasq.config.mask import scrub
from asynctasq.config.records import Config, MySQLConfig
from asynctasq.drivers.queries import Query, load
from asynctasq.drivers.sql import SQLDriver
from asynctasq.drivers.sql_connector import (
    Params,
    Row,
    Session,
    identifiers,
    labels,
    migrate_hint,
)
from asynctasq.drivers.sql_wakeup import Wakeup
from asynctasq.errors import ConfigError, DriverError

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOCK_ERRORS = (1213, 1205)
"""ER_LOCK_DEADLOCK and ER_LOCK_WAIT_TIMEOUT: the transaction is rolled back and rerun."""

ATTEMPTS = 10
"""How many times a statement or transaction runs before a lock error is raised."""

BACKOFF_SECONDS = 0.005
"""The base of the jittered exponential pause between those runs."""

LOST_CONNECTION = (2006, 2013, 2055)
"""Client errors after which a connection is dropped instead of returned to the pool."""

LOST_ATTEMPTS = 3
"""How many times a call runs when its pooled connection turns out to be dead."""

DEFAULT_PACKET = 16 * 1024 * 1024
"""MariaDB's default ``max_allowed_packet`` (MySQL 8: 64 MiB); read from the server at open."""

_SCHEMA_ERRORS = (1146, 1054)  # no such table, unknown column
_NO_DATABASE = 1049  # unknown database: the database of a db.table name is missing
_DSN_OPTIONS = {"unix_socket": str, "connect_timeout": float}


def connect_params(dsn: str) -> dict[str, Any]:
    """Return aiomysql's connection keywords for ``dsn``, each part decoded once.

    Raises:
        ConfigError: the DSN names no database or carries an unknown ``?option``.

    Source: FIELD-CASES C29 (percent-encoded user, password and database decoded once).
    """
    parts = urlsplit(dsn)
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError("mysql.dsn must name a database, e.g. mysql://user:pass@host:3306/db")
    params: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 3306,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "db": database,
    }
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        convert = _DSN_OPTIONS.get(key)
        if convert is None:
            known = ", ".join(sorted(_DSN_OPTIONS))
            raise ConfigError(f"mysql.dsn: unknown option ?{key}=; known options: {known}")
        try:
            params[key] = convert(values[-1])
        except ValueError:
            raise ConfigError(f"mysql.dsn: option ?{key}= has a bad value") from None
    return params


def client_params(params: dict[str, Any]) -> dict[str, Any]:
    """Return ``params`` as aiomysql needs them: the password so that it sends UTF-8.

    aiomysql encodes the password as Latin-1 before hashing it, while the server hashed the
    UTF-8 bytes of a password set over a ``utf8mb4`` connection; passing the UTF-8 bytes
    spelled as Latin-1 text makes a non-ASCII password (``pä$s``) match.
    """
    password = str(params.get("password", ""))
    return {**params, "password": password.encode("utf-8").decode("latin-1")}


def _literal(value: Any, connection: Any) -> str:
    """Return ``value`` as an SQL literal: bytes as hex, sequences as ``(a, b)`` lists.

    Done here rather than by aiomysql, whose bytes escaping fails with PyMySQL >= 1.1.
    """
    if isinstance(value, bytes):
        return str(escape_bytes(value))
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_literal(item, connection) for item in value) + ")"
    return str(connection.escape(value))


def _code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _server_version(text: str) -> tuple[str, tuple[int, ...]]:
    kind = "MariaDB" if "mariadb" in text.lower() else "MySQL"
    numbers = tuple(int(part) for part in text.split("-")[0].split(".")[:3] if part.isdigit())
    return kind, numbers


class MySQLSession:
    """Named queries on one pooled connection; ``in_transaction`` says who commits."""

    def __init__(self, connector: MySQLConnector, connection: Any, *, in_transaction: bool):
        self._connector = connector
        self._connection = connection
        self._in_transaction = in_transaction

    def _query(self, name: str) -> Query:
        return self._connector.queries[name]

    async def _run(self, sql: str, params: Params) -> tuple[int, list[Row]]:
        text = sql % {key: _literal(value, self._connection) for key, value in params.items()}
        async with self._connection.cursor() as cursor:
            await cursor.execute(text)
            return cursor.rowcount, list(await cursor.fetchall())

    async def execute(self, name: str, params: Params) -> int:
        """Run one statement; return the rows it changed."""
        return (await self._run(self._query(name).sql, params))[0]

    async def execute_many(self, name: str, rows: Sequence[Params]) -> int:
        """Run the statement once per chunk of rows, its ``[[...]]`` fragment repeated.

        As few statements as ``max_allowed_packet`` allows, in one transaction.
        Returns the rows changed.
        """
        query = self._query(name)
        chunks = self._connector.chunks(rows)
        if len(chunks) > 1 and not self._in_transaction:
            return await self._connector.transaction_on(
                self._connection, lambda s: s.execute_many(name, rows)
            )
        changed = 0
        for chunk in chunks:
            sql, values = query.expand(chunk)
            changed += (await self._run(sql, values))[0]
        return changed

    async def fetch(self, name: str, params: Params) -> list[Row]:
        """Run one query; return its rows."""
        return (await self._run(self._query(name).sql, params))[1]

    async def claim(self, name: str, params: Params) -> list[Row]:
        """Lock rows with ``<name>_select`` (SKIP LOCKED), update them with ``<name>_update``."""
        if not self._in_transaction:
            return await self._connector.transaction_on(
                self._connection, lambda s: s.claim(name, params)
            )
        rows = await self.fetch(f"{name}_select", params)
        if rows:
            ids = tuple(row[0] for row in rows)
            await self.execute(f"{name}_update", {**params, "ids": ids})
        return rows


class MySQLConnector:
    """The MySQL side of :class:`~asynctasq.drivers.sql.SQLDriver`.

    Args:
        config: the ``mysql`` group.

    Raises:
        ConfigError: the DSN names no database or has an unknown option.

    """

    name = "mysql"
    failures: tuple[type[BaseException], ...] = (pymysql.err.Error, OSError, TimeoutError)

    def __init__(self, config: MySQLConfig) -> None:
        self._config = config
        self._params = connect_params(config.dsn)
        raw = urlsplit(config.dsn).password or ""
        self._secrets = [raw, self._params["password"]]
        self.pool_size: int | None = config.max_pool_size
        self.max_message_bytes: int | None = DEFAULT_PACKET // 2 - 64 * 1024
        self._packet = DEFAULT_PACKET
        queue, dead = config.queue_table, config.dead_letter_table
        self.queries = load("mysql", "pyformat", identifiers(queue, dead, quote="`"))
        self.migration_steps = tuple(name for name in self.queries if name.startswith("migrate_"))
        shown = labels(queue, dead)
        self.expected_objects: tuple[str, ...] = tuple(
            f"table {shown[key]}"
            for key in ("queue_table", "dead_letter_table", "workers_table", "completed_table")
        )
        self.lock_retries = 0
        """Statements and transactions rerun after a deadlock or lock-wait timeout."""
        self._pool: Any = None

    async def _probe(self) -> str:
        """Check the server version and read ``max_allowed_packet``.

        Returns:
            The name of this server's transaction isolation variable.

        """
        connection = await aiomysql.connect(**client_params(self._params), autocommit=True)
        try:
            async with connection.cursor() as cursor:
                await cursor.execute("SELECT VERSION(), @@max_allowed_packet")
                version_text, packet = await cursor.fetchone()
        finally:
            connection.close()
        kind, version = _server_version(str(version_text))
        needed = (10, 6) if kind == "MariaDB" else (8, 0, 1)
        if version < needed:
            wanted = ".".join(map(str, needed))
            raise DriverError(
                self.name,
                "open",
                f"{kind} {version_text} has no SKIP LOCKED; {kind} {wanted} or newer is needed",
            )
        self._packet = int(packet)
        self.max_message_bytes = self._packet // 2 - 64 * 1024  # a blob may escape to 2x
        return "tx_isolation" if kind == "MariaDB" else "transaction_isolation"

    async def open(self, *, create: bool = False) -> None:
        """Check the server, then create the pool (one connection for a migration).

        Raises:
            DriverError: the server has no ``SKIP LOCKED`` (MySQL < 8.0.1, MariaDB < 10.6).
            pymysql.err.Error, OSError: it cannot be reached or refused the login.

        """
        if self._pool is not None:
            return
        isolation = await self._probe()
        low, high = (1, 1) if create else (self._config.min_pool_size, self._config.max_pool_size)
        pool = await aiomysql.create_pool(
            minsize=low,
            maxsize=high,
            autocommit=True,
            charset="utf8mb4",
            init_command=(
                f"SET time_zone = '+00:00', SESSION {isolation} = 'READ-COMMITTED', "
                "SESSION sql_notes = 0"
            ),
            **client_params(self._params),
        )
        self._pool = pool
        if not create:
            count = min(self._config.warmup_connections, high)
            async with contextlib.AsyncExitStack() as stack:
                await asyncio.gather(
                    *(stack.enter_async_context(pool.acquire()) for _ in range(count))
                )

    async def close(self) -> None:
        """Close every pooled connection (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            await pool.wait_closed()

    def chunks(self, rows: Sequence[Params]) -> list[Sequence[Params]]:
        """Split ``rows`` so each statement stays within ``max_allowed_packet``."""
        budget = self._packet - 64 * 1024
        found: list[Sequence[Params]] = []
        start, size = 0, 0
        for index, row in enumerate(rows):
            weight = 1024 + sum(2 * len(v) for v in row.values() if isinstance(v, bytes))
            if index > start and size + weight > budget:
                found.append(rows[start:index])
                start, size = index, 0
            size += weight
        found.append(rows[start:])
        return found

    async def retry_pause(self, exc: BaseException, attempt: int) -> None:
        """Pause before running again after ``exc``, or raise it if it is not worth a rerun.

        Lock errors run again up to :data:`ATTEMPTS` times; a lost connection (the server
        closed a pooled connection) up to :data:`LOST_ATTEMPTS` times, on a new one. A
        statement may have run before its connection was lost: an enqueue may then be
        stored twice (at least once), a claim's rows come back after their visibility
        timeout.
        """
        if _code(exc) in LOST_CONNECTION and attempt < LOST_ATTEMPTS:
            await asyncio.sleep(BACKOFF_SECONDS * 10 * 2 ** (attempt - 1))
            return
        if _code(exc) not in LOCK_ERRORS or attempt >= ATTEMPTS:
            raise exc
        self.lock_retries += 1
        log = logger.warning if attempt >= 3 else logger.debug
        log("mysql: %s; running again (attempt %d of %d, %d lock retries so far)",
            exc, attempt + 1, ATTEMPTS, self.lock_retries)  # fmt: skip
        await asyncio.sleep(random.uniform(0, BACKOFF_SECONDS * 2**attempt))  # noqa: S311

    async def _with_connection(self, work: Callable[[Any], Awaitable[T]]) -> T:
        if self._pool is None:
            raise DriverError(self.name, "call", "the driver is not open")
        attempt = 0
        while True:
            attempt += 1
            async with self._pool.acquire() as connection:
                try:
                    return await work(connection)
                except pymysql.err.Error as exc:
                    if _code(exc) in LOST_CONNECTION:
                        connection.close()
                    error = exc
            await self.retry_pause(error, attempt)

    async def transaction_on(self, connection: Any, body: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``body`` in a transaction on ``connection``; roll back and re-raise on error."""
        await connection.begin()
        try:
            result = await body(MySQLSession(self, connection, in_transaction=True))
        except BaseException:
            with contextlib.suppress(*self.failures):
                await connection.rollback()
            raise
        await connection.commit()
        return result

    async def transaction(self, body: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``body`` in one transaction, again after a deadlock or lock-wait timeout."""
        return await self._with_connection(lambda c: self.transaction_on(c, body))

    def _session(self, connection: Any) -> MySQLSession:
        return MySQLSession(self, connection, in_transaction=False)

    async def execute(self, name: str, params: Params) -> int:
        """Run one statement; return the rows it changed."""
        return await self._with_connection(lambda c: self._session(c).execute(name, params))

    async def execute_many(self, name: str, rows: Sequence[Params]) -> int:
        """Run the statement for all ``rows``; return the rows changed."""
        return await self._with_connection(lambda c: self._session(c).execute_many(name, rows))

    async def fetch(self, name: str, params: Params) -> list[Row]:
        """Run one query; return its rows."""
        return await self._with_connection(lambda c: self._session(c).fetch(name, params))

    async def claim(self, name: str, params: Params) -> list[Row]:
        """Lock and update rows in one short transaction; return them."""
        return await self._with_connection(lambda c: self._session(c).claim(name, params))

    async def listen(self, wakeup: Wakeup) -> None:
        """Do nothing: MySQL has no notifications; waiters poll."""

    def error(self, operation: str, exc: BaseException) -> DriverError:
        """Return ``exc`` as a ``DriverError``, the password removed.

        A missing table or column adds: run ``asynctasq migrate --driver mysql`` (not while
        migrating); a missing database (``db.table``): create it first.
        """
        detail = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
        if _code(exc) in _SCHEMA_ERRORS and operation != "migrate":
            detail = f"{detail}; {migrate_hint(self.name)}"
        elif _code(exc) == _NO_DATABASE:
            detail = f"{detail}; asynctasq migrate creates tables, not databases: create it first"
        return DriverError(self.name, operation, detail)


def build(config: Config) -> SQLDriver:
    """Return an unopened MySQL driver for ``config.mysql``."""
    keep = config.repository.keep_completed_tasks
    return SQLDriver(MySQLConnector(config.mysql), keep_completed=keep)
