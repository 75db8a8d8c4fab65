"""The SQLite driver: stdlib ``sqlite3`` on a thread of its own, the embedded default.

One database file (``sqlite.path``) shared by every process on one machine: no server.
The connection is opened in WAL mode (readers never block the writer) with
``synchronous=NORMAL`` (a commit survives a crashed process; a power cut may lose the
last ones). Every write runs inside ``BEGIN IMMEDIATE``, which takes the database's one
write lock first, so a claim (``UPDATE ... RETURNING``, SQLite >= 3.35) is atomic across
processes without ``SKIP LOCKED``; a process that finds the lock taken waits up to
:data:`BUSY_TIMEOUT_SECONDS`. Idle consumers poll with an adaptive back-off
(:mod:`asynctasq.drivers.sql_wakeup`). The file must exist: ``asynctasq migrate --driver
sqlite`` creates it with its tables.

Each driver instance has one connection and one thread; its calls are serialised by an
``asyncio.Lock`` and run on that thread, so the event loop never blocks on the file.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

from asynctasq.config.records import Config, SQLiteConfig
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

T = TypeVar("T")

MIN_VERSION = (3, 35, 0)
"""``UPDATE ... RETURNING`` appeared in SQLite 3.35.0. Source: sqlite.org/lang_returning.html."""

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a write waits for another process's write lock before failing."""

BUSY_STEP_SECONDS = 0.005
"""The longest pause between two tries for the write lock."""

MAX_LENGTH = 1_000_000_000
"""SQLite's default ``SQLITE_MAX_LENGTH``: the largest row. Source: sqlite.org/limits.html."""

_SCHEMA_WORDS = ("no such table", "no such column")


def _bind(params: Params) -> dict[str, Any]:
    return {k: json.dumps(v) if isinstance(v, list | tuple) else v for k, v in params.items()}


class _Link:
    """The connection, used only on the driver's thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.in_transaction = False

    def begin(self) -> None:
        """``BEGIN IMMEDIATE``, waiting for another process's write lock (:func:`_patiently`)."""
        _patiently(lambda: self.connection.execute("BEGIN IMMEDIATE"))

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self.in_transaction:
            return work(self.connection)
        self.begin()
        try:
            result = work(self.connection)
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")
        return result


def _patiently(statement: Callable[[], T]) -> T:
    """Run ``statement``, again while another process holds the lock it needs.

    SQLite's own busy handler sleeps up to 100 ms at a time, which a queue's short
    transactions would turn into long stalls; this tries again from 0.5 ms, doubling to
    :data:`BUSY_STEP_SECONDS`, for at most :data:`BUSY_TIMEOUT_SECONDS`.
    """
    pause = 0.0005
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # any extended BUSY code
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, BUSY_STEP_SECONDS)


def _check_file(path: str, create: bool) -> None:
    """Open (``create``: make) the database file once, to say plainly what is wrong with it.

    sqlite3 reports any such failure as "unable to open database file"; the operating
    system says which file and why.

    Raises:
        DriverError: the file does not exist (run ``asynctasq migrate``), or it cannot be
            created or opened (the message names the file and the OS error).

    """
    operation = "migrate" if create else "open"
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    try:
        os.close(os.open(path, flags, 0o644))
    except FileNotFoundError as exc:
        if create:
            directory = os.path.dirname(path)
            detail = f"cannot create the database file {path!r}: {exc.strerror} "
            detail += f"(the directory {directory!r} does not exist)"
        else:
            detail = f"the database file {path!r} does not exist; {migrate_hint('sqlite')}"
        raise DriverError("sqlite", operation, detail) from exc
    except OSError as exc:
        verb = "create" if create and not os.path.exists(path) else "open"
        detail = f"cannot {verb} the database file {path!r}: {exc.strerror or exc}"
        raise DriverError("sqlite", operation, detail) from exc


