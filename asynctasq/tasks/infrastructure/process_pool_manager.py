"""The process pool for CPU-bound tasks: :class:`ProcessPoolManager` and the default one.

Tasks of modes ``sync_process`` (``SyncProcessTask``, ``@task(process=True)`` on a
``def``) and ``async_process`` (``AsyncProcessTask``, ``@task(process=True)`` on an
``async def``) run in pool processes, so CPU-bound work neither blocks the worker's event
loop nor competes for its GIL. One pool serves both modes; it holds at most ``size``
processes. Warm event loops, from the seed::

    from asynctasq import ProcessPoolManager

    async def init_worker():
        manager = ProcessPoolManager(async_max_workers=4, async_max_tasks_per_child=100)
        await manager.initialize()      # every pool process now has its event loop

    asyncio.run(init_worker())

Which pool a worker uses: the current handle's default manager when one was set with
:func:`set_default_manager` (the manager is held by the handle, not by this module: there
is no process-wide default), else a pool the worker builds from
``config.process_pool`` with :func:`build_process_pool`, initialises (warm loops, all
processes started) when it starts, and shuts down when it stops. A worker whose tasks
include no process-pool task starts no pool.

Warm versus on-demand event loops: a manager that was ``initialize()``-d starts all its
processes at once, each keeping one event loop for every async task it runs (and the
connections its tasks open through the handle stay open between tasks). A manager used
without ``initialize()`` starts processes when tasks need them, and each async task gets
an event loop made for it and closed after it; the first such task in each process logs
the "falling back to on-demand event loop" warning.

What crosses into a pool process, and what does not: the task's registered name, its
arguments and ids (pickled), and the worker's resolved configuration with the names of the
modules defining its process-pool tasks (:class:`~asynctasq.tasks.infrastructure.frames.ChildSpec`,
given when the pool process starts). The pool process imports those modules itself, looks
the task up by name, and makes a handle on that configuration current, so the task can
dispatch other tasks and read ``current_task()``. Not carried over: ``ContextVar`` values
set in the worker (a pool process sees each variable's default), the ``event_emitters``
objects passed to ``init()`` (emitters the configuration enables still work), and
``sqlalchemy_engine``. A task must therefore be defined at the top level of an importable
module; its hooks ``should_retry()`` and ``failed()`` run in the worker process.

Faults (FIELD-CASES C39): arguments that cannot be pickled, and a result or exception
that cannot be sent back, fail the task with a ``SerializationError`` naming it; a pool
process that dies (``os._exit``, a signal, a segfault, the out-of-memory killer) fails
only its task with ``PoolProcessDiedError`` — one attempt under the normal retry rules —
and is replaced; a task past its ``timeout`` has its process killed and fails with
``TaskTimeoutError``. The pool never breaks for good.

Pool processes are fresh interpreters started with :mod:`subprocess` (POSIX only); why,
and why not ``fork`` or ``ProcessPoolExecutor``, is in
:mod:`asynctasq.tasks.infrastructure.children`.

Source: seed "Process Pool Configuration", "Warm Event Loops for AsyncProcessTask";
SPEC §3, §8; FIELD-CASES C39.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from types import TracebackType

from asynctasq import context
from asynctasq.config.records import MAX_POOL_PROCESSES, ProcessPoolConfig
from asynctasq.errors import ConfigError
from asynctasq.handle import current_handle
from asynctasq.tasks.infrastructure.frames import ChildSpec, Done, Failed, Run
from asynctasq.tasks.infrastructure.pool import ProcessPool


def cpu_count() -> int:
    """Return the CPUs this process may run on (``sched_getaffinity``), else ``os.cpu_count()``.

    This is what ``size=None`` / ``async_max_workers=None`` means.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _checked(name: str, value: int | None, most: int | None = None) -> int | None:
    """Return ``value`` if it is ``None`` or an integer from 1 to ``most``; else raise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"ProcessPoolManager({name}={value!r}): must be an integer >= 1 or None")
    if most is not None and value > most:
        raise ConfigError(
            f"ProcessPoolManager({name}={value!r}): must be at most {most} "
            "(one pool process per CPU is the useful size; None = the CPU count)"
        )
    return value


class ProcessPoolManager:
    """A pool of processes for ``AsyncProcessTask`` and ``SyncProcessTask`` tasks.

    Args:
        async_max_workers: how many pool processes at most (the seed's name; the pool runs
            both modes), up to :data:`~asynctasq.config.records.MAX_POOL_PROCESSES` (1024);
            ``None`` = the CPU count (:func:`cpu_count`).
        async_max_tasks_per_child: replace a process after this many tasks (recommended
            100-1000 for code that leaks memory); ``None`` = never.

    Raises:
        ConfigError: a value that is not ``None`` nor an integer >= 1, or
            ``async_max_workers`` above 1024.

    Use ``await manager.initialize()`` for warm event loops, then
    :func:`set_default_manager` so that workers on the current handle use it; close it with
    ``await manager.shutdown()`` or ``async with manager:``. A manager nobody refers to any
    more, or still running at interpreter exit, stops its processes.
    """

    def __init__(
        self, async_max_workers: int | None = None, async_max_tasks_per_child: int | None = None
    ) -> None:
        self.async_max_workers = _checked(
            "async_max_workers", async_max_workers, MAX_POOL_PROCESSES
        )
        self.async_max_tasks_per_child = _checked(
            "async_max_tasks_per_child", async_max_tasks_per_child
        )
        self._pool = ProcessPool(
            self.async_max_workers or min(cpu_count(), MAX_POOL_PROCESSES),
            self.async_max_tasks_per_child,
        )
        self._finalizer = weakref.finalize(self, self._pool.close_now)

    def __repr__(self) -> str:
        return (
            f"ProcessPoolManager(async_max_workers={self.async_max_workers!r}, "
            f"async_max_tasks_per_child={self.async_max_tasks_per_child!r}, "
            f"initialized={self.initialized}, live={len(self.pids)})"
        )

    @property
    def size(self) -> int:
        """The most pool processes at once."""
        return self._pool.size

    @property
    def max_tasks_per_child(self) -> int | None:
        """Tasks after which a pool process is replaced, or ``None``."""
        return self._pool.max_tasks_per_child

    @property
    def initialized(self) -> bool:
        """Whether :meth:`initialize` ran (warm event loops, processes kept at ``size``)."""
        return self._pool.initialized

    @property
    def pids(self) -> tuple[int, ...]:
        """The pids of the live pool processes, sorted."""
        return self._pool.pids

    @property
    def processes_started(self) -> int:
        """How many pool processes this manager has started in total (replacements too)."""
        return self._pool.started

    async def initialize(self) -> None:
        """Start every pool process now, each with a warm event loop; wait until ready.

        Idempotent: a second call only starts processes that are missing. Processes
        started later (replacements after ``async_max_tasks_per_child`` tasks, a crash or
        a timeout) get a warm loop too, and are started at once.

        Raises:
            ProcessPoolUnavailableError: a pool process could not start or could not load
                the worker's task modules (the reason is in the message).
        """
        if self._pool.closed:
            self._pool = ProcessPool(self._pool.size, self._pool.max_tasks_per_child)
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, self._pool.close_now)
        self._pool.initialized = True
        await self._pool.fill()

    async def bind(self, spec: ChildSpec) -> None:
        """Have the pool processes load ``spec`` (a worker's task modules and configuration).

        Idle processes load it now; busy ones before their next task; new ones at start.
        A refusal of the previous modules (:mod:`~asynctasq.tasks.infrastructure.guard`)
        is forgotten.

        Raises:
            ProcessPoolUnavailableError: an idle process could not load ``spec``
                (``PoolProcessRefusedError``: importing it starts a worker or a pool).
        """
        self._pool.spec = spec
        self._pool.refusal = None
        await self._pool.configure_idle()

    async def run(
        self,
        frame: Run,
        timeout_seconds: float | None,
        started: Callable[[], None] | None = None,
    ) -> Done | Failed:
        """Run one task execution in a pool process (the worker calls this).

        ``started()`` is called when a pool process takes the task (a task waiting for a
        free process has not started). See
        :meth:`asynctasq.tasks.infrastructure.pool.ProcessPool.run` for the answers and
        errors.
        """
        return await self._pool.run(frame, timeout_seconds, started)

    async def shutdown(self) -> None:
        """Stop every pool process (idle ones close their connections first).

        Running tasks are not waited for: their processes are killed. The manager can be
        initialised again afterwards.
        """
        await self._pool.close()
        self._finalizer.detach()

    async def __aenter__(self) -> ProcessPoolManager:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()


def build_process_pool(config: ProcessPoolConfig) -> ProcessPoolManager:
    """Return a (not yet started) manager sized by a ``process_pool`` configuration group.

    Args:
        config: ``size`` (``None`` = CPU count) and ``max_tasks_per_child`` (``None`` =
            never replace).

    Source: seed "Process Pool Configuration".
    """
    return ProcessPoolManager(
        async_max_workers=config.size, async_max_tasks_per_child=config.max_tasks_per_child
    )


def set_default_manager(manager: ProcessPoolManager | None) -> None:
    """Make ``manager`` the pool that workers on the *current handle* use (``None`` clears it).

    The manager is stored on the current handle (``handle.process_pool_manager``), not in
    a global: another handle — a ``configured()`` block's, or another ``init()`` — has its
    own (none by default). The worker does not shut a manager set here down; its owner does.

    Raises:
        ConfigError: no handle is current ("call asynctasq.init() first").
        TypeError: ``manager`` is not a :class:`ProcessPoolManager` nor ``None``.

    Source: seed "Warm Event Loops for AsyncProcessTask" (importable from this module).
    """
    if manager is not None and not isinstance(manager, ProcessPoolManager):
        raise TypeError(
            f"set_default_manager() takes a ProcessPoolManager or None, got {manager!r}"
        )
    current_handle().process_pool_manager = manager


def get_default_manager() -> ProcessPoolManager | None:
    """Return the current handle's default manager, or ``None`` (also with no handle)."""
    handle = context.current()
    found = getattr(handle, "process_pool_manager", None)
    return found if isinstance(found, ProcessPoolManager) else None
