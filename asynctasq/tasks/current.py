"""Which task execution is running here: ``current_task()`` inside a task body.

Before it calls a task the worker records ``(message, attempt, worker_id)`` with
:func:`set_running` in the one ContextVar of :mod:`asynctasq.context`, so the body (async
on the loop, or sync in a worker thread, which runs in a copy of the context) can read its
id and attempt number. Outside a task it is ``None``.
"""

from __future__ import annotations

import attrs

from asynctasq import context
from asynctasq.message import TaskMessage


@attrs.frozen
class TaskInfo:
    """The running execution.

    Attributes:
        task_id: the id ``dispatch()`` returned.
        task_name: the task name.
        queue: the queue it was delivered from.
        attempt: this execution's number, 1 for the first (crashed executions count).
        max_attempts: executions allowed in total.
        worker_id: the worker running it (``hostname-pid-xxxxxx``).
        correlation_id: the tracing id given at dispatch, or ``None``.
    """

    task_id: str
    task_name: str
    queue: str
    attempt: int
    max_attempts: int
    worker_id: str
    correlation_id: str | None = None


def set_running(message: TaskMessage, attempt: int, worker_id: str) -> None:
    """Record the execution about to run in this context (the worker calls it; cheap)."""
    context.make_running((message, attempt, worker_id))


def current_task() -> TaskInfo | None:
    """Return the execution running in this context, or ``None`` outside a task."""
    running: tuple[TaskMessage, int, str] | None = context.running()
    if running is None:
        return None
    message, attempt, worker_id = running
    return TaskInfo(
        task_id=message.task_id,
        task_name=message.task_name,
        queue=message.queue,
        attempt=attempt,
        max_attempts=message.max_attempts,
        worker_id=worker_id,
        correlation_id=message.correlation_id,
    )