def _connect(path: str, create: bool) -> _Link:
    path = os.path.abspath(path)
    _check_file(path, create)
    mode = "rwc" if create else "rw"
    uri = f"file:{quote(path)}?mode={mode}"
    connection = sqlite3.connect(
        uri,
        uri=True,
        timeout=0.0,  # busy waits: _Link.begin (reads in WAL mode never wait)
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        [(mode,)] = _patiently(lambda: connection.execute("PRAGMA journal_mode").fetchall())
        if str(mode).lower() != "wal":
            _patiently(lambda: connection.execute("PRAGMA journal_mode=WAL").fetchall())
        connection.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        connection.close()
        raise
    return _Link(connection)


class SQLiteSession:
    """Named queries on the driver's connection (each a transaction unless inside one)."""

    def __init__(self, queries: Mapping[str, Query]) -> None:
        self.queries = queries

    async def _on_thread(self, work: Callable[[_Link], T]) -> T:
        raise NotImplementedError

    def _query(self, name: str) -> Query:
        return self.queries[name]

    async def execute(self, name: str, params: Params) -> int:
        """Run one write; return the rows changed."""
        sql = self._query(name).sql
        return await self._on_thread(
            lambda link: link.write(lambda c: c.execute(sql, _bind(params)).rowcount)
        )

    async def execute_many(self, name: str, rows: Sequence[Params]) -> int:
        """Run one write per row in one transaction; return the rows changed."""
        sql = self._query(name).sql
        bound = [_bind(row) for row in rows]
        return await self._on_thread(
            lambda link: link.write(lambda c: c.executemany(sql, bound).rowcount)
        )

    async def fetch(self, name: str, params: Params) -> list[Row]:
        """Run one read; return its rows."""
        sql = self._query(name).sql
        rows: list[Row] = await self._on_thread(
            lambda link: _patiently(lambda: link.connection.execute(sql, _bind(params)).fetchall())
        )
        return rows

    async def claim(self, name: str, params: Params) -> list[Row]:
        """Run ``UPDATE ... RETURNING`` under the write lock; return the changed rows."""
        sql = self._query(name).sql
        rows: list[Row] = await self._on_thread(
            lambda link: link.write(lambda c: c.execute(sql, _bind(params)).fetchall())
        )
        return rows


class SQLiteConnector(SQLiteSession):
    """The SQLite side of :class:`~asynctasq.drivers.sql.SQLDriver`.

    Args:
        config: the ``sqlite`` group: path, queue_table, dead_letter_table.

    Raises:
        ConfigError: a table name has a schema part (``main.t``), which SQLite's index
            statements cannot use.

    """

    name = "sqlite"
    failures: tuple[type[BaseException], ...] = (sqlite3.Error,)
    max_message_bytes: int | None = MAX_LENGTH - 1024 * 1024
    pool_size: int | None = None

    def __init__(self, config: SQLiteConfig) -> None:
        for key in ("queue_table", "dead_letter_table"):
            if "." in getattr(config, key):
                raise ConfigError(
                    f"sqlite.{key} = {getattr(config, key)!r}: SQLite tables cannot be "
                    "schema-qualified; use a plain name"
                )
        self.path = config.path
        queue, dead = config.queue_table, config.dead_letter_table
        super().__init__(load("sqlite", "named", identifiers(queue, dead, quote='"')))
        self.migration_steps = tuple(name for name in self.queries if name.startswith("migrate_"))
        shown = labels(queue, dead)
        self.expected_objects: tuple[str, ...] = (
            f"table {shown['queue_table']}",
            f"index {shown['ready_index']}",
            f"index {shown['leased_index']}",
            f"table {shown['dead_letter_table']}",
            f"index {shown['dead_index']}",
            f"table {shown['workers_table']}",
            f"table {shown['completed_table']}",
            f"index {shown['completed_index']}",
        )
        self._link: _Link | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def _on_thread(self, work: Callable[[_Link], T]) -> T:
        async with self._lock:
            return await self.run_unlocked(work)

    async def run_unlocked(self, work: Callable[[_Link], T]) -> T:
        """Run ``work(link)`` on the connection's thread; the caller holds the lock."""
        if self._link is None or self._executor is None:
            raise DriverError(self.name, "call", "the driver is not open")
        link = self._link
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(work, link))

    async def open(self, *, create: bool = False) -> None:
        """Open the file (``create``: make it if missing) in WAL mode.

        Raises:
            DriverError: SQLite is older than 3.35; the file does not exist (without
                ``create``) or cannot be created or opened (naming it and the OS error).
            sqlite3.Error: SQLite cannot use the file (e.g. it is not a database).

        """
        if self._link is not None:
            return
        if sqlite3.sqlite_version_info < MIN_VERSION:
            raise DriverError(
                self.name, "open", f"SQLite {sqlite3.sqlite_version} is too old; 3.35 is needed"
            )
        executor = ThreadPoolExecutor(1, thread_name_prefix="asynctasq-sqlite")
        loop = asyncio.get_running_loop()
        try:
            self._link = await loop.run_in_executor(executor, _connect, self.path, create)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor

    async def close(self) -> None:
        """Close the connection and stop its thread (idempotent)."""
        async with self._lock:
            link, executor = self._link, self._executor
            self._link = self._executor = None
            if link is not None and executor is not None:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(executor, link.connection.close)
            if executor is not None:
                executor.shutdown(wait=False)

    async def transaction(self, body: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``body`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""
        async with self._lock:
            await self.run_unlocked(_Link.begin)
            self._transaction_link().in_transaction = True
            try:
                result = await body(_InTransaction(self))
            except BaseException:
                await self._finish("ROLLBACK")
                raise
            await self._finish("COMMIT")
            return result

    def _transaction_link(self) -> _Link:
        assert self._link is not None  # noqa: S101 - _run checked it just before
        return self._link

    async def _finish(self, statement: str) -> None:
        self._transaction_link().in_transaction = False
        await self.run_unlocked(lambda link: link.connection.execute(statement))

    async def listen(self, wakeup: Wakeup) -> None:
        """Do nothing: SQLite has no notifications; waiters poll."""

    def error(self, operation: str, exc: BaseException) -> DriverError:
        """Return ``exc`` as a ``DriverError`` naming the file; a missing table says to migrate.

        (A missing file is found before SQLite is asked: :func:`_check_file`.)
        """
        detail = f"{type(exc).__name__}: {exc} (database {self.path!r})"
        if operation != "migrate" and any(words in str(exc) for words in _SCHEMA_WORDS):
            detail = f"{detail}; {migrate_hint(self.name)}"
        return DriverError(self.name, operation, detail)


class _InTransaction(SQLiteSession):
    """The session inside :meth:`SQLiteConnector.transaction` (the lock is already held)."""

    def __init__(self, connector: SQLiteConnector) -> None:
        super().__init__(connector.queries)
        self._connector = connector

    async def _on_thread(self, work: Callable[[_Link], T]) -> T:
        return await self._connector.run_unlocked(work)


def build(config: Config) -> SQLDriver:
    """Return an unopened SQLite driver for ``config.sqlite``."""
    keep = config.repository.keep_completed_tasks
    return SQLDriver(SQLiteConnector(config.sqlite), keep_completed=keep)
