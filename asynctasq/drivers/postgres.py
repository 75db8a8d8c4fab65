"""The PostgreSQL driver: asyncpg (PostgreSQL >= 14) under the shared SQL logic.

Connection glue only; the rules live in :mod:`asynctasq.drivers.sql` and
``queries/postgres.sql``. Claims use ``FOR UPDATE SKIP LOCKED``; times are the server's
``now()``. Idle consumers wait on LISTEN/NOTIFY: the migration installs a trigger that
notifies ``asynctasq:<queue_table>`` with the queue name whenever a row becomes pending,
and the driver keeps one dedicated listening connection (opened by the first waiting
``dequeue``, reopened after a loss; meanwhile waiters poll).

Settings (group ``postgres``): ``dsn`` is given to asyncpg as is (asyncpg decodes a
percent-encoded user, password and database exactly once; FIELD-CASES C29); the pool
holds ``min_pool_size`` to ``max_pool_size`` connections, and a call that finds all busy
waits for one (C35); ``open`` also connects ``warmup_connections`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg  # type: ignore[import-untyped]

from asynctasq.config.mask import scrub
from asynctasq.config.records import Config, PostgresConfig
from asynctasq.drivers.queries import Query, load
from asynctasq.drivers.sql import SQLDriver
from asynctasq.drivers.sql_connector import (
    CHANNEL_MAX,
    Params,
    Row,
    Session,
    identifiers,
    labels,
    migrate_hint,
)
from asynctasq.drivers.sql_wakeup import Wakeup
from asynctasq.errors import DriverError

T = TypeVar("T")

MIN_SERVER_VERSION = 14
"""The oldest PostgreSQL supported (``CREATE OR REPLACE TRIGGER``). Source: SPEC §5."""

MAX_FIELD_BYTES = 1024**3
"""PostgreSQL's largest field value (1 GB). Source: postgresql.org/docs/current/limits.html."""

CLOSE_SECONDS = 10.0
"""How long ``close`` waits for busy connections before terminating them."""

_SCHEMA_ERRORS = ("42P01", "42703", "42883")  # undefined table, column, function
_NO_SCHEMA = "3F000"  # invalid schema name: the schema of a schema.name table is missing
_NO_SCHEMA_HINT = "asynctasq migrate creates tables, not schemas: create the schema first"

ATTEMPTS = 3
"""How many times a call runs when its connection turns out to be dead (see :func:`lost`)."""

BACKOFF_SECONDS = 0.05
"""The first pause before running a call again on a fresh connection (doubling)."""


def lost(exc: BaseException) -> bool:
    """Return whether ``exc`` means the connection died (the call may run again elsewhere).

    Connection exceptions (SQLSTATE class 08), the server ending the session (57P01-57P03:
    ``pg_terminate_backend``, shutdown, crash recovery), asyncpg finding the connection
    closed or in a broken state, and socket errors.
    """
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state.startswith("08") or state in ("57P01", "57P02", "57P03")
    return isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError | OSError)


