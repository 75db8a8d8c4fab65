"""Tasks: ``@task`` functions and task classes, pending dispatches, dispatch, registries."""

from asynctasq.tasks.bases import AsyncProcessTask, AsyncTask, SyncProcessTask, SyncTask, TaskConfig
from asynctasq.tasks.current import TaskInfo, current_task
from asynctasq.tasks.decorator import Task, task
from asynctasq.tasks.dispatch import dispatch, dispatch_many
from asynctasq.tasks.pending import PendingDispatch
from asynctasq.tasks.registry import Registry, build_registry

__all__ = [
    "AsyncProcessTask",
    "AsyncTask",
    "PendingDispatch",
    "Registry",
    "SyncProcessTask",
    "SyncTask",
    "Task",
    "TaskConfig",
    "TaskInfo",
    "build_registry",
    "current_task",
    "dispatch",
    "dispatch_many",
    "task",
]
