"""asynctasq: an async-first background task queue for Python.

Public API: import from here. Configuration (``init``, ``configured``, ``Config`` and its
group records), tasks (``task``, the task base classes, ``dispatch_many``), the worker
(``run_worker``), events (``LoggingEventEmitter``, ``RedisEventEmitter``, the event records),
monitoring (``MonitoringService``), ``run`` and the errors.
"""

from asynctasq.config.records import (
    Config,
    EventsConfig,
    MySQLConfig,
    PostgresConfig,
    ProcessPoolConfig,
    RabbitMQConfig,
    RedisConfig,
    RepositoryConfig,
    SQLiteConfig,
    SQSConfig,
    TaskDefaultsConfig,
)
from asynctasq.drivers import build_driver
from asynctasq.errors import (
    AsyncTasQError,
    ConfigError,
    DriverError,
    MessageTooLargeError,
    ModelNotFoundError,
    PoolProcessDiedError,
    PoolProcessRefusedError,
    ProcessPoolUnavailableError,
    SerializationError,
    TaskCancelledError,
    TaskNotFoundError,
    TaskTimeoutError,
    WorkerLostError,
)
from asynctasq.events.emitters import EventEmitter, LoggingEventEmitter, RedisEventEmitter
from asynctasq.events.records import EventType, TaskEvent, WorkerEvent
from asynctasq.handle import Handle, configured, current_handle, init
from asynctasq.monitoring import MonitoringService
from asynctasq.runner import run
from asynctasq.tasks import (
    AsyncProcessTask,
    AsyncTask,
    PendingDispatch,
    Registry,
    SyncProcessTask,
    SyncTask,
    Task,
    TaskConfig,
    TaskInfo,
    build_registry,
    current_task,
    dispatch_many,
    task,
)
from asynctasq.tasks.infrastructure.process_pool_manager import ProcessPoolManager
from asynctasq.worker.run import run_worker
from asynctasq.worker.state import WorkerStats

__all__ = [
    "AsyncProcessTask",
    "AsyncTasQError",
    "AsyncTask",
    "Config",
    "ConfigError",
    "DriverError",
    "EventEmitter",
    "EventType",
    "EventsConfig",
    "Handle",
    "LoggingEventEmitter",
    "MessageTooLargeError",
    "ModelNotFoundError",
    "MonitoringService",
    "MySQLConfig",
    "PendingDispatch",
    "PoolProcessDiedError",
    "PoolProcessRefusedError",
    "PostgresConfig",
    "ProcessPoolConfig",
    "ProcessPoolManager",
    "ProcessPoolUnavailableError",
    "RabbitMQConfig",
    "RedisConfig",
    "RedisEventEmitter",
    "Registry",
    "RepositoryConfig",
    "SQLiteConfig",
    "SQSConfig",
    "SerializationError",
    "SyncProcessTask",
    "SyncTask",
    "Task",
    "TaskCancelledError",
    "TaskConfig",
    "TaskDefaultsConfig",
    "TaskEvent",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "WorkerEvent",
    "WorkerLostError",
    "WorkerStats",
    "build_driver",
    "build_registry",
    "configured",
    "current_handle",
    "current_task",
    "dispatch_many",
    "init",
    "run",
    "run_worker",
    "task",
]