def _count(status: str) -> int:
    """Return the row count of a command tag such as ``"UPDATE 3"`` or ``"INSERT 0 5"``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def _keep_session(connection: Any) -> None:
    """Skip asyncpg's reset query on release (one round trip per call).

    The driver's connections change no session state (no ``SET``, no ``LISTEN``, only
    transaction-scoped advisory locks); asyncpg still rolls back an open transaction and
    drops listeners before calling this.
    """
    del connection


def _arrays(query: Query, rows: Sequence[Params]) -> list[list[Any]]:
    return [[row[name] for row in rows] for name in query.params]


class PostgresSession:
    """Named queries on one pooled connection (inside a transaction)."""

    def __init__(self, queries: dict[str, Query], connection: Any) -> None:
        self._queries = queries
        self.connection = connection

    async def execute(self, name: str, params: Params) -> int:
        """Run one statement; return its row count."""
        query = self._queries[name]
        args = query.positional(params)
        return _count(await self.connection.execute(query.sql, *args))

    async def execute_many(self, name: str, rows: Sequence[Params]) -> int:
        """Run the array form of the statement once for all ``rows``; return its row count."""
        query = self._queries[name]
        return _count(await self.connection.execute(query.sql, *_arrays(query, rows)))

    async def fetch(self, name: str, params: Params) -> list[Row]:
        """Run one query; return its rows."""
        query = self._queries[name]
        rows: list[Row] = await self.connection.fetch(query.sql, *query.positional(params))
        return rows

    claim = fetch


class PostgresConnector:
    """The PostgreSQL side of :class:`~asynctasq.drivers.sql.SQLDriver`.

    Args:
        config: the ``postgres`` group (``dsn`` set: ``build_driver`` checks it).

    """

    name = "postgres"
    failures: tuple[type[BaseException], ...] = (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
        TimeoutError,
    )
    max_message_bytes: int | None = MAX_FIELD_BYTES - 1024 * 1024

    def __init__(self, config: PostgresConfig) -> None:
        self._config = config
        self._dsn = config.dsn or ""
        password = urlsplit(self._dsn).password or ""
        self._secrets = [password, unquote(password)]
        self.pool_size: int | None = config.max_pool_size
        queue, dead = config.queue_table, config.dead_letter_table
        self.queries = load("postgres", "numeric", identifiers(queue, dead, quote='"'))
        self.migration_steps = tuple(name for name in self.queries if name.startswith("migrate_"))
        shown = labels(queue, dead)
        self.expected_objects: tuple[str, ...] = (
            f"table {shown['queue_table']}",
            f"index {shown['ready_index']}",
            f"index {shown['leased_index']}",
            f"table {shown['dead_letter_table']}",
            f"index {shown['dead_index']}",
            f"function {shown['notify_function']}",
            f"trigger {shown['notify_trigger']}",
            f"table {shown['workers_table']}",
            f"table {shown['completed_table']}",
            f"index {shown['completed_index']}",
        )
        self.channel = f"asynctasq:{queue}"[:CHANNEL_MAX]
        self._pool: Any = None
        self._listener: Any = None
        self._listen_lock = asyncio.Lock()

    def _connect_kwargs(self) -> dict[str, Any]:
        return {"dsn": self._dsn, "server_settings": {"application_name": "asynctasq"}}

    async def open(self, *, create: bool = False) -> None:
        """Create the pool (one connection for a migration), check the version, warm up.

        Raises:
            DriverError: the server is older than PostgreSQL 14.
            asyncpg.PostgresError, OSError: it cannot be reached or refused the login.

        """
        if self._pool is not None:
            return
        low, high = (1, 1) if create else (self._config.min_pool_size, self._config.max_pool_size)
        pool = await asyncpg.create_pool(
            min_size=low, max_size=high, reset=_keep_session, **self._connect_kwargs()
        )
        try:
            async with pool.acquire() as connection:
                version = connection.get_server_version()
            if version.major < MIN_SERVER_VERSION:
                raise DriverError(
                    self.name,
                    "open",
                    f"PostgreSQL {version.major}.{version.minor} is too old; "
                    f"{MIN_SERVER_VERSION} or newer is needed",
                )
            if not create:
                await self._warm_up(pool)
        except BaseException:
            pool.terminate()
            raise
        self._pool = pool

    async def _warm_up(self, pool: Any) -> None:
        count = min(self._config.warmup_connections, self._config.max_pool_size)
        async with contextlib.AsyncExitStack() as stack:
            await asyncio.gather(*(stack.enter_async_context(pool.acquire()) for _ in range(count)))

    async def close(self) -> None:
        """Close the listening connection and the pool (idempotent)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(*self.failures):
                await listener.close(timeout=CLOSE_SECONDS)
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_SECONDS)
            except TimeoutError:
                pool.terminate()

    def _ready(self) -> Any:
        if self._pool is None:
            raise DriverError(self.name, "call", "the driver is not open")
        return self._pool

    async def _on_connection(self, work: Callable[[PostgresSession], Awaitable[T]]) -> T:
        """Run ``work`` on a pooled connection; on a fresh one if that connection was dead.

        A pooled connection the server closed while it sat idle is found out only when
        used; the call then runs again (up to :data:`ATTEMPTS` times). A statement may have
        run before its connection died: an enqueue may then be stored twice (at least
        once), and a claim's rows come back after their visibility timeout.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._ready().acquire() as connection:
                    return await work(PostgresSession(self.queries, connection))
            except self.failures as exc:
                if not lost(exc) or attempt >= ATTEMPTS:
                    raise
            await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))

    async def execute(self, name: str, params: Params) -> int:
        """Run one statement on a pooled connection; return its row count."""
        return await self._on_connection(lambda session: session.execute(name, params))

    async def execute_many(self, name: str, rows: Sequence[Params]) -> int:
        """Run the array form of the statement for all ``rows``; return its row count."""
        return await self._on_connection(lambda session: session.execute_many(name, rows))

    async def fetch(self, name: str, params: Params) -> list[Row]:
        """Run one query on a pooled connection; return its rows."""
        return await self._on_connection(lambda session: session.fetch(name, params))

    claim = fetch

    async def transaction(self, body: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``body`` in one transaction on one pooled connection.

        Run again on a fresh connection if that one was dead (nothing was committed).
        """

        async def run(session: PostgresSession) -> T:
            async with session.connection.transaction():
                return await body(session)

        return await self._on_connection(run)

    async def listen(self, wakeup: Wakeup) -> None:
        """Make sure the listening connection is up and feeds ``wakeup``.

        Opened on first use; after it is lost, waiters poll until the next call reopens it.
        """
        if self._listener is not None and not self._listener.is_closed():
            return
        async with self._listen_lock:
            if self._listener is not None and not self._listener.is_closed():
                return
            wakeup.polling = True
            connection = await asyncpg.connect(**self._connect_kwargs())

            def notified(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
                wakeup.notify(payload)

            def lost(_connection: Any) -> None:
                wakeup.polling = True
                wakeup.notify()

            try:
                await connection.add_listener(self.channel, notified)
            except BaseException:
                await connection.close()
                raise
            connection.add_termination_listener(lost)
            self._listener = connection
            wakeup.polling = False

    def error(self, operation: str, exc: BaseException) -> DriverError:
        """Return ``exc`` as a ``DriverError``, the password removed.

        A missing table, column or function adds: run ``asynctasq migrate --driver postgres``
        (not while migrating); a missing schema: create it first.
        """
        detail = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
        state = getattr(exc, "sqlstate", None)
        if state in _SCHEMA_ERRORS and operation != "migrate":
            detail = f"{detail}; {migrate_hint(self.name)}"
        elif state == _NO_SCHEMA:
            detail = f"{detail}; {_NO_SCHEMA_HINT}"
        return DriverError(self.name, operation, detail)


def build(config: Config) -> SQLDriver:
    """Return an unopened PostgreSQL driver for ``config.postgres``."""
    keep = config.repository.keep_completed_tasks
    return SQLDriver(PostgresConnector(config.postgres), keep_completed=keep)
