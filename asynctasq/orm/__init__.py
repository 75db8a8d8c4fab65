"""ORM models as task arguments: they travel as references and are loaded again in the worker.

An SQLAlchemy (2.x) or Tortoise model instance passed to a task — directly, or inside a
list, tuple, set, frozenset or dict value — is replaced at dispatch by a
:class:`~asynctasq.codec.refs.ModelRef` (the class's ``module:qualname`` and the primary
key, composite keys included). The worker loads each row again, fresh from the database,
just before the task runs (inside its timeout), so the task sees the row as it is then:

* SQLAlchemy: through ``sqlalchemy_engine``, one session per execution, open while the task
  runs (lazy relationships work) and closed after (:mod:`asynctasq.orm.sqlalchemy`);
* Tortoise: initialised on first use from ``tortoise_orm`` (:mod:`asynctasq.orm.tortoise`).

Rules:

* an instance never saved (no primary key yet), or an SQLAlchemy instance deleted
  (``session.delete()``, flushed or committed), is refused at dispatch
  (``SerializationError``); so is a model used as a dict key;
* a model cannot be sent to a process-pool task (refused at dispatch: pass the key);
* a row deleted meanwhile fails the attempt with ``ModelNotFoundError``; the task's retry
  policy applies (``should_retry`` can stop it);
* a worker loads only classes of modules it has already imported, and only SQLAlchemy-mapped
  or Tortoise model classes; a message never makes it import anything. A reference to any
  other class fails the attempt with ``SerializationError``, not retried.

This package is where the ORM libraries are imported, and only when they are in use: a
value is checked against an ORM only if that ORM is already imported (``sys.modules``).

Source: SPEC §8; FIELD-CASES C23.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from asynctasq.codec.refs import ModelRef
from asynctasq.errors import SerializationError
from asynctasq.orm.loader import ModelLoader, ModelScope
from asynctasq.orm.walk import holds_references, plain, swap_arguments

__all__ = ["ModelLoader", "ModelRef", "ModelScope", "holds_references", "to_references"]


def reference(value: object, where: str) -> ModelRef | None:
    """Return the reference for an ORM model instance, or ``None`` when ``value`` is not one.

    Raises:
        SerializationError: an unsaved instance, or a class not importable by its path.
    """
    kind = type(value)
    if hasattr(kind, "_sa_class_manager") and "sqlalchemy" in sys.modules:  # a mapped class
        from asynctasq.orm import sqlalchemy

        return sqlalchemy.reference(value, where)
    if hasattr(kind, "_meta") and "tortoise" in sys.modules:
        from asynctasq.orm import tortoise

        return tortoise.reference(value, where)
    return None


def is_model(value: object) -> bool:
    """Return whether ``value`` is a model instance (SQLAlchemy-mapped or Tortoise).

    A ``tuple`` or ``frozenset`` (what else can be a dict key) counts if it holds one.
    """
    kind = type(value)
    if kind is tuple or kind is frozenset:
        return any(map(is_model, value))  # type: ignore[call-overload]
    if hasattr(kind, "_sa_class_manager") and "sqlalchemy" in sys.modules:
        return True
    if hasattr(kind, "_meta") and "tortoise" in sys.modules:
        from asynctasq.orm import tortoise

        return tortoise.is_model(value)
    return False


def check_key(key: object, where: str) -> None:
    """Refuse a model used as a dict key (``where`` names the dict).

    Raises:
        SerializationError: ``key`` is a model, or a tuple or frozenset holding one.
    """
    if is_model(key):
        raise SerializationError(
            f"cannot serialize {where}: a model cannot be a dict key (found a "
            f"{type(key).__name__} key); models travel only as values: key the dict by "
            "the primary key instead, e.g. {user.id: user}"
        )


def to_references(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], *, task: str, process: bool = False
) -> tuple[tuple[Any, ...], Mapping[str, Any]]:
    """Return the arguments with every ORM model instance replaced by its reference.

    Args:
        args: the task's positional arguments.
        kwargs: its keyword arguments.
        task: the task name, for errors.
        process: the task runs in the process pool (models are refused).

    Returns:
        The same objects when nothing was replaced.

    Raises:
        SerializationError: a model is unsaved or deleted, not importable by its path,
            sent to a process-pool task, or used as a dict key; the message names the
            argument, e.g. ``args[0]``.
    """
    if plain(args, kwargs):
        return args, kwargs

    def swap(value: Any, where: str) -> Any:
        found = reference(value, where)
        if found is not None and process:
            raise SerializationError(
                f"cannot serialize {where} ({found}) for task {task!r}: it runs in the "
                "process pool, where models are not loaded; pass the primary key instead"
            )
        return value if found is None else found

    new_args, new_kwargs = swap_arguments(args, kwargs, swap, check_key)
    return new_args, new_kwargs
