"""Task names: ``module:qualname``, with ``__main__`` replaced by an importable name.

A task defined in a script run as ``__main__`` is named after the module name under which
that script can be imported in this process (SPEC §3, FIELD-CASES C24): ``python -m
pkg.tool`` gives ``pkg.tool``; ``python tool.py`` gives ``tool`` (its directory is
``sys.path[0]``), so a worker started there with ``--import tool`` finds it. When no such
name exists (``python -c``, a REPL, a file name that is not an identifier) the task keeps
``__main__:qualname`` and dispatch refuses it with an explanation.

Source: SPEC §3 ("registered under that script's importable module name").
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main_module_name() -> str | None:
    """Return the name under which the ``__main__`` script can be imported, or ``None``.

    ``python -m pkg.mod`` -> ``"pkg.mod"`` (from ``__main__.__spec__``); ``python dir/x.py``
    -> ``"x"`` (the file relative to the first ``sys.path`` entry holding it, every part an
    identifier); interactive sessions and ``python -c`` -> ``None``.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    spec_name = getattr(spec, "name", None)
    if isinstance(spec_name, str) and spec_name and spec_name != "__main__":
        return spec_name
    file = getattr(main, "__file__", None)
    if not isinstance(file, str) or not file.endswith(".py"):
        return None
    path = Path(file).resolve()
    for entry in sys.path:
        try:
            relative = path.relative_to(Path(entry or os.getcwd()).resolve())
        except (ValueError, OSError):
            continue
        parts = relative.with_suffix("").parts
        if parts and all(part.isidentifier() for part in parts):
            return ".".join(parts)
    return None


def task_name(module: str, qualname: str) -> tuple[str, str]:
    """Return ``(task name, import error)`` for a task defined in ``module``.

    Args:
        module: the defining module's ``__name__`` (``"__main__"`` for a script).
        qualname: the function's or class's ``__qualname__``.

    Returns:
        ``("module:qualname", "")``; for ``__main__`` the module part is the script's
        importable name. The import error is ``""`` unless ``module`` is ``__main__`` with
        no importable name; then the name keeps ``__main__`` and the error explains how to
        fix it (dispatch raises it).
    """
    if module != "__main__":
        return f"{module}:{qualname}", ""
    importable = main_module_name()
    if importable is not None:
        return f"{importable}:{qualname}", ""
    return f"__main__:{qualname}", (
        f"task {qualname!r} is defined in __main__ (a script, `python -c` or an interactive "
        "session) that a worker cannot import by name; define it in an importable module "
        "(e.g. tasks.py, then start the worker with --import tasks), or run your script as "
        "a module with `python -m package.script`"
    )
