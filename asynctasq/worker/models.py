"""Binding a message's arguments to its task, loading the ORM models it names first.

A message whose arguments hold model references (:mod:`asynctasq.orm`) is bound to an
:class:`Invocation` that, when executed, opens a :class:`~asynctasq.orm.ModelScope`,
loads the models, builds the task's own invocation with them, runs it and closes the
scope — all inside the task's timeout, so a slow database counts against it:

* ``async`` mode: on the worker's loop;
* ``sync`` mode: in the task's thread; loading and closing are handed to the worker's
  loop (the thread waits), the body runs in the thread as usual.

A failure to load (``ModelNotFoundError`` for a deleted row) is the attempt's error and
the retry policy applies: ``should_retry`` and ``failed`` are asked of the task bound to
the references themselves (each a ``ModelRef``), since the models never loaded. A
reference to a class this worker has not imported (``SerializationError``) is never
retried: the attempt is dead-lettered at once.

Closing the session after the body never changes its outcome: a body that returned has
succeeded even if the close fails, and a body that raised is recorded with its own error;
the close's error is logged (WARNING, ``asynctasq.worker``).

Messages without references are bound directly, at no cost beyond one pass over the
argument types. Process-pool tasks never carry references (dispatch refuses them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from asynctasq.message import TaskMessage
from asynctasq.orm import ModelLoader, ModelScope, holds_references
from asynctasq.tasks.definition import ASYNC_MODES, Invocation, TaskDefinition

logger = logging.getLogger("asynctasq.worker")


def bind(definition: TaskDefinition, message: TaskMessage, loader: ModelLoader) -> Invocation:
    """Return the invocation of ``definition`` with ``message``'s arguments.

    Raises:
        Exception: binding failed (the arguments do not fit the task), for messages without
            model references; with references, such errors surface when it is executed.
    """
    args, kwargs = message.args, message.kwargs
    if definition.mode.endswith("_process") or not holds_references(args, kwargs):
        return definition.invoke(args, kwargs)
    return ModelsInvocation(definition, args, kwargs, loader.scope(), message.task_id)


class ModelsInvocation:
    """An invocation whose models are loaded when it executes (see the module docstring)."""

    def __init__(
        self,
        definition: TaskDefinition,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        scope: ModelScope,
        task_id: str = "",
    ) -> None:
        self._definition = definition
        self._args = args
        self._kwargs = kwargs
        self._scope = scope
        self._task_id = task_id
        self._inner: Invocation | None = None
        self._unloaded: Invocation | None = None
        self._loop = asyncio.get_running_loop()

    def execute(self) -> Any:
        """Load the models and run the task: a coroutine in async mode, the result in sync."""
        if self._definition.mode in ASYNC_MODES:
            return self._run_async()
        return self._run_in_thread()

    async def _bound(self) -> Invocation:
        args, kwargs = await self._scope.load_arguments(self._args, self._kwargs)
        self._inner = self._definition.invoke(args, kwargs)
        return self._inner

    async def _run_async(self) -> Any:
        try:
            inner = await self._bound()
            result = await inner.execute()
        except BaseException as exc:
            await self._close(exc)
            raise
        await self._close(None)
        return result

    def _run_in_thread(self) -> Any:
        try:
            inner = asyncio.run_coroutine_threadsafe(self._bound(), self._loop).result()
            result = inner.execute()
        except BaseException as exc:
            self._close_from_thread(exc)
            raise
        self._close_from_thread(None)
        return result

    def _close_from_thread(self, outcome: BaseException | None) -> None:
        if not self._loop.is_closed():  # a worker gone meanwhile took its sessions along
            asyncio.run_coroutine_threadsafe(self._close(outcome), self._loop).result()

    async def _close(self, outcome: BaseException | None) -> None:
        """Close the scope; a failure is logged, never raised (the body's outcome stands)."""
        try:
            await self._scope.aclose()
        except Exception as exc:
            logger.warning(
                "task %s %s %s, but closing its database session failed (%s: %s); %s",
                self._task_id or "-",
                self._definition.name,
                "succeeded" if outcome is None else "failed",
                type(exc).__name__,
                exc,
                "it stays succeeded" if outcome is None else "its own error is recorded",
            )

    def _invocation(self) -> Invocation | None:
        """The task's invocation: with its models, else bound to the references (once)."""
        if self._inner is not None:
            return self._inner
        if self._unloaded is None:
            try:
                self._unloaded = self._definition.invoke(self._args, self._kwargs)
            except Exception:  # the arguments do not fit the task: no hook to ask
                logger.debug("cannot bind %s to its references", self._definition.name)
                return None
        return self._unloaded

    def should_retry(self, exc: BaseException) -> bool:
        """Ask the task (bound to the references if its models never loaded).

        ``False`` without asking when a reference names a class this worker has not
        imported; ``True`` when the task cannot even be bound to the references.
        """
        if self._inner is None and self._scope.unknown_model:
            return False
        inner = self._invocation()
        return True if inner is None else inner.should_retry(exc)

    def failed(self, exc: BaseException) -> Any:
        """Call the task's ``failed`` hook (bound to the references if models never loaded).

        Raises:
            Exception: the task cannot be bound to its references (the worker logs it).
        """
        inner = self._invocation()
        if inner is None:
            return self._definition.invoke(self._args, self._kwargs).failed(exc)
        return inner.failed(exc)
