"""The worker's model loader: built from the configuration, one scope per task execution.

:class:`ModelLoader` is made when a worker starts (checking ``sqlalchemy_engine`` at
once) and closed when it stops: the engine is disposed, and Tortoise's connections are
closed if the worker initialised it. Nothing connects before a task needs a model.

Each execution whose arguments hold references opens a :class:`ModelScope`, loads them
(:meth:`ModelScope.load_arguments`, which then ends the read transaction), runs, and
closes it (:meth:`ModelScope.aclose`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from asynctasq.codec.refs import ModelRef
from asynctasq.config.records import Config
from asynctasq.errors import ConfigError, SerializationError
from asynctasq.orm.walk import load_arguments

logger = logging.getLogger("asynctasq.worker")


class ModelLoader:
    """Loads the models named in task arguments, with the ORMs the configuration sets up.

    Args:
        config: reads ``sqlalchemy_engine`` and ``tortoise_orm``; ``None``: neither is set
            (Tortoise is then used only if your own code initialised it).

    Raises:
        ConfigError: ``sqlalchemy_engine`` is set but is not a SQLAlchemy engine.
    """

    def __init__(self, config: Config | None = None) -> None:
        self.engine: Any = None if config is None else config.sqlalchemy_engine
        self._tortoise_config = None if config is None else config.tortoise_orm
        self._tortoise: Any = None
        if self.engine is not None:
            from asynctasq.orm import sqlalchemy as glue

            glue.check_engine(self.engine)

    def tortoise(self) -> Any:
        """Return this worker's :class:`~asynctasq.orm.tortoise.TortoiseModels`, made once."""
        if self._tortoise is None:
            from asynctasq.orm.tortoise import TortoiseModels

            self._tortoise = TortoiseModels(self._tortoise_config)
        return self._tortoise

    def scope(self) -> ModelScope:
        """Return a new scope for one task execution."""
        return ModelScope(self)

    async def aclose(self) -> None:
        """Dispose ``sqlalchemy_engine`` and close Tortoise if opened here; never raises."""
        try:
            if self.engine is not None:
                from asynctasq.orm import sqlalchemy as glue

                await glue.dispose(self.engine)
            if self._tortoise is not None:
                await self._tortoise.aclose()
        except Exception:
            logger.exception("closing the ORM connections failed")


class ModelScope:
    """The models of one task execution: a SQLAlchemy session, opened on first use.

    Attributes:
        unknown_model: a load failed because the reference names no model class imported
            in this worker (a ``SerializationError``): deterministic, so not worth a retry.
    """

    def __init__(self, loader: ModelLoader) -> None:
        self._loader = loader
        self._session: Any = None
        self.unknown_model = False

    async def load(self, ref: ModelRef, where: str) -> Any:
        """Return the model ``ref`` names, loaded fresh from the database.

        Args:
            ref: the reference.
            where: the argument's path for errors, e.g. ``"args[0]"``.

        Raises:
            ModelNotFoundError: its row no longer exists.
            SerializationError: its class is not a model class imported in this process.
            ConfigError: its ORM is not set up in this worker.
        """
        try:
            if ref.orm == "tortoise":
                tortoise = self._loader.tortoise()
                return await tortoise.load(ref, where)
            if self._session is None:
                engine = self._loader.engine
                if engine is None:
                    raise ConfigError(
                        f"cannot load {where} ({ref}): this worker has no sqlalchemy_engine; "
                        "pass it in the configuration (init({'sqlalchemy_engine': engine}))"
                    )
                from asynctasq.orm.sqlalchemy import SessionScope

                self._session = SessionScope(engine)
            return await self._session.load(ref, where)
        except SerializationError:  # only the class lookups raise it
            self.unknown_model = True
            raise

    async def load_arguments(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Return the arguments with every reference replaced by its loaded model.

        Then the transaction the loads began is committed (SQLAlchemy), so no connection
        stays "idle in transaction" while the task runs; the models stay loaded, attached
        to the session, which begins a new transaction when the task uses it.

        Raises:
            The errors of :meth:`load`; a database error of that commit.
        """
        loaded = await load_arguments(args, kwargs, self.load)
        if self._session is not None:
            await self._session.end_read()
        return loaded

    async def aclose(self) -> None:
        """Close this execution's session (uncommitted changes are rolled back).

        Raises:
            Exception: closing failed (the connection was lost, or the server ended the
                session); the session is dropped all the same.
        """
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()
