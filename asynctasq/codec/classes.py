"""Classes by import path, found without importing anything or running any code.

An Enum member, a namedtuple, an attrs or a dataclass instance travels with its class's
path ``module:qualname``. Encoding checks the path leads back to the class (so a class
defined inside a function fails at dispatch, not in the worker). Decoding looks the module
up in ``sys.modules`` only and walks the qualname through ``__dict__`` (no ``__getattr__``,
no descriptors), so a message can never make a process import a module or run code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from asynctasq.errors import SerializationError


@lru_cache(maxsize=1024)
def class_path(cls: Any) -> str | None:
    """Return ``module:qualname`` for ``cls``, or ``None`` when that path does not find it.

    A class of a script run as ``__main__`` gets the script's importable module name (its
    ``__spec__`` name, else its file name without ``.py``), the name a worker imports it by.
    """
    modules = [cls.__module__]
    if cls.__module__ == "__main__":
        modules.insert(0, main_module_name() or "__main__")
    for module in modules:
        path = f"{module}:{cls.__qualname__}"
        if find(path) is cls:
            return path
    return None


def find(path: str) -> object:
    """Return the object at ``module:qualname`` in an imported module, else ``None``."""
    module_name, _, qualname = path.partition(":")
    found: object = sys.modules.get(module_name)
    if found is None and module_name == main_module_name():
        found = sys.modules.get("__main__")
    for part in qualname.split("."):
        namespace = getattr(found, "__dict__", None)
        if not isinstance(namespace, Mapping):
            return None
        found = namespace.get(part)
    return found


def find_class(path: object, kind: str, is_kind: Callable[[type], bool]) -> Any:
    """Return the class at ``path`` when ``is_kind`` accepts it.

    Args:
        path: ``module:qualname`` as read from a message (any type: it is checked).
        kind: the kind in words for the error, e.g. ``"an Enum"``.
        is_kind: accepts the classes this kind of value may be rebuilt as.

    Raises:
        SerializationError: no such class in an imported module, or not of that kind; says
            when the module is simply not imported in this process.
    """
    cls = find(path) if type(path) is str else None
    if isinstance(cls, type) and is_kind(cls):
        return cls
    module = str(path).partition(":")[0]
    if module not in sys.modules and module != main_module_name():
        hint = (
            f"module {module!r} is not imported in this process; a message never imports "
            "a module, so import it in the worker (e.g. with --import)"
        )
    else:
        hint = "no such class there"
    raise SerializationError(f"cannot decode: {path!r} is not {kind} class: {hint}")


def main_module_name() -> str | None:
    """Return the importable name of the ``__main__`` module, or ``None`` (a REPL)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name)
    file = getattr(main, "__file__", None)
    return Path(file).stem if file else None
