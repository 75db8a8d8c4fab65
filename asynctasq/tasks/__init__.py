"""Tasks: ``@task`` functions and task classes, pending dispatches and dispatch."""

from asynctasq.tasks.bases import AsyncProcessTask, AsyncTask, SyncProcessTask, SyncTask, TaskConfig
from asynctasq.tasks.current import TaskInfo, current_task
from asynctasq.tasks.decorator import Task, task
from asynctasq.tasks.dispatch import dispatch, dispatch_many
from asynctasq.tasks.pending import PendingDispatch

__all__ = [
    "AsyncProcessTask",
    "AsyncTask",
    "PendingDispatch",
    "SyncProcessTask",
    "SyncTask",
    "Task",
    "TaskConfig",
    "TaskInfo",
    "current_task",
    "dispatch",
    "dispatch_many",
    "task",
]
