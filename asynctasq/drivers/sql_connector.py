"""The seam between the shared SQL logic and one database client.

:class:`~asynctasq.drivers.sql.SQLDriver` states every rule once, as calls to named
queries (:mod:`asynctasq.drivers.queries`); a :class:`Connector` runs them on its
client (asyncpg, aiomysql, sqlite3): pooling, transactions, parameter binding, waking
idle consumers, and translating the client's errors. It holds no queue logic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from asynctasq.drivers.sql_wakeup import Wakeup
from asynctasq.errors import DriverError

T = TypeVar("T")

Params = Mapping[str, Any]
"""Named parameters of one query: ``{"queue": "default", "limit": 10, ...}``.

A mapping may hold keys its query does not use (each dialect takes what it names)."""

Row = Sequence[Any]


class Session(Protocol):
    """Runs named queries on one connection (inside a transaction, or one statement each)."""

    async def execute(self, name: str, params: Params) -> int:
        """Run the query; return how many rows it changed."""
        ...

    async def execute_many(self, name: str, rows: Sequence[Params]) -> int:
        """Run the query for every row, atomically; return how many rows it changed in all."""
        ...

    async def fetch(self, name: str, params: Params) -> list[Row]:
        """Run the query; return its rows."""
        ...

    async def claim(self, name: str, params: Params) -> list[Row]:
        """Pick rows no one else holds and change them in one step; return the picked rows.

        One statement where the database has ``UPDATE ... RETURNING``; else (MySQL) the
        query ``<name>_select`` (``FOR UPDATE SKIP LOCKED``) then ``<name>_update`` with
        the picked ``ids``, in one transaction.
        """
        ...


class Connector(Session, Protocol):
    """One database client behind the shared SQL logic.

    Attributes:
        name: the driver name, e.g. ``"postgres"``.
        failures: the client's exception types; :meth:`error` translates them.
        max_message_bytes: the largest payload the database takes in one statement.
        pool_size: the most pooled connections, or ``None`` (not pooled).
        expected_objects: ``"table task_queue"``-style labels of every schema object,
            in creation order, as the ``schema_objects`` query reports them.
        migration_steps: names of the ``migrate_*`` queries, in order.

    """

    name: str
    failures: tuple[type[BaseException], ...]
    max_message_bytes: int | None
    pool_size: int | None
    expected_objects: tuple[str, ...]
    migration_steps: tuple[str, ...]

    async def open(self, *, create: bool = False) -> None:
        """Connect; ``create`` lets a migration create what connecting needs (a file)."""
        ...

    async def close(self) -> None:
        """Close every connection (idempotent)."""
        ...

    async def transaction(self, body: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``body`` in one transaction on one connection and return its result.

        A connector may run ``body`` again after a deadlock (MySQL), so ``body`` only
        talks to the database.
        """
        ...

    async def listen(self, wakeup: Wakeup) -> None:
        """Make sure server notifications reach ``wakeup`` (no-op without such a channel)."""
        ...

    def error(self, operation: str, exc: BaseException) -> DriverError:
        """Return ``exc`` as a ``DriverError``, passwords removed, with a migrate hint if apt."""
        ...


CHANNEL_MAX = 63
"""PostgreSQL's longest channel name (``NAMEDATALEN - 1`` bytes; ASCII here)."""


