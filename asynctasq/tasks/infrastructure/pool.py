"""The pool: at most ``size`` pool processes, handed out one task at a time.

Rules (FIELD-CASES C39):

* a task gets an idle process, or a new one while fewer than ``size`` exist, or waits
  for one (a waiting task's timeout has not started);
* a process is retired after ``max_tasks_per_child`` answers, and one that died, ran
  past its task's timeout or whose task was cancelled is killed; either way it is
  replaced — at once in an initialised pool (so it stays at ``size``), else when a task
  next needs one — and tasks waiting for a process are never stranded;
* a dead process fails only the task it was running, with
  :class:`~asynctasq.errors.PoolProcessDiedError` saying how it ended; the pool and
  the other processes carry on;
* a process that refuses its task modules because importing them started a worker or a
  pool (:mod:`~asynctasq.tasks.infrastructure.guard`) stops the pool from starting more:
  the waiting and later tasks fail with that refusal until other modules are bound; and
  in a pool process, no pool starts a process at all.

A pool is used from one event loop at a time (the worker's) but keeps no loop-bound
object between calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from asynctasq.errors import (
    PoolProcessDiedError,
    PoolProcessRefusedError,
    ProcessPoolUnavailableError,
    SerializationError,
)
from asynctasq.tasks.infrastructure.children import PoolProcess, ProcessGone, describe_exit
from asynctasq.tasks.infrastructure.frames import (
    ChildSpec,
    Configure,
    Done,
    Failed,
    Run,
    encode_frame,
)
from asynctasq.tasks.infrastructure.guard import refuse_in_pool_process

logger = logging.getLogger("asynctasq.pool")

STOP_GRACE_SECONDS = 2.0
"""How long an idle pool process may take to close its connections when the pool closes."""


class ProcessPool:
    """Pool processes for CPU-bound tasks (see the module docstring for the rules).

    Args:
        size: the most processes at once (>= 1).
        max_tasks_per_child: retire a process after this many tasks; ``None`` never does.

    Attributes:
        initialized: processes get a warm event loop and are replaced at once.
        spec: what new processes load (the worker's task modules and configuration).
        started: how many processes this pool has started in total.
        refusal: why no process can load :attr:`spec` (an unguarded script), or ``None``.
    """

    def __init__(self, size: int, max_tasks_per_child: int | None) -> None:
        self.size = size
        self.max_tasks_per_child = max_tasks_per_child
        self.initialized = False
        self.spec: ChildSpec | None = None
        self.started = 0
        self.refusal: PoolProcessRefusedError | None = None
        self.closed = False
        self._processes: set[PoolProcess] = set()
        self._idle: deque[PoolProcess] = deque()
        self._waiters: deque[asyncio.Future[PoolProcess | None]] = deque()
        self._starting = 0
        self._background: set[asyncio.Task[None]] = set()

    @property
    def pids(self) -> tuple[int, ...]:
        """The pids of the live pool processes, sorted."""
        return tuple(sorted(p.pid for p in self._processes if p.alive()))

    async def fill(self) -> None:
        """Start processes until there are ``size`` (concurrently); wait until all are ready.

        Raises:
            ProcessPoolUnavailableError: a process could not start (the others are kept).
        """
        missing = self.size - len(self._processes) - self._starting
        results = await asyncio.gather(
            *(self._start_idle() for _ in range(missing)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def configure_idle(self) -> None:
        """Load :attr:`spec` in every idle process now, rather than before its next task."""
        spec = self.spec
        idle = [p for p in self._idle if spec is not None and p.spec is not spec]
        for process in idle:
            self._idle.remove(process)
        results = await asyncio.gather(
            *(self._configure(p, spec) for p in idle if spec is not None), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _configure(self, process: PoolProcess, spec: ChildSpec) -> None:
        try:
            await process.load(Configure(spec), spec)
        except BaseException as exc:
            self._retire(process, kill=True)
            self._refused(exc)
            raise
        self._release(process)

    def _refused(self, error: BaseException) -> None:
        """After a process refused the task modules: fail every waiting task, start no more."""
        if not isinstance(error, PoolProcessRefusedError) or self.refusal is not None:
            return
        self.refusal = error
        logger.error("the process pool stops starting processes: %s", error)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolProcessRefusedError(str(error)))

    async def run(
        self,
        frame: Run,
        timeout_seconds: float | None,
        started: Callable[[], None] | None = None,
    ) -> Done | Failed:
        """Run one task execution in a pool process and return its answer.

        Args:
            frame: the task message, attempt and worker id.
            timeout_seconds: the task's timeout, counted from when the process got the
                task; past it the process is killed. ``None``: no limit.
            started: called once a process is ready for the task, just before it is sent
                (not while the task waits for a free process); not called when the run
                fails or is cancelled before that.

        Returns:
            :class:`Done` with the value, or :class:`Failed` with the task's exception
            (or a ``SerializationError`` when its result or exception could not cross).

        Raises:
            TimeoutError: the task ran past ``timeout_seconds`` (its process was killed);
                ``args[0]`` is how long it ran, in seconds.
            PoolProcessDiedError: the process died while running it.
            SerializationError: the task's arguments cannot be pickled (nothing was sent).
            ProcessPoolUnavailableError: no process could be started or loaded.
        """
        name = frame.message.task_name
        data = _encode_run(frame)
        process = await self._acquire()
        try:
            if self.spec is not None and process.spec is not self.spec:
                await process.load(Configure(self.spec), self.spec)
            if started is not None:
                started()
            process.send(data)
            sent = time.monotonic()
            reply = await process.receive(timeout_seconds, f"the reply of task {name!r}")
        except TimeoutError:
            self._retire(process, kill=True)
            raise TimeoutError(time.monotonic() - sent) from None
        except ProcessGone:
            self._retire(process, kill=True)
            code = await process.wait_exit()
            raise PoolProcessDiedError(
                f"task {name!r} ({frame.message.task_id}): its pool process {process.pid} "
                f"{describe_exit(code)} before returning"
            ) from None
        except SerializationError:  # the reply could not be read; the process is fine
            self._answered(process)
            raise
        except BaseException as exc:  # past the timeout, cancelled, or it could not load
            self._retire(process, kill=True)
            self._refused(exc)
            raise
        self._answered(process)
        if not isinstance(reply, Done | Failed):
            raise SerializationError(f"unexpected reply to task {name!r}: {reply!r}")
        return reply

    def _answered(self, process: PoolProcess) -> None:
        """Count an answered task; retire the process after its last, else free it."""
        process.tasks_done += 1
        if self._used_up(process):
            self._retire(process, kill=False)
        else:
            self._release(process)

    def _used_up(self, process: PoolProcess) -> bool:
        limit = self.max_tasks_per_child
        return limit is not None and process.tasks_done >= limit

    def _check_usable(self) -> None:
        """Raise if no task can get a process: the pool is shut down, or was refused."""
        if self.closed:
            raise ProcessPoolUnavailableError("the process pool has been shut down")
        if self.refusal is not None:
            raise PoolProcessRefusedError(str(self.refusal))

    async def _acquire(self) -> PoolProcess:
        while True:
            self._check_usable()
            while self._idle:
                process = self._idle.popleft()
                if process.alive():
                    return process
                self._retire(process, kill=True)
            if len(self._processes) + self._starting < self.size:
                return await self._start()
            waiter: asyncio.Future[PoolProcess | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                found = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    handed = waiter.result()
                    if handed is not None:
                        self._release(handed)
                    else:
                        self._wake(None)
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if found is not None:
                return found

    async def _start(self) -> PoolProcess:
        """Start one process (counted while starting) and return it, busy.

        Raises:
            PoolProcessRefusedError: this is a pool process, or the task modules start a
                worker or a pool when imported (then no process will be started again).
            ProcessPoolUnavailableError: the process could not start or load the modules.
        """
        refuse_in_pool_process("a process pool was asked to start a process")
        self._check_usable()
        self._starting += 1
        try:
            process = await PoolProcess.start(
                warm=self.initialized,
                log_level=logging.getLogger("asynctasq").getEffectiveLevel(),
                spec=self.spec,
            )
        except BaseException as exc:
            self._refused(exc)
            self._wake(None)  # the place is free again: let a waiting task try
            raise
        finally:
            self._starting -= 1
        self.started += 1
        if self.closed:
            await process.kill()
            raise ProcessPoolUnavailableError("the process pool has been shut down")
        self._processes.add(process)
        logger.debug("pool process %d started (%d live)", process.pid, len(self._processes))
        return process

    async def _start_idle(self) -> None:
        self._release(await self._start())

    def _wake(self, process: PoolProcess | None) -> bool:
        """Hand ``process`` (or a free place, ``None``) to the first waiting task."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(process)
                return True
        return False

    def _release(self, process: PoolProcess) -> None:
        if self.closed:
            self._retire(process, kill=False)
        elif not self._wake(process):
            self._idle.append(process)

    def _retire(self, process: PoolProcess, *, kill: bool) -> None:
        """Take ``process`` out of the pool, end it in the background, and replace it."""
        self._processes.discard(process)
        with contextlib.suppress(ValueError):
            self._idle.remove(process)
        ending = process.kill() if kill else process.stop(STOP_GRACE_SECONDS)
        self._spawn(_quietly(ending))
        if self.closed:
            return
        if not self._wake(None) and self.initialized:
            self._spawn(self._refill())

    async def _refill(self) -> None:
        if self.closed or self.refusal is not None:
            return
        if len(self._processes) + self._starting >= self.size:
            return
        try:
            self._release(await self._start())
        except ProcessPoolUnavailableError as exc:
            if not self.closed:
                logger.error("could not replace a pool process: %s", exc)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Stop every process: idle ones are asked to end, busy ones are killed."""
        self.closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(
                    ProcessPoolUnavailableError("the process pool has been shut down")
                )
        idle = set(self._idle)
        self._idle.clear()
        endings = [
            process.stop(STOP_GRACE_SECONDS) if process in idle else process.kill()
            for process in self._processes
        ]
        self._processes.clear()
        await asyncio.gather(*endings, return_exceptions=True)
        while self._background:  # replacements still starting, retired processes ending
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def close_now(self) -> None:
        """Stop every process without an event loop (garbage collection, exit)."""
        self.closed = True
        for process in list(self._processes):
            process.close_now()
        self._processes.clear()
        self._idle.clear()


def _encode_run(frame: Run) -> bytes:
    """Pickle a :class:`Run` frame, or say which task's arguments cannot cross."""
    try:
        return encode_frame(frame)
    except Exception as exc:
        message = frame.message
        raise SerializationError(
            f"the arguments of task {message.task_name!r} ({message.task_id}) cannot be sent "
            f"to a pool process: {type(exc).__name__}: {exc}"
        ) from None


async def _quietly(ending: Coroutine[Any, Any, Any]) -> None:
    try:
        await ending
    except Exception:
        logger.exception("ending a pool process failed")
