"""The program a pool process runs: read a frame, run the task it names, answer.

The worker starts it as ``python -c "from asynctasq.tasks.infrastructure.child import
main; main()" FD`` (see :mod:`asynctasq.tasks.infrastructure.children`), FD being its end
of a socket pair. It is a fresh interpreter: it imports only this package and the task
modules the worker names in its :class:`~asynctasq.tasks.infrastructure.frames.ChildSpec`
— never the worker's ``__main__`` script, and never a module because a message said so.
A task is looked up by name in the registry built from those modules.

What a pool process keeps (all in one :class:`ChildState`, nothing at module level):

* the registry of the worker's task modules and a handle on the worker's resolved
  configuration, made current in the process's main thread, so a task can dispatch other
  tasks and read ``current_task()``;
* with warm event loops (the pool was ``initialize()``-d) one event loop, made at setup
  and used for every async task; otherwise each async task gets a new loop, closed after
  it (with the services the handle opened on it), and the first such task logs a warning.

A pool process marks itself (:func:`~asynctasq.tasks.infrastructure.guard.mark_pool_process`)
before it imports anything: a task module that runs a worker or starts a pool when imported
(a script without ``if __name__ == "__main__":``) is refused there, and the refusal is
sent back as a :class:`~asynctasq.tasks.infrastructure.frames.Ready` with ``fatal`` set.

Signals: SIGINT and SIGTERM are ignored, so a Ctrl-C or a stop signal sent to the whole
process group leaves running tasks to the worker's grace period; the worker ends a pool
process with :class:`~asynctasq.tasks.infrastructure.frames.Stop` or SIGKILL. A pool
process also exits when the worker is gone: at once when idle (its socket closes), within
a second when busy (a watcher thread sees its parent change).

ContextVars: a pool process does not see values set in the worker (a task's own
``ContextVar`` reads its default there); nothing of the worker's context is pickled.

Source: seed "Warm Event Loops for AsyncProcessTask"; FIELD-CASES C39.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Coroutine
from multiprocessing.connection import Connection
from typing import Any

from asynctasq import context
from asynctasq.errors import PoolProcessRefusedError, SerializationError, TaskNotFoundError
from asynctasq.handle import Handle
from asynctasq.tasks.current import set_running
from asynctasq.tasks.definition import ASYNC_MODES
from asynctasq.tasks.infrastructure.frames import (
    ChildSpec,
    Configure,
    Done,
    Failed,
    Ready,
    Run,
    Setup,
    Stop,
    decode_frame,
    encode_frame,
)
from asynctasq.tasks.infrastructure.guard import mark_pool_process
from asynctasq.tasks.registry import Registry, build_registry

logger = logging.getLogger("asynctasq.pool")

COMMAND = "from asynctasq.tasks.infrastructure.child import main; main()"
"""The ``python -c`` program of a pool process; its one argument is the socket's fd."""

PARENT_CHECK_SECONDS = 1.0
"""How often a pool process checks that the worker that started it is still alive."""

ON_DEMAND_WARNING = (
    "AsyncProcessTask %r ran on an event loop made just for it (falling back to an "
    "on-demand event loop): this pool was not initialised with warm event loops. At worker "
    "start-up, create ProcessPoolManager(async_max_workers=..., async_max_tasks_per_child=...),"
    " await manager.initialize() and set_default_manager(manager). Logged once per pool process."
)


