"""ORM libraries are imported only by asynctasq.orm, and only when in use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_architecture import MODULES, imports_of, module_name

ORM_LIBRARIES = ("sqlalchemy", "tortoise")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_orm_libraries_are_imported_only_by_asynctasq_orm(path: Path) -> None:
    name = module_name(path)
    if name.startswith("asynctasq.orm"):
        return
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = [t for t in imports_of(path, package) if t.split(".")[0] in ORM_LIBRARIES]
    assert not found, f"{name} imports {found}; only asynctasq.orm may"


def test_dispatching_and_running_a_worker_import_no_orm_library() -> None:
    code = (
        "import sys, asynctasq, asynctasq.worker.run, asynctasq.tasks.dispatch\n"
        "from asynctasq.orm import to_references\n"
        "import datetime\n"
        "to_references((datetime.date.today(), object()), {}, task='t')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'tortoise')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
