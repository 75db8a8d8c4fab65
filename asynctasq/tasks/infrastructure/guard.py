"""Pool processes never start pool processes or workers (the unguarded-script case).

A pool process imports the worker's task modules. When the tasks live in the script that
also starts the worker, and that script has no ``if __name__ == "__main__":`` guard, the
import runs ``run_worker(...)`` (or ``ProcessPoolManager(...).initialize()``) again in the
pool process, which would start its own pool processes, which import the script again...
without end. So a pool process marks itself when it starts (:func:`mark_pool_process`),
and :func:`refuse_in_pool_process` — called by ``run_worker`` and before a pool starts a
process — raises :class:`PoolProcessRefusedError` there, naming the cause and the fix.

The pool process answers its worker with that text and ``fatal`` set (see
:class:`~asynctasq.tasks.infrastructure.frames.Ready`); the worker's pool then stops
starting processes for those modules: it fails the worker's start-up, or, for a pool
started on demand, every process task, with this error.

The mark is an environment variable holding the pool process's own pid: a program a task
starts (a subprocess, its own pid) inherits the variable but is not taken for a pool
process. Its name does not start with ``ASYNCTASQ_``, so it is not read as a setting.
"""

from __future__ import annotations

import os

from asynctasq.errors import PoolProcessRefusedError

POOL_PROCESS_VARIABLE = "_ASYNCTASQ_POOL_PROCESS"
"""Set by a pool process to its own pid when it starts."""


def mark_pool_process() -> None:
    """Mark this process as a pool process (called first thing by the pool-process program)."""
    os.environ[POOL_PROCESS_VARIABLE] = str(os.getpid())


def in_pool_process() -> bool:
    """Return whether this process is a pool process (not a program one of its tasks started)."""
    return os.environ.get(POOL_PROCESS_VARIABLE) == str(os.getpid())


def refuse_in_pool_process(what: str) -> None:
    """Raise if this is a pool process, where ``what`` must not happen.

    Args:
        what: what was asked, as the start of a sentence (``"run_worker() was called"``).

    Raises:
        PoolProcessRefusedError: this is a pool process; the message names the likely
            cause (a task module starting a worker or a pool when imported) and the fix.
    """
    if not in_pool_process():
        return
    raise PoolProcessRefusedError(
        f"{what} in a pool process (pid {os.getpid()}): pool processes import "
        "the worker's task modules, and one of them starts a worker or a process pool when "
        "it is imported — usually a script that defines process-pool tasks and calls "
        "run_worker() (or asyncio.run(main())) at its top level. Put that call under "
        '`if __name__ == "__main__":` (or move the tasks to a module of their own); '
        "otherwise every pool process would start pool processes of its own, without end"
    )