def literal(text: str) -> str:
    """Return ``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def object_names(queue_table: str, dead_letter_table: str) -> dict[str, tuple[str, str]]:
    """Return ``{key: (schema, name)}`` of every schema object made for the two tables.

    Keys: ``queue_table``, ``dead_letter_table``, ``workers_table``, ``completed_table``
    (:func:`side_tables`), ``ready_index``, ``leased_index``, ``completed_index`` (named after
    the queue table), ``dead_index`` (after the dead-letter table), ``notify_function`` and
    ``notify_trigger`` (PostgreSQL). ``schema`` is ``""`` for an unqualified name. An index
    or a trigger lives in the schema of its table (PostgreSQL puts it there: its name in
    ``CREATE INDEX`` cannot be qualified), so it carries that table's schema here too.

    Args:
        queue_table: ``name`` or ``schema.name``, already validated as identifiers.
        dead_letter_table: likewise.

    """
    schema, _, base = queue_table.rpartition(".")
    dead_schema, _, dead_base = dead_letter_table.rpartition(".")
    sides = {key: name.rpartition(".")[2] for key, name in side_tables(queue_table).items()}
    return {
        "queue_table": (schema, base),
        "dead_letter_table": (dead_schema, dead_base),
        **{key: (schema, name) for key, name in sides.items()},
        "ready_index": (schema, f"{base}_ready"),
        "leased_index": (schema, f"{base}_leased"),
        "dead_index": (dead_schema, f"{dead_base}_queue"),
        "completed_index": (schema, f"{base}_completed_q"),
        "notify_function": (schema, f"{base}_notify"),
        "notify_trigger": (schema, f"{base}_notify"),
    }


_UNQUALIFIED = ("ready_index", "leased_index", "dead_index", "completed_index", "notify_trigger")
"""Objects whose name is never qualified where it is created (the table's schema is implied)."""


def qualified(schema: str, name: str) -> str:
    """Return ``schema.name``, or ``name`` when there is no schema (how a label shows it)."""
    return f"{schema}.{name}" if schema else name


def identifiers(queue_table: str, dead_letter_table: str, *, quote: str) -> dict[str, str]:
    """Return the ``{key: text}`` a dialect's queries are filled with.

    For each object of :func:`object_names` five keys:

    * ``{x}``: the identifier to write in SQL, each part quoted (``"jobs"."task_queue"``);
      an index's or a trigger's bare name (``"task_queue_ready"``);
    * ``{x_text}``: the qualified quoted identifier as a string literal, for lookups such
      as ``to_regclass`` (an index with its table's schema: ``'"jobs"."task_queue_ready"'``);
    * ``{x_name}``: the bare name as a string literal (``'task_queue_ready'``), to match
      a catalog's name column;
    * ``{x_label}``: the name as ``asynctasq migrate`` shows it, a string literal:
      ``'jobs.task_queue_ready'`` (the bare name when the table has no schema);
    * ``{x_schema}``: the schema as a string literal, or ``DATABASE()`` when the name has
      none (MySQL's current database).

    Also ``{channel}`` (the PostgreSQL NOTIFY channel, a literal).

    Args:
        queue_table: the configured queue table (``name`` or ``schema.name``, already
            validated as identifiers).
        dead_letter_table: the configured dead-letter table.
        quote: the identifier quote character: ``"`` or a backtick.

    """

    def quoted(*parts: str) -> str:
        return ".".join(f"{quote}{part}{quote}" for part in parts if part)

    names: dict[str, str] = {}
    for key, (schema, name) in object_names(queue_table, dead_letter_table).items():
        names[key] = quoted(name) if key in _UNQUALIFIED else quoted(schema, name)
        names[f"{key}_text"] = literal(quoted(schema, name))
        names[f"{key}_name"] = literal(name)
        names[f"{key}_label"] = literal(qualified(schema, name))
        names[f"{key}_schema"] = literal(schema) if schema else "DATABASE()"
    names["channel"] = literal(f"asynctasq:{queue_table}"[:CHANNEL_MAX])
    return names


def labels(queue_table: str, dead_letter_table: str) -> dict[str, str]:
    """Return ``{key: "jobs.task_queue_ready"}``: each object of :func:`object_names` as shown.

    The connectors build their ``expected_objects`` from these, as ``schema_objects``
    reports them (``"index jobs.task_queue_ready"``).
    """
    found = object_names(queue_table, dead_letter_table)
    return {key: qualified(schema, name) for key, (schema, name) in found.items()}


def side_tables(queue_table: str) -> dict[str, str]:
    """Return the names of the worker-registry and completed-task tables of ``queue_table``.

    ``{"workers_table": "<queue_table>_workers", "completed_table": "<queue_table>_completed"}``,
    in the queue table's schema when it has one (``jobs.task_queue`` gives
    ``jobs.task_queue_workers``). Derived like the index names, so no setting is needed and
    two applications with their own queue tables never share them.
    """
    return {
        "workers_table": f"{queue_table}_workers",
        "completed_table": f"{queue_table}_completed",
    }


def migrate_hint(driver: str) -> str:
    """Return the sentence telling the user to create or update the schema."""
    return f"run `asynctasq migrate --driver {driver}` to create or update the tables"
