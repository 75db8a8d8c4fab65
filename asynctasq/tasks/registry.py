"""The registry: the tasks one worker may run, built from exactly what it was given.

A worker resolves a message's task name only through its :class:`Registry`, a frozen
mapping name -> :class:`~asynctasq.tasks.definition.TaskDefinition`. A message can never
make a worker import a module, load a file or call anything that is not in it; such a
message is dead-lettered with ``TaskNotFoundError`` (SPEC §4, Security).

Nothing registers itself: ``@task`` functions and task classes only carry their
definition (``fn.definition``, ``cls.definition``). :func:`build_registry` collects them
from the modules, tasks and task classes you pass, and never imports anything — it reads
modules that are already loaded::

    import myapp.tasks

    registry = build_registry([myapp.tasks])          # every task of the module
    registry = build_registry([send_email, Resize])   # just these two
    await run_worker(handle, tasks=[myapp.tasks], queues=["default"])  # built for you

What a module contributes: its top-level names (``vars(module)``) that are ``@task``
functions or concrete task classes, including ones imported into it (a re-export offers
the task too); for a package, also those of its submodules that are already imported
(``sys.modules`` names starting with ``"package."``). Abstract bases (``abstract=True``)
and the library's own bases are skipped. Two different tasks under one name are a
``ConfigError`` naming both.

Source: SPEC §3 ("identified by its registered name"), §4 (Security).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType, ModuleType
from typing import Any, TypeAlias, TypeGuard

import attrs

from asynctasq.errors import ConfigError, TaskNotFoundError
from asynctasq.tasks.bases import BaseTask
from asynctasq.tasks.decorator import Task
from asynctasq.tasks.definition import TaskDefinition

TaskSource: TypeAlias = "ModuleType | Task[..., Any] | type[BaseTask]"
"""What :func:`build_registry` takes: a loaded module, an ``@task`` function or a task class."""


def _frozen(definitions: Mapping[str, TaskDefinition]) -> Mapping[str, TaskDefinition]:
    return MappingProxyType(dict(definitions))


@attrs.frozen
class Registry:
    """The tasks a worker may run: task name -> definition (read-only).

    Attributes:
        definitions: task name (``module:qualname`` or the custom name) -> definition.
    """

    definitions: Mapping[str, TaskDefinition] = attrs.field(factory=dict, converter=_frozen)

    @property
    def names(self) -> tuple[str, ...]:
        """Every task name, sorted."""
        return tuple(sorted(self.definitions))

    def find(self, name: str) -> TaskDefinition | None:
        """Return the task named ``name``, or ``None`` (the worker's hot path)."""
        return self.definitions.get(name)

    def lookup(self, name: str) -> TaskDefinition:
        """Return the task named ``name``.

        Raises:
            TaskNotFoundError: "unknown task 'x.y:z': ..." when this registry has no such task.
        """
        found = self.definitions.get(name)
        if found is None:
            raise TaskNotFoundError(
                f"unknown task {name!r}: not registered in this worker (registered: "
                f"{', '.join(self.names) or 'none'}); give the worker the module that "
                "defines it (--import, or run_worker(tasks=[module]))"
            )
        return found

    def __len__(self) -> int:
        return len(self.definitions)

    def __contains__(self, name: object) -> bool:
        return name in self.definitions


def build_registry(sources: Iterable[TaskSource]) -> Registry:
    """Collect the tasks of ``sources`` into a :class:`Registry`; import nothing.

    Args:
        sources: loaded modules (their top-level tasks, and for a package its already
            imported submodules' too), ``@task`` functions and concrete task classes.

    Returns:
        The registry; empty when the sources define no task.

    Raises:
        ConfigError: one name belongs to two different tasks (naming both, and every such
            clash).
        TypeError: ``sources`` is a string or a single object instead of an iterable, or
            one source is neither a module, a task nor a concrete task class (e.g. a
            module's name: import it first).
    """
    given: object = sources  # typed callers can still pass a str, which iterates
    if isinstance(given, str | bytes) or not isinstance(given, Iterable):
        raise TypeError(
            "tasks must be a list of loaded modules, @task functions or task classes, "
            f"e.g. [myapp.tasks]; got {given!r}"
        )
    found: dict[str, tuple[TaskDefinition, str]] = {}
    clashes: list[str] = []
    for source in sources:
        for definition, origin in _definitions_of(source):
            earlier = found.setdefault(definition.name, (definition, origin))
            if earlier[0] is not definition:
                clashes.append(f"{definition.name!r} is defined by {earlier[1]} and by {origin}")
    if clashes:
        raise ConfigError(
            "two tasks share a name: "
            + "; ".join(clashes)
            + ". Rename one with @task(name=...) or class X(AsyncTask, name=...)"
        )
    return Registry({name: definition for name, (definition, _) in found.items()})


def _definitions_of(source: object) -> Iterator[tuple[TaskDefinition, str]]:
    """Yield ``(definition, where it was found)`` for each task ``source`` offers."""
    if _is_module(source):
        for module in _with_submodules(source):
            for value in list(vars(module).values()):
                definition = _definition(value)
                if definition is not None:
                    yield definition, f"{_describe(value)} (in module {module.__name__})"
        return
    definition = _definition(source)
    if definition is not None:
        yield definition, _describe(source)
        return
    if _is_task_class(source):
        raise TypeError(
            f"{_describe(source)} is an abstract task class (abstract=True); pass its concrete "
            "subclasses or their module"
        )
    hint = " (build_registry never imports: import the module and pass it)"
    raise TypeError(
        "tasks must be loaded modules, @task functions or concrete task classes; got "
        f"{source!r}{hint if isinstance(source, str) else ''}"
    )


def _with_submodules(module: ModuleType) -> Iterator[ModuleType]:
    """Yield ``module`` and, for a package, its submodules already in ``sys.modules``."""
    yield module
    if not hasattr(module, "__path__"):
        return
    prefix = f"{module.__name__}."
    for name in sorted(name for name in list(sys.modules) if name.startswith(prefix)):
        loaded = sys.modules.get(name)
        if _is_module(loaded):
            yield loaded


# The checks below test ``type(value)`` before ``isinstance``, so they never read a proxy's
# ``__class__`` (a module may hold e.g. a request proxy that raises outside its context).


def _is_module(value: object) -> TypeGuard[ModuleType]:
    return issubclass(type(value), ModuleType) and isinstance(value, ModuleType)


def _is_task(value: object) -> TypeGuard[Task[..., Any]]:
    return issubclass(type(value), Task) and isinstance(value, Task)


def _is_task_class(value: object) -> TypeGuard[type[BaseTask]]:
    return issubclass(type(value), type) and isinstance(value, type) and issubclass(value, BaseTask)


def _definition(value: object) -> TaskDefinition | None:
    """Return the definition of an ``@task`` function or a concrete task class, else ``None``."""
    if _is_task(value):
        return value.definition
    if _is_task_class(value):
        own = vars(value).get("definition")  # abstract classes have none of their own
        return own if isinstance(own, TaskDefinition) else None
    return None


def _describe(value: object) -> str:
    if _is_task(value):
        function = value.function
        return f"@task function {function.__module__}.{function.__qualname__}"
    return f"task class {getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', '?')}"
