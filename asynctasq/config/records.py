"""The configuration records: one frozen record per group, and ``Config`` that nests them.

Every field, type, default and choice comes from the user's document
(``seed/configuration.md``) or SPEC §2; each is declared once with :func:`setting`.
Records are frozen: ``attrs.evolve(record, field=value)`` makes a changed copy.

Source: seed/configuration.md, "Configuration Options"; SPEC §2.
"""

from __future__ import annotations

from typing import Any

from asynctasq.config.fields import (
    MAX_INTERVAL_SECONDS,
    MIN_INTERVAL_SECONDS,
    Rule,
    at_least,
    between,
    file_path,
    interval_at_most_an_hour,
    interval_seconds,
    non_empty,
    record,
    setting,
    sql_name,
)

SEED_DRIVERS = ("redis", "postgres", "mysql", "rabbitmq", "sqs")
"""The drivers the seed lists, in its order."""

DRIVERS = (*SEED_DRIVERS, "sqlite", "memory")
"""Every accepted value of ``driver``: the seed's five, the embedded ``sqlite`` driver and
the in-process ``memory`` driver."""

RETRY_STRATEGIES = ("fixed", "exponential")

INTERVALS = f"{MIN_INTERVAL_SECONDS} to {MAX_INTERVAL_SECONDS}"
"""The accepted range of the loop periods, as their help texts say it: ``0.1 to 3600``."""

MAX_DELAY_SECONDS = 365 * 86_400
"""The longest dispatch delay (``.delay()``), retry delay (``retry_delay``) and visibility
timeout a task may have: 365 days, in seconds (31,536,000).

Every broker stores due times and lease expiries as dates (MySQL's ``DATETIME`` ends in
year 9999: ``retry_delay=10**12`` overflowed it on every retry). A longer wait belongs in
a scheduler or a database row, not in a queued message; a value this large is usually a
unit mistake (milliseconds given as seconds), so it is refused where it is set.
"""


@record
class RedisConfig:
    """Redis driver settings (group ``redis``). Context: dispatch and worker.

    Which database: the URL may name one in its path (``redis://h:6379/2``, redis and
    rediss only) and/or its query (``?db=2``, also ``unix:///run/redis.sock?db=2``); ``db``
    may be set in code, the environment, ``.env`` or a flag. Exactly one rule:

    - only one of them names a database -> that one is used (``db`` then reports it, with
      the URL's source as its provenance); none -> ``db``'s default, 0;
    - several name the *same* database -> fine; different ones -> a configuration error
      (path vs ``?db=``, or URL vs an explicitly set ``db``);
    - a path other than empty, ``/`` or ``/<digits>`` (``/abc``, ``/1/2``, ``/1.5``,
      ``//7``) or a non-numeric ``?db=`` is an error, never a silently chosen database;
    - the database must be between 0 and 15.

    Source: seed "Redis Configuration"; FIELD-CASES C31; ``warmup_connections`` and
    ``delayed_task_interval`` from SPEC §2.
    """

    url: str = setting(
        default="redis://localhost:6379",
        help="Redis connection URL (redis://, rediss:// or unix://).",
        url=True,
        rules=(non_empty(),),
    )
    password: str | None = setting(default=None, help="Redis password.", secret=True)
    db: int = setting(default=0, help="Redis database number (0-15).", rules=(between(0, 15),))
    max_connections: int = setting(
        default=100, help="Maximum connections in the Redis pool.", rules=(at_least(1),)
    )
    warmup_connections: int = setting(
        default=0,
        help="Connections opened when the driver starts, so the first tasks skip the handshake.",
        rules=(at_least(0),),
    )
    delayed_task_interval: float = setting(
        default=1.0,
        help=(
            "Seconds between checks that promote due delayed tasks and recover expired "
            f"leases ({INTERVALS})."
        ),
        context="worker",
        rules=(
            interval_seconds(),
            interval_at_most_an_hour(
                "a longer period leaves delayed tasks dispatched by other processes, and "
                "the tasks of workers that died, waiting that long"
            ),
        ),
    )


