"""mypy sees a task's own parameters through ``Task[P, R]`` (ParamSpec)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

SOURCE = """
from asynctasq.tasks import task

@task
async def resize(path: str, width: int) -> None: ...

resize("a.png", 200)
resize("a.png", width="wide")
resize(1, 2)
"""


def test_mypy_checks_the_arguments_of_a_task_call(tmp_path: Path) -> None:
    module = tmp_path / "typed_tasks.py"
    module.write_text(SOURCE)
    out, _, code = api.run(
        [str(module), "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache")]
    )
    assert code == 1
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2, out
    assert ':8: error: Argument "width" to "__call__"' in errors[0]
    assert ':9: error: Argument 1 to "__call__"' in errors[1]
