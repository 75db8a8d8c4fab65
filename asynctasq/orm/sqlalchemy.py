"""SQLAlchemy (2.x) models as task arguments: the reference at dispatch, a session per task.

At dispatch a mapped instance becomes ``ModelRef("sqlalchemy", "module:Class", identity)``
where ``identity`` is its identity key (every primary key column, in mapper order), read
from the instance state without touching the database, so a detached instance whose
session was closed works. A transient or pending instance (never flushed) has no identity
yet and is refused.

In the worker each task execution gets its own session on ``sqlalchemy_engine`` with
``expire_on_commit=False``: an ``AsyncSession`` for an ``AsyncEngine``, a ``Session`` for a
sync ``Engine`` (its calls then run in a thread). ``session.get()`` loads each row fresh
from the database; then the read transaction is committed (:meth:`SessionScope.end_read`),
so the task does not hold a connection "idle in transaction" while it runs (that pins a
snapshot, holding back vacuum, and trips ``idle_in_transaction_session_timeout``); the
loaded instances stay as they are (not expired) and attached to the session. The session
stays open until the task returns, so relationships load lazily inside the task
(``await user.awaitable_attrs.orders`` with the ``AsyncAttrs`` mixin, or plain
``user.orders`` with a sync engine) and the task can write through it
(``async_object_session(user).commit()``): each use begins a new transaction, as any
session does after a commit. It is closed after the task, rolling back what the task did
not commit itself.

Source: SPEC §8; FIELD-CASES C23.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import InstanceState, Mapper, Session

from asynctasq.codec.classes import class_path, find
from asynctasq.codec.refs import ModelRef
from asynctasq.errors import ConfigError, ModelNotFoundError, SerializationError

ORM = "sqlalchemy"


def reference(value: Any, where: str) -> ModelRef | None:
    """Return the reference for a mapped instance, or ``None`` when ``value`` is not one.

    Raises:
        SerializationError: the instance has no identity yet (transient, pending, or
            detached without one: add it to a session and commit first), it was deleted
            (``session.delete()`` then flush or commit), or its class cannot be found by
            its import path (define it at module level).
    """
    state = sqlalchemy.inspect(value, raiseerr=False)
    if not isinstance(state, InstanceState):
        return None
    kind: Any = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if state.key is None:
        raise SerializationError(
            f"cannot serialize {where} (a {name}): it is not saved yet, so it has no primary "
            "key (transient or pending); commit its session before dispatching (a row only "
            "flushed is not visible to the worker until its transaction commits)"
        )
    if state.deleted or state.was_deleted:
        raise SerializationError(
            f"cannot serialize {where} (a {name} with primary key {tuple(state.key[1])!r}): "
            "it was deleted (session.delete()), so the worker could not load it; dispatch "
            "before deleting it, or pass what the task needs as plain values"
        )
    path = class_path(kind)
    if path is None:
        raise SerializationError(
            f"cannot serialize {where} (a {name}): its class cannot be found by its import "
            "path; define the model at module level of an importable module"
        )
    return ModelRef(ORM, path, tuple(state.key[1]))


def check_engine(engine: object) -> None:
    """Raise ``ConfigError`` unless ``engine`` is a SQLAlchemy ``Engine`` or ``AsyncEngine``."""
    if not isinstance(engine, AsyncEngine | Engine):
        raise ConfigError(
            f"sqlalchemy_engine = {type(engine).__name__} object (from code): must be a "
            "SQLAlchemy AsyncEngine (create_async_engine) or Engine (create_engine)"
        )


async def dispose(engine: Any) -> None:
    """Close ``engine``'s pooled connections (it stays usable: a new pool opens on demand)."""
    if isinstance(engine, AsyncEngine):
        await engine.dispose()
    else:
        await asyncio.to_thread(engine.dispose)


def model_class(ref: ModelRef, where: str) -> Any:
    """Return the mapped class ``ref`` names, found among imported modules only.

    Raises:
        SerializationError: no such class is imported in this process, or it is not mapped.
    """
    cls: Any = find(ref.model)
    mapper: Any = sqlalchemy.inspect(cls, raiseerr=False) if isinstance(cls, type) else None
    if isinstance(mapper, Mapper):
        return cls
    raise SerializationError(
        f"cannot load {where}: {ref.model!r} is not a SQLAlchemy-mapped class of a module "
        "imported in this worker; a message never imports a module, so import the models "
        "where the tasks are defined (not retried)"
    )


class SessionScope:
    """One task execution's session: opened on the first load, closed by :meth:`aclose`."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._session: AsyncSession | Session | None = None

    async def load(self, ref: ModelRef, where: str) -> Any:
        """Return the row ``ref`` names, loaded fresh in this scope's session.

        Raises:
            ModelNotFoundError: no row has that primary key any more.
            SerializationError: the class is not a mapped class imported here.
        """
        cls = model_class(ref, where)
        key = ref.pk[0] if len(ref.pk) == 1 else ref.pk
        session = self._session
        if session is None:
            session = self._session = (
                AsyncSession(self._engine, expire_on_commit=False)
                if isinstance(self._engine, AsyncEngine)
                else Session(self._engine, expire_on_commit=False)
            )
        if isinstance(session, AsyncSession):
            found = await session.get(cls, key)
        else:
            found = await asyncio.to_thread(session.get, cls, key)
        if found is None:
            raise ModelNotFoundError(f"{ref}, passed as {where}, no longer exists (deleted)")
        return found

    async def end_read(self) -> None:
        """Commit the transaction the loads began, if any; the loaded instances stay usable.

        The session has ``expire_on_commit=False`` and nothing to flush, so this only ends
        the transaction and gives its connection back to the pool.

        Raises:
            Exception: the database call failed (the connection was lost meanwhile).
        """
        session = self._session
        if isinstance(session, AsyncSession):
            await session.commit()
        elif session is not None:
            await asyncio.to_thread(session.commit)

    async def aclose(self) -> None:
        """Close the session, if one was opened (what was not committed is rolled back)."""
        session, self._session = self._session, None
        if isinstance(session, AsyncSession):
            await session.close()
        elif session is not None:
            await asyncio.to_thread(session.close)