@record
class SQSConfig:
    """AWS SQS driver settings (group ``sqs``). Context: dispatch and worker.

    ``region_name`` and ``queue_url_prefix`` are required when ``driver`` is ``sqs``.
    Credentials fall back to boto's default chain when unset. ``create_queues`` and
    ``delay_hop_seconds`` are additions of the SQS driver (not in the seed): queue creation
    on first use, and the hop length for delays over SQS' 900 s ``DelaySeconds`` limit
    (lower it only to test long-delay handling quickly).

    Source: seed "SQS Configuration"; the ``ASYNCTASQ_SQS_REGION`` name and the ``region``
    alias from SPEC §2; the 900 s limit from the SQS API reference, "SendMessage".
    """

    region_name: str | None = setting(
        default=None,
        help="AWS region name, e.g. us-east-1.",
        env="ASYNCTASQ_SQS_REGION",
        aliases=("region",),
        required_for="sqs",
    )
    queue_url_prefix: str | None = setting(
        default=None,
        help="Base URL for queues; a queue's URL is this prefix plus its name.",
        required_for="sqs",
    )
    aws_access_key_id: str | None = setting(
        default=None, help="AWS access key (boto3's default chain when unset).", secret=True
    )
    aws_secret_access_key: str | None = setting(
        default=None, help="AWS secret key (boto3's default chain when unset).", secret=True
    )
    endpoint_url: str | None = setting(
        default=None, help="Custom endpoint URL (LocalStack, moto, testing).", url=True
    )
    create_queues: bool = setting(
        default=True,
        help=(
            "Create a queue (and its '<name>_dead' dead-letter queue) on first use when it "
            "does not exist; false: a missing queue is an error."
        ),
    )
    delay_hop_seconds: int = setting(
        default=900,
        help=(
            "Longest native SQS delay per hop (1-900); longer delays and backoffs are "
            "re-deferred in hops of at most this many seconds, never firing early."
        ),
        rules=(between(1, 900),),
    )


MAX_POSTGRES_POOL_SIZE = 10_000
"""The largest PostgreSQL connection pool (``postgres.max_pool_size``).

asyncpg sets up every slot of a pool when it makes it, before the first connection: a
pool of 1,000,000 took 20 s and 1.7 GB of memory before its first query, one of 10**9
had not made its first query after a minute (the dispatch that opened it hung). Every
connection is a server process, and PostgreSQL allows 100 by default: a pool beyond 10,000
cannot be filled. (MySQL's pool sets nothing up in advance, so its size has no such limit.)
"""


@record
class PostgresConfig:
    """PostgreSQL driver settings (group ``postgres``). Context: dispatch and worker.

    ``dsn`` is required when ``driver`` is ``postgres``.

    Source: seed "PostgreSQL Configuration"; ``warmup_connections`` from SPEC §2.
    """

    dsn: str | None = setting(
        default=None,
        help="PostgreSQL connection DSN (percent-encode special characters in the password).",
        url=True,
        required_for="postgres",
    )
    queue_table: str = setting(
        default="task_queue",
        help="Queue table name (its worker and completed-task tables add _workers and _completed).",
        rules=(sql_name(),),
    )
    dead_letter_table: str = setting(
        default="dead_letter_queue", help="Dead-letter table name.", rules=(sql_name(),)
    )
    min_pool_size: int = setting(
        default=10, help="Minimum connection pool size.", rules=(at_least(1),)
    )
    max_pool_size: int = setting(
        default=10,
        help=f"Maximum connection pool size (at most {MAX_POSTGRES_POOL_SIZE}).",
        rules=(
            at_least(1),
            Rule(
                lambda v: v <= MAX_POSTGRES_POOL_SIZE,
                f"must be at most {MAX_POSTGRES_POOL_SIZE} (asyncpg sets up every slot when "
                "it makes the pool: 1000000 took 20 s and 1.7 GB before the first query, "
                "1000000000 had not started after a minute; PostgreSQL allows 100 "
                "connections by default)",
            ),
        ),
    )
    warmup_connections: int = setting(
        default=0, help="Connections opened when the driver starts.", rules=(at_least(0),)
    )


@record
class MySQLConfig:
    """MySQL driver settings (group ``mysql``). Context: dispatch and worker.

    Source: seed "MySQL Configuration"; ``warmup_connections`` from SPEC §2.
    """

    dsn: str = setting(
        default="mysql://test:test@localhost:3306/test_db",
        help="MySQL connection DSN (percent-encode special characters in the password).",
        url=True,
        rules=(non_empty(),),
    )
    queue_table: str = setting(
        default="task_queue",
        help="Queue table name (its worker and completed-task tables add _workers and _completed).",
        rules=(sql_name(),),
    )
    dead_letter_table: str = setting(
        default="dead_letter_queue", help="Dead-letter table name.", rules=(sql_name(),)
    )
    min_pool_size: int = setting(
        default=10, help="Minimum connection pool size.", rules=(at_least(1),)
    )
    max_pool_size: int = setting(
        default=10, help="Maximum connection pool size.", rules=(at_least(1),)
    )
    warmup_connections: int = setting(
        default=0, help="Connections opened when the driver starts.", rules=(at_least(0),)
    )


