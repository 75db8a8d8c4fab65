"""The worker's process pool: which manager, loaded with which task modules, and when it ends.

At start-up :func:`open_worker_pool` looks at the worker's registry. No process-pool task
(``process=True``, ``AsyncProcessTask``, ``SyncProcessTask``): no pool. Otherwise the
current handle's default manager (``set_default_manager``) is used as it is, or a manager
is built from ``config.process_pool`` and initialised (warm event loops, every process
started before the first task). Either way the pool processes load a
:class:`~asynctasq.tasks.infrastructure.frames.ChildSpec`: the worker handle's resolved
configuration and the names of the modules that define its process-pool tasks — the
modules the worker itself was given, never one a message names.

A process-pool task defined inside a function (its ``__qualname__`` has ``<locals>``) or
in a ``__main__`` with no importable name cannot be found by a pool process: it is named
in a start-up warning, and each of its messages is dead-lettered at once with
``ProcessPoolUnavailableError`` saying why.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from asynctasq.handle import Handle
from asynctasq.tasks.definition import PROCESS_MODES, TaskDefinition
from asynctasq.tasks.infrastructure.frames import ChildSpec
from asynctasq.tasks.infrastructure.process_pool_manager import (
    ProcessPoolManager,
    build_process_pool,
)
from asynctasq.tasks.registry import Registry

logger = logging.getLogger("asynctasq.worker")


def _frozen(reasons: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(reasons))


@attrs.frozen
class WorkerPool:
    """The pool one worker run uses.

    Attributes:
        manager: the pool, or ``None`` when none of the process-pool tasks can use one.
        owned: the worker built it (and shuts it down when it stops).
        unpoolable: task name -> why a pool process cannot run it.
    """

    manager: ProcessPoolManager | None
    owned: bool
    unpoolable: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen)


def unpoolable_reason(definition: TaskDefinition) -> str:
    """Return why a pool process cannot find ``definition``'s task, or ``""`` when it can."""
    if not definition.module:
        return (
            f"task {definition.name!r} is defined in a __main__ with no importable name; pool "
            "processes import tasks by module name: define it in an importable module"
        )
    if "<locals>" in definition.qualname:
        return (
            f"task {definition.name!r} is defined inside a function ({definition.qualname}); "
            "pool processes import tasks by module name: define it at the top level of "
            f"module {definition.module!r}"
        )
    return ""


def child_spec(handle: Handle, modules: tuple[str, ...]) -> ChildSpec:
    """Return what pool processes load: ``handle``'s configuration and these task modules."""
    config: Any = handle.config
    if config.sqlalchemy_engine is not None:  # an engine cannot cross a process boundary
        config = attrs.evolve(config, sqlalchemy_engine=None)
    return ChildSpec(
        config=config,
        provenance=dict(handle.provenance),
        modules=modules,
        sys_path=tuple(sys.path),
        log_level=logging.getLogger("asynctasq").getEffectiveLevel(),
    )


async def open_worker_pool(handle: Handle, registry: Registry) -> WorkerPool | None:
    """Return the pool for ``registry``'s process-pool tasks, started and loaded; or ``None``.

    Raises:
        ProcessPoolUnavailableError: a pool process could not start or could not import
            the task modules (a worker-built pool is shut down again first).
    """
    process_tasks = [d for d in registry.definitions.values() if d.mode in PROCESS_MODES]
    if not process_tasks:
        return None
    reasons = {d.name: unpoolable_reason(d) for d in process_tasks}
    unpoolable = {name: reason for name, reason in reasons.items() if reason}
    for reason in unpoolable.values():
        logger.warning("%s; its messages will be dead-lettered", reason)
    modules = tuple(sorted({d.module for d in process_tasks if d.name not in unpoolable}))
    if not modules:
        return WorkerPool(None, owned=False, unpoolable=unpoolable)
    given = handle.process_pool_manager
    manager = given if isinstance(given, ProcessPoolManager) else None
    owned = manager is None
    if manager is None:
        manager = build_process_pool(handle.config.process_pool)
    try:
        await manager.bind(child_spec(handle, modules))
        if owned:
            await manager.initialize()
    except BaseException:
        if owned:
            await manager.shutdown()
        raise
    logger.info(
        "process pool: %d process(es) (%s event loops), max_tasks_per_child=%s, %s; "
        "task modules: %s",
        manager.size,
        "warm" if manager.initialized else "on-demand",
        manager.max_tasks_per_child,
        "built from process_pool" if owned else "the handle's default manager",
        ", ".join(modules),
    )
    return WorkerPool(manager, owned=owned, unpoolable=unpoolable)


async def close_worker_pool(pool: WorkerPool | None) -> None:
    """Shut the pool down if the worker built it (a handle's default manager stays up)."""
    if pool is not None and pool.owned and pool.manager is not None:
        await pool.manager.shutdown()
