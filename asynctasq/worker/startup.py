"""Checks a worker makes before it takes work: its tasks, its queue names, its pool size.

None connects anywhere; each only logs or raises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from asynctasq.drivers.protocol import Driver
from asynctasq.errors import ConfigError
from asynctasq.tasks.registry import Registry, TaskSource, build_registry

logger = logging.getLogger("asynctasq.worker")

INTERNAL_CONNECTIONS = 3
"""Pooled connections a worker's own loops may hold at once besides its task slots: the
fetch loop, the batched acks and the maintenance loop (lease renewal adds one when it runs
on the worker's loop; in its own thread it has its own driver and pool)."""


def worker_registry(tasks: Registry | Iterable[TaskSource]) -> Registry:
    """Return ``tasks`` as a registry; an empty one is refused.

    A worker without tasks would dead-letter every message it takes, so it does not start.

    Args:
        tasks: a :class:`Registry`, or the modules, ``@task`` functions and task classes to
            build one from (see :func:`~asynctasq.tasks.registry.build_registry`).

    Raises:
        ConfigError: no task at all (naming the modules given), or two different tasks
            share a name.
        TypeError: ``tasks`` is not a registry nor a list of modules, tasks and task classes.
    """
    if isinstance(tasks, Registry):
        registry, given = tasks, "the registry given"
    else:
        given_object: object = tasks  # a str or one task is refused by build_registry
        if isinstance(given_object, Iterable) and not isinstance(given_object, str | bytes):
            tasks = list(tasks)
        registry = build_registry(tasks)
        given = _describe(list(tasks))
    if not registry:
        raise ConfigError(
            f"no tasks to run: {given} defines no task, so every message would be "
            "dead-lettered; pass the modules that define your tasks: "
            "run_worker(handle, tasks=[myapp.tasks]) or asynctasq worker --import myapp.tasks"
        )
    return registry


def _describe(sources: list[TaskSource]) -> str:
    """Return what was searched for tasks, e.g. ``"modules app.a, app.b"``."""
    if not sources:
        return "an empty tasks list"
    names = [str(getattr(source, "__name__", source)) for source in sources]
    return f"tasks=[{', '.join(names)}]"


def connections_needed(concurrency: int, *, leases_on_loop: bool) -> int:
    """Return the most pooled connections a worker may use at once.

    Each slot may hold one (settling its task, or the task dispatching through the worker's
    handle), plus :data:`INTERNAL_CONNECTIONS`, plus one when leases are renewed on the loop.
    """
    return concurrency + INTERNAL_CONNECTIONS + (1 if leases_on_loop else 0)


def check_queue_names(driver: Driver, queues: Iterable[str]) -> None:
    """Refuse queue names the driver cannot use, before the worker takes work.

    Drivers with reserved names (RabbitMQ's ``<queue>_dead`` and the like) offer the
    optional ``check_queues(queues)`` method; others accept any non-empty name.

    Raises:
        ConfigError: the driver refused a name (the message names each one and why).
    """
    check = getattr(driver, "check_queues", None)
    if callable(check):
        check(list(queues))


POOL_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "redis": "ASYNCTASQ_REDIS_MAX_CONNECTIONS (redis.max_connections)",
        "postgres": "ASYNCTASQ_POSTGRES_MAX_POOL_SIZE (postgres.max_pool_size)",
        "mysql": "ASYNCTASQ_MYSQL_MAX_POOL_SIZE (mysql.max_pool_size)",
    }
)
"""The setting that sizes each pooled driver's connection pool, for the warning."""


def check_pool_size(driver: Driver, concurrency: int, *, leases_on_loop: bool) -> None:
    """Log a WARNING when ``driver``'s connection pool is smaller than the worker may need.

    Drivers with a bounded pool report it as the optional ``pool_size`` attribute (``None``
    or absent: unbounded or not pooled, nothing to check). A small pool is not an error:
    calls then wait for a free connection, bounded by the driver's pool timeout.

    Source: FIELD-CASES C35 ("Startup warns if pool size < concurrency + internal needs").
    """
    pool_size = getattr(driver, "pool_size", None)
    if not isinstance(pool_size, int):
        return
    needed = connections_needed(concurrency, leases_on_loop=leases_on_loop)
    if pool_size >= needed:
        return
    logger.warning(
        "the %s driver's connection pool holds %d connections but this worker may use %d at "
        "once (concurrency %d + %d for its own loops); calls will wait for a free connection. "
        "Raise %s to at least %d or lower the concurrency",
        driver.name,
        pool_size,
        needed,
        concurrency,
        needed - concurrency,
        POOL_SETTINGS.get(driver.name, "the driver's pool size"),
        needed,
    )