@record
class SQLiteConfig:
    """SQLite driver settings (group ``sqlite``). Context: dispatch and worker.

    The embedded driver: one database file shared by every process on one machine (WAL
    mode), no server. Create its tables first with ``asynctasq migrate --driver sqlite``.

    Source: issue 4 ("SQLite, a sixth driver"); the table names as for PostgreSQL.
    """

    path: str = setting(
        default="asynctasq.sqlite3",
        help="SQLite database file; a relative path is taken from the current directory.",
        rules=(non_empty(), file_path()),
    )
    queue_table: str = setting(
        default="task_queue",
        help="Queue table name (its worker and completed-task tables add _workers and _completed).",
        rules=(sql_name(),),
    )
    dead_letter_table: str = setting(
        default="dead_letter_queue", help="Dead-letter table name.", rules=(sql_name(),)
    )


@record
class RabbitMQConfig:
    """RabbitMQ driver settings (group ``rabbitmq``). Context: dispatch and worker.

    Source: seed "RabbitMQ Configuration"; ``delayed_task_interval`` from SPEC §2.
    """

    url: str = setting(
        default="amqp://guest:guest@localhost:5672/",
        help="RabbitMQ connection URL.",
        url=True,
        rules=(non_empty(),),
    )
    exchange_name: str = setting(
        default="asynctasq",
        help="RabbitMQ exchange name.",
        rules=(
            non_empty(),
            Rule(
                lambda v: not str(v).startswith("amq."),
                "must not start with 'amq.' (RabbitMQ reserves those names)",
            ),
            Rule(
                lambda v: len(str(v).encode()) <= 243,
                "must be at most 243 bytes (AMQP names are at most 255, and the driver "
                "names its monitoring queues '<exchange>.reader-lock')",
            ),
        ),
    )
    prefetch_count: int = setting(
        default=1,
        help="Consumer prefetch count (at most 65535: AMQP's basic.qos count is 16 bits).",
        rules=(between(1, 65_535),),
    )
    delayed_task_interval: float = setting(
        default=1.0,
        help=f"Seconds between checks that release due delayed tasks ({INTERVALS}).",
        context="worker",
        rules=(
            interval_seconds(),
            interval_at_most_an_hour(
                "a longer period leaves delayed tasks dispatched by other processes "
                "waiting that long"
            ),
        ),
    )


@record
class EventsConfig:
    """Event emission settings (group ``events``). Context: dispatch and worker.

    Source: seed "Events Configuration"; ``enable_all`` from SPEC §2;
    ``heartbeat_interval`` from issue 6 (worker_heartbeat every that many seconds).
    """

    redis_url: str | None = setting(
        default=None, help="Redis URL for event pub/sub (None uses redis.url).", url=True
    )
    channel: str = setting(
        default="asynctasq:events",
        help="Redis Pub/Sub channel name for events.",
        rules=(non_empty(),),
    )
    enable_event_emitter_redis: bool = setting(
        default=False, help="Enable the Redis Pub/Sub event emitter for monitoring."
    )
    enable_all: bool = setting(default=False, help="Enable every optional event emitter.")
    heartbeat_interval: float = setting(
        default=10.0,
        help=(
            "Seconds between a worker's heartbeats (worker_heartbeat events, live-worker "
            f"list; {INTERVALS})."
        ),
        context="worker",
        rules=(
            interval_seconds(),
            interval_at_most_an_hour(
                "a dead worker stays listed three periods, and brokers refuse much longer "
                "expiries, failing every heartbeat"
            ),
        ),
    )


@record
class TaskDefaultsConfig:
    """Defaults for every task (group ``task_defaults``). Context: dispatch and worker.

    ``timeout``, ``visibility_timeout``, ``correlation_id`` and ``driver`` are per-task
    only (seed "Task Defaults Configuration").

    Source: seed "Task Defaults Configuration".
    """

    queue: str = setting(
        default="default", help="Default queue name for tasks.", rules=(non_empty(),)
    )
    max_attempts: int = setting(
        default=3,
        help="Default maximum attempts, the first execution included.",
        rules=(at_least(1),),
    )
    retry_strategy: str = setting(
        default="exponential", help="Default retry delay strategy.", choices=RETRY_STRATEGIES
    )
    retry_delay: int = setting(
        default=60,
        help="Default base retry delay in seconds.",
        rules=(
            Rule(
                lambda v: 0 <= v <= MAX_DELAY_SECONDS,
                f"must be between 0 and {MAX_DELAY_SECONDS} seconds (365 days)",
            ),
        ),
    )


