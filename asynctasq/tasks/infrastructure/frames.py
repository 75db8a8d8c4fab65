"""What the worker and a pool process say to each other over their socket.

One frame is one pickled record, framed by :mod:`multiprocessing.connection` (a length
header, then the bytes). The worker sends :class:`Setup` once, :class:`Configure` when
the task modules or configuration change, :class:`Run` per task and :class:`Stop` at the
end; the pool process answers :class:`Ready` to the first two and :class:`Done` or
:class:`Failed` to each :class:`Run`.

The records live here, not in the pool process's program, so that both sides unpickle
them from the same importable module. A frame never holds a callable or a context object:
a task travels as its registered name, and the pool process looks that name up in the
registry it built from the worker's task modules (FIELD-CASES C39: "only picklable,
module-level callables and arguments are sent to children").
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

import attrs

from asynctasq.config.records import Config
from asynctasq.errors import SerializationError
from asynctasq.message import TaskMessage


@attrs.frozen
class ChildSpec:
    """Everything a pool process needs to run a worker's tasks, passed explicitly.

    Pool processes never see the worker's ``ContextVar``: this record is how the worker's
    configuration reaches them (DESIGN "Mind where a ContextVar does not reach").

    Attributes:
        config: the worker handle's resolved configuration (``sqlalchemy_engine`` removed:
            an engine cannot cross a process boundary).
        provenance: where each setting came from (for error messages in the pool process).
        modules: the task modules to import, by name (the modules defining the worker's
            process-pool tasks); nothing else is ever imported on a message's behalf.
        sys_path: the worker's ``sys.path``, so those names resolve the same way.
        log_level: the level of the worker's ``asynctasq`` logger.
    """

    config: Config
    provenance: Mapping[str, str]
    modules: tuple[str, ...]
    sys_path: tuple[str, ...]
    log_level: int


@attrs.frozen
class Setup:
    """First frame to a new pool process: its event-loop mode, and a spec if one is known.

    Attributes:
        warm: keep one event loop for the process's whole life (``initialize()`` was called).
        log_level: the worker's ``asynctasq`` log level.
        spec: the tasks and configuration to load now, or ``None`` (a later
            :class:`Configure` brings them).
    """

    warm: bool
    log_level: int
    spec: ChildSpec | None


@attrs.frozen
class Configure:
    """Load these task modules and make a handle on this configuration current."""

    spec: ChildSpec


@attrs.frozen
class Run:
    """Run one execution of a registered task.

    Attributes:
        message: the decoded task message (its name, arguments, ids).
        attempt: the execution's number, for ``current_task()`` in the pool process.
        worker_id: the worker's id, for ``current_task()``.
    """

    message: TaskMessage
    attempt: int
    worker_id: str


@attrs.frozen
class Stop:
    """End the pool process after closing what its handle opened."""


@attrs.frozen
class Ready:
    """Answer to :class:`Setup` and :class:`Configure`: the pid, and why loading failed.

    Attributes:
        pid: the pool process's pid.
        error: ``""`` when ready; otherwise the reason it cannot run tasks (e.g. a task
            module that fails to import there).
        fatal: no pool process will ever load these modules: importing them started a
            worker or a pool (:mod:`asynctasq.tasks.infrastructure.guard`).
    """

    pid: int
    error: str = ""
    fatal: bool = False


@attrs.frozen
class Done:
    """The task returned ``value``."""

    value: Any


@attrs.frozen
class Failed:
    """The task raised ``error`` (or its result or exception could not be sent back)."""

    error: BaseException


def encode_frame(frame: object) -> bytes:
    """Pickle ``frame`` with the highest protocol (both sides run the same Python)."""
    return pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)


def decode_frame(data: bytes, where: str) -> object:
    """Unpickle one frame.

    Args:
        data: the frame's bytes.
        where: what was being read, for the error (e.g. ``"the reply of task 'm:f'"``).

    Raises:
        SerializationError: the bytes do not unpickle here (e.g. a class this process
            cannot import), naming ``where`` and the cause.
    """
    try:
        return pickle.loads(data)  # noqa: S301 -- our own frames over a private socket pair
    except Exception as exc:
        raise SerializationError(f"{where} cannot be read: {type(exc).__name__}: {exc}") from None
