"""Tortoise ORM models as task arguments: the reference at dispatch, loading in the worker.

At dispatch a saved ``tortoise.models.Model`` instance becomes
``ModelRef("tortoise", "module:Class", (pk,))``; one never saved is refused. (One deleted
with ``await obj.delete()`` cannot be told apart: Tortoise leaves its primary key and
``_saved_in_db`` as they were, so it travels and the worker fails it with
``ModelNotFoundError``.)

In the worker a reference is loaded with ``Model.get_or_none(pk=...)``, fresh from the
database. Tortoise is initialised on first use when it is not usable already (initialised
by your own code and not closed since: :func:`initialised`) from the ``tortoise_orm``
setting (``init(tortoise_config=...)``), in either form ``Tortoise.init`` takes:
``{"connections": ..., "apps": ...}`` or ``{"db_url": ..., "modules": {...}}``. Tortoise
keeps its state in a ``ContextVar``, so the worker initialises it as the global fallback
context that every task of the worker sees (as Tortoise's own FastAPI helper does), and
closes its connections when the worker stops.
Tortoise initialised by your code is used as it is and left open; initialised and then
closed by your code, it is initialised again from ``tortoise_orm``.

Source: SPEC §8; seed/configuration.md ``tortoise_config``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

from tortoise import Tortoise
from tortoise.models import Model

from asynctasq.codec.classes import class_path, find
from asynctasq.codec.refs import ModelRef
from asynctasq.errors import ConfigError, ModelNotFoundError, SerializationError

ORM = "tortoise"


def is_model(value: object) -> bool:
    """Return whether ``value`` is a Tortoise model instance."""
    return isinstance(value, Model)


def reference(value: Any, where: str) -> ModelRef | None:
    """Return the reference for a Tortoise model instance, or ``None`` when not one.

    Raises:
        SerializationError: the instance was never saved, or its class cannot be found by
            its import path.
    """
    if not isinstance(value, Model):
        return None
    kind: Any = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if not getattr(value, "_saved_in_db", value.pk is not None) or value.pk is None:
        raise SerializationError(
            f"cannot serialize {where} (a {name}): it is not saved yet; await its save() "
            "(or create it with Model.create()) before dispatching, and inside "
            "in_transaction() dispatch after the block, once it has committed (the worker "
            "does not see an uncommitted row)"
        )
    path = class_path(kind)
    if path is None:
        raise SerializationError(
            f"cannot serialize {where} (a {name}): its class cannot be found by its import "
            "path; define the model at module level of an importable module"
        )
    return ModelRef(ORM, path, (value.pk,))


def model_class(ref: ModelRef, where: str) -> type[Model]:
    """Return the Tortoise model class ``ref`` names, found among imported modules only.

    Raises:
        SerializationError: no such class is imported here, or it is not a Tortoise model.
    """
    cls = find(ref.model)
    if isinstance(cls, type) and issubclass(cls, Model) and len(ref.pk) == 1:
        return cls
    raise SerializationError(
        f"cannot load {where}: {ref.model!r} is not a Tortoise model class of a module "
        "imported in this worker; a message never imports a module, so list the models "
        "module in tortoise_orm or import it where the tasks are defined (not retried)"
    )


def init_arguments(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the keyword arguments for ``Tortoise.init`` from a ``tortoise_orm`` setting.

    ``{"connections": ..., "apps": ...}`` is passed as ``config=``; any other mapping (e.g.
    ``{"db_url": ..., "modules": {...}}``) as keyword arguments.
    """
    if "connections" in config or "apps" in config:
        arguments: dict[str, Any] = {"config": dict(config)}
    else:
        arguments = dict(config)
    if "_enable_global_fallback" in inspect.signature(Tortoise.init).parameters:
        arguments["_enable_global_fallback"] = True  # every task's context sees it
    return arguments


def initialised() -> bool:
    """Return whether Tortoise is initialised here with its connections configured.

    ``Tortoise.is_inited()`` alone is not enough: on Tortoise 1.x it stays ``True`` after
    ``Tortoise.close_connections()``, which drops the connection settings, so every query
    then fails with "DB configuration not initialised". (Before 1.0 the settings stay and
    closed connections reopen on demand.)
    """
    if not Tortoise.is_inited():
        return False
    try:
        configured = _connections().db_config  # ConfigurationError once the settings are gone
    except Exception:
        return False
    return configured is not None


def _connections() -> Any:
    """Return the current context's ``ConnectionHandler`` (the process-wide one before 1.0)."""
    try:
        from tortoise.connection import get_connections
    except ImportError:  # Tortoise before 1.0
        from tortoise.connection import connections

        return connections
    return get_connections()


class TortoiseModels:
    """Tortoise in one worker: initialised once on first use, closed if it opened it."""

    def __init__(self, config: Mapping[str, Any] | None) -> None:
        self._config = config
        self._lock = asyncio.Lock()
        self._opened = False

    async def ready(self) -> None:
        """Initialise Tortoise from the configuration unless it is usable already.

        Usable means initialised with its connections configured (:func:`initialised`):
        Tortoise that your code initialised and then closed is initialised again here.

        Raises:
            ConfigError: Tortoise is not usable and ``tortoise_orm`` is not set.
        """
        if initialised():
            return
        async with self._lock:
            if initialised():
                return
            if self._config is None:
                raise ConfigError(
                    "a task was given a Tortoise model but Tortoise is not initialised in "
                    "this worker (or its connections were closed): set tortoise_orm "
                    "(init(tortoise_config={...})) or call Tortoise.init() before the "
                    "worker starts"
                )
            await Tortoise.init(**init_arguments(self._config))
            self._opened = True

    async def load(self, ref: ModelRef, where: str) -> Model:
        """Return the row ``ref`` names, loaded fresh.

        Raises:
            ModelNotFoundError: no row has that primary key any more.
            SerializationError: the class is not a Tortoise model imported here.
            ConfigError: Tortoise cannot be initialised (see :meth:`ready`).
        """
        await self.ready()
        found = await model_class(ref, where).get_or_none(pk=ref.pk[0])
        if found is None:
            raise ModelNotFoundError(f"{ref}, passed as {where}, no longer exists (deleted)")
        return found

    async def aclose(self) -> None:
        """Close Tortoise's connections if this worker initialised it."""
        if self._opened:
            self._opened = False
            await Tortoise.close_connections()