MAX_POOL_PROCESSES = 1024
"""The most pool processes one pool may have (``process_pool.size``, ``async_max_workers``).

A pool process is a whole Python interpreter (tens of MB before the task modules are
loaded) doing CPU-bound work: more processes than CPUs only adds memory and switching.
1024 is above the CPU count of any single machine a worker runs on today while still
refusing what is surely a mistake (a size of 100000 would try to start that many
interpreters; a 20-digit size used to hang the worker before its first task). It is a
fixed number rather than a multiple of this machine's CPUs so that a configuration is
valid or not regardless of where it is checked (a dispatcher, a CI job, the worker).
"""


@record
class ProcessPoolConfig:
    """Process pool for CPU-bound tasks (group ``process_pool``). Context: worker only.

    Source: seed "Process Pool Configuration".
    """

    size: int | None = setting(
        default=None,
        help=f"Number of pool processes, 1 to {MAX_POOL_PROCESSES} (None = CPU count).",
        context="worker",
        rules=(between(1, MAX_POOL_PROCESSES),),
    )
    max_tasks_per_child: int | None = setting(
        default=None,
        help="Recycle a pool process after this many tasks (None = never).",
        context="worker",
        rules=(at_least(1),),
    )


@record
class RepositoryConfig:
    """What happens to completed tasks (group ``repository``). Context: worker only.

    Source: seed "Repository Configuration".
    """

    keep_completed_tasks: bool = setting(
        default=False,
        help=(
            "Keep completed tasks for history/audit (not applicable for SQS: there, best "
            "effort, the last hour only)."
        ),
        context="worker",
    )


@record
class Config:
    """The whole resolved configuration: ``driver``, the groups and the ORM hooks.

    Build one with ``init()`` or ``resolve()``; read the current one with ``Config.get()``.

    Source: seed "Configuration Structure".
    """

    driver: str = setting(default="redis", help="Queue driver to use.", choices=DRIVERS)
    redis: RedisConfig = setting(factory=RedisConfig, help="Redis driver settings.")
    sqs: SQSConfig = setting(factory=SQSConfig, help="AWS SQS driver settings.")
    postgres: PostgresConfig = setting(factory=PostgresConfig, help="PostgreSQL driver settings.")
    mysql: MySQLConfig = setting(factory=MySQLConfig, help="MySQL driver settings.")
    sqlite: SQLiteConfig = setting(factory=SQLiteConfig, help="SQLite driver settings.")
    rabbitmq: RabbitMQConfig = setting(factory=RabbitMQConfig, help="RabbitMQ driver settings.")
    events: EventsConfig = setting(factory=EventsConfig, help="Event emission settings.")
    task_defaults: TaskDefaultsConfig = setting(
        factory=TaskDefaultsConfig, help="Defaults for every task."
    )
    process_pool: ProcessPoolConfig = setting(
        factory=ProcessPoolConfig, help="Process pool settings.", context="worker"
    )
    repository: RepositoryConfig = setting(
        factory=RepositoryConfig, help="Completed-task retention.", context="worker"
    )
    sqlalchemy_engine: Any = setting(
        default=None, help="SQLAlchemy engine the worker loads models with and disposes.", env=""
    )
    tortoise_orm: dict[str, Any] | None = setting(
        default=None, help="Tortoise ORM configuration, initialised in workers.", env=""
    )

    @classmethod
    def get(cls) -> Config:
        """Return the current handle's configuration.

        With no current handle (``init()`` not called in this context), return the record
        resolved from defaults, ``.env`` and the environment; no service is built.

        Raises:
            ConfigError: the environment or ``.env`` holds an invalid value.
        """
        from asynctasq import context
        from asynctasq.config.resolve import resolve

        handle = context.current()
        if handle is not None:
            found: Config = handle.config
            return found
        return resolve().config


GROUPS: dict[str, type[Any]] = {
    "redis": RedisConfig,
    "sqs": SQSConfig,
    "postgres": PostgresConfig,
    "mysql": MySQLConfig,
    "sqlite": SQLiteConfig,
    "rabbitmq": RabbitMQConfig,
    "events": EventsConfig,
    "task_defaults": TaskDefaultsConfig,
    "process_pool": ProcessPoolConfig,
    "repository": RepositoryConfig,
}
"""Group key -> record class, in the seed's order (``sqlite`` after the other SQL drivers)."""
