"""Binding a message's arguments to its task, loading the ORM models it names first.

A message whose arguments hold model references (:mod:`asynctasq.orm`) is bound to an
:class:`Invocation` that, when executed, opens a :class:`~asynctasq.orm.ModelScope`,
loads the models, builds the task's own invocation with them, runs it and closes the
scope — all inside the task's timeout, so a slow database counts against it:

* ``async`` mode: on the worker's loop;
* ``sync`` mode: in the task's thread; loading and closing are handed to the worker's
  loop (the thread waits), the body runs in the thread as usual.

A failure to load (``ModelNotFoundError`` for a deleted row) is the attempt's error and
the retry policy applies. If the models never loaded, ``should_retry`` allows the retry
and ``failed`` is called on the task bound to the references themselves.
Messages without references are bound directly, at no cost beyond one pass over the
argument types. Process-pool tasks never carry references (dispatch refuses them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from asynctasq.message import TaskMessage
from asynctasq.orm import ModelLoader, ModelScope, holds_references
from asynctasq.tasks.definition import ASYNC_MODES, Invocation, TaskDefinition


def bind(definition: TaskDefinition, message: TaskMessage, loader: ModelLoader) -> Invocation:
    """Return the invocation of ``definition`` with ``message``'s arguments.

    Raises:
        Exception: binding failed (the arguments do not fit the task), for messages without
            model references; with references, such errors surface when it is executed.
    """
    args, kwargs = message.args, message.kwargs
    if definition.mode.endswith("_process") or not holds_references(args, kwargs):
        return definition.invoke(args, kwargs)
    return ModelsInvocation(definition, args, kwargs, loader.scope())


class ModelsInvocation:
    """An invocation whose models are loaded when it executes (see the module docstring)."""

    def __init__(
        self,
        definition: TaskDefinition,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        scope: ModelScope,
    ) -> None:
        self._definition = definition
        self._args = args
        self._kwargs = kwargs
        self._scope = scope
        self._inner: Invocation | None = None
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
            return await inner.execute()
        finally:
            await self._scope.aclose()

    def _run_in_thread(self) -> Any:
        try:
            inner = asyncio.run_coroutine_threadsafe(self._bound(), self._loop).result()
            return inner.execute()
        finally:
            if not self._loop.is_closed():  # a worker gone meanwhile took its sessions along
                asyncio.run_coroutine_threadsafe(self._scope.aclose(), self._loop).result()

    def should_retry(self, exc: BaseException) -> bool:
        """Ask the task; ``True`` when its models never loaded (it was never built)."""
        return True if self._inner is None else self._inner.should_retry(exc)

    def failed(self, exc: BaseException) -> Any:
        """Call the task's ``failed`` hook (bound to the references if models never loaded)."""
        inner = self._inner or self._definition.invoke(self._args, self._kwargs)
        return inner.failed(exc)