class ChildState:
    """What one pool process holds: its loop, registry and handle (see module docstring)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.loop: asyncio.AbstractEventLoop | None = None
        self.registry = Registry()
        self.handle: Handle | None = None
        self.warned = False

    def serve(self) -> None:
        """Answer frames until :class:`Stop` or until the worker closes its end."""
        try:
            while True:
                try:
                    data = self.connection.recv_bytes()
                except (EOFError, OSError):
                    return
                try:
                    frame = decode_frame(data, "a frame from the worker")
                except SerializationError as exc:
                    self.connection.send_bytes(encode_frame(Failed(exc)))
                    continue
                if isinstance(frame, Stop):
                    return
                self.connection.send_bytes(self.answer(frame))
        finally:
            self.close()

    def answer(self, frame: object) -> bytes:
        """Return the encoded reply to one frame."""
        if isinstance(frame, Setup):
            configure_logging(frame.log_level)
            if frame.warm:
                self.loop = asyncio.new_event_loop()
                asyncio.set_event_loop(self.loop)
            return encode_frame(self.configure(frame.spec))
        if isinstance(frame, Configure):
            return encode_frame(self.configure(frame.spec))
        if isinstance(frame, Run):
            return reply_bytes(self.run(frame), frame.message.task_name)
        error = SerializationError(f"unexpected frame from the worker: {type(frame).__name__}")
        return encode_frame(Failed(error))

    def configure(self, spec: ChildSpec | None) -> Ready:
        """Import the task modules, build the registry, make a handle current."""
        if spec is None:
            return Ready(os.getpid())
        sys.path[:] = list(spec.sys_path)
        logging.getLogger("asynctasq").setLevel(spec.log_level)
        try:
            modules = [importlib.import_module(name) for name in spec.modules]
            registry = build_registry(modules)
        except Exception as exc:
            refused = refusal_in(exc)
            if refused is not None:
                text = f"importing the task modules {list(spec.modules)}: {refused}"
                return Ready(os.getpid(), text, fatal=True)
            return Ready(
                os.getpid(),
                f"cannot load the task modules {list(spec.modules)}: {type(exc).__name__}: {exc}",
            )
        self.close_services()
        self.registry = registry
        self.handle = Handle(spec.config, spec.provenance, env_file=None)
        context.make_current(self.handle)
        return Ready(os.getpid())

    def run(self, frame: Run) -> Done | Failed:
        """Run the task ``frame`` names; return its value or its exception."""
        message = frame.message
        definition = self.registry.find(message.task_name)
        if definition is None:
            return Failed(
                TaskNotFoundError(
                    f"unknown task {message.task_name!r} in the pool process: it is not "
                    "defined in the task modules the worker gave it"
                )
            )
        set_running(message, frame.attempt, frame.worker_id)
        try:
            outcome = definition.invoke(message.args, message.kwargs).execute()
            if definition.mode in ASYNC_MODES and inspect.iscoroutine(outcome):
                outcome = self.run_coroutine(outcome, message.task_name)
        except Exception as exc:
            exc.add_note(f"(raised in pool process {os.getpid()})\n{traceback.format_exc()}")
            return Failed(exc)
        return Done(outcome)

    def run_coroutine(self, coroutine: Coroutine[Any, Any, Any], task_name: str) -> Any:
        """Run an async task's coroutine on the warm loop, or on a loop made for it."""
        if self.loop is not None:
            return self.loop.run_until_complete(coroutine)
        if not self.warned:
            self.warned = True
            logger.warning(ON_DEMAND_WARNING, task_name)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(coroutine)
        finally:
            try:
                loop.run_until_complete(self.aclose_handle())
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def aclose_handle(self) -> None:
        """Close what the handle opened on the running loop; log, never raise, a failure."""
        if self.handle is None:
            return
        try:
            await self.handle.aclose()
        except Exception:
            logger.exception("closing the pool process's connections failed")

    def close_services(self) -> None:
        """Close the warm loop's services (before a reconfiguration or at exit)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.run_until_complete(self.aclose_handle())

    def close(self) -> None:
        """Close the handle's services and the warm loop."""
        with contextlib.suppress(Exception):
            self.close_services()
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            asyncio.set_event_loop(None)


def refusal_in(error: BaseException) -> PoolProcessRefusedError | None:
    """Return the :class:`PoolProcessRefusedError` ``error`` is or was raised from, if any."""
    seen: set[int] = set()
    found: BaseException | None = error
    while found is not None and id(found) not in seen:
        if isinstance(found, PoolProcessRefusedError):
            return found
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    return None


def reply_bytes(reply: Done | Failed, task_name: str) -> bytes:
    """Encode ``reply``; a value or exception that cannot cross becomes a readable error.

    An exception is also unpickled once here: some pickle but cannot be rebuilt (an
    ``__init__`` with other arguments than ``args``), which would fail in the worker.

    Source: FIELD-CASES C39 ("non-picklable exceptions from children are converted to a
    representable error").
    """
    try:
        data = encode_frame(reply)
        if isinstance(reply, Failed):
            pickle.loads(data)  # noqa: S301 -- our own bytes, checked before sending
    except Exception as exc:
        cause = f"{type(exc).__name__}: {exc}"
        if isinstance(reply, Done):
            text = (
                f"the result of task {task_name!r} ({type(reply.value).__name__} object) "
                f"cannot be sent back from its pool process: {cause}"
            )
        else:
            raised = reply.error
            text = (
                f"task {task_name!r} raised {type(raised).__name__}: {_text(raised)} in its "
                f"pool process; that exception cannot be sent back to the worker ({cause})"
            )
        return encode_frame(Failed(SerializationError(text)))
    return data


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return "<unprintable>"


def configure_logging(level: int) -> None:
    """Log to stderr (the worker's) like the worker, each line naming this pool process."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s [pool process %(process)d]: %(message)s",
            stream=sys.stderr,
        )
    logging.getLogger("asynctasq").setLevel(level)


def watch_parent(parent_pid: int) -> None:
    """Exit this process within a second once the worker that started it is gone."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="asynctasq-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """Run a pool process on the socket whose fd is the first argument."""
    arguments = sys.argv[1:] if argv is None else argv
    descriptor = int(arguments[0])
    os.set_inheritable(descriptor, False)  # a task's own subprocesses must not hold it
    mark_pool_process()  # it must never start a worker or pool processes of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    watch_parent(os.getppid())
    ChildState(Connection(descriptor)).serve()
