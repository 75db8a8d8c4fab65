"""The public API is exactly this list; changing it is a deliberate act."""

from __future__ import annotations

import asynctasq

PUBLIC_NAMES = {
    # configuration (seed: "Configuration Functions", "Configuration Options")
    "init",
    "Config",
    "RedisConfig",
    "SQSConfig",
    "PostgresConfig",
    "MySQLConfig",
    "RabbitMQConfig",
    "EventsConfig",
    "TaskDefaultsConfig",
    "ProcessPoolConfig",
    "RepositoryConfig",
    "SQLiteConfig",
    # the handle and scoped overrides (SPEC §1)
    "Handle",
    "configured",
    "current_handle",
    # tasks (SPEC §3)
    "task",
    "Task",
    "AsyncTask",
    "SyncTask",
    "AsyncProcessTask",
    "SyncProcessTask",
    "ProcessPoolManager",
    "TaskConfig",
    "PendingDispatch",
    "dispatch_many",
    "current_task",
    "TaskInfo",
    # services built from the record (SPEC §1)
    "build_driver",
    "run_worker",
    "WorkerStats",
    "Registry",
    "build_registry",
    "run",
    # events and monitoring (SPEC §1, §6; seed "init()")
    "LoggingEventEmitter",
    "RedisEventEmitter",
    "EventEmitter",
    "EventType",
    "TaskEvent",
    "WorkerEvent",
    "MonitoringService",
    # errors (DESIGN "Errors")
    "AsyncTasQError",
    "ConfigError",
    "DriverError",
    "MessageTooLargeError",
    "ModelNotFoundError",
    "SerializationError",
    "TaskNotFoundError",
    "TaskCancelledError",
    "WorkerLostError",
    "ProcessPoolUnavailableError",
    "PoolProcessRefusedError",
    "PoolProcessDiedError",
    "TaskTimeoutError",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(asynctasq.__all__) == PUBLIC_NAMES


def test_all_has_no_duplicates() -> None:
    assert len(asynctasq.__all__) == len(set(asynctasq.__all__))


def test_every_public_name_is_importable_from_the_package() -> None:
    missing = [name for name in PUBLIC_NAMES if not hasattr(asynctasq, name)]
    assert missing == []


def test_nothing_public_leaks_beyond_all() -> None:
    public = {
        name
        for name in vars(asynctasq)
        if not name.startswith("_") and not isinstance(getattr(asynctasq, name), type(asynctasq))
    }
    assert public <= PUBLIC_NAMES


def test_config_get_is_a_classmethod_of_config() -> None:
    assert asynctasq.Config.get().driver == "redis"


def test_every_error_asynctasq_raises_on_purpose_is_importable_from_the_package() -> None:
    from asynctasq import errors

    raised = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.AsyncTasQError)
    }
    assert "PoolProcessRefusedError" in raised
    assert raised <= set(asynctasq.__all__)
