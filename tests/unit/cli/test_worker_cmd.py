"""``asynctasq worker`` with task modules that cannot be imported (the real entry point).

Nothing connects: the modules are imported before the worker opens its broker.
"""

from __future__ import annotations

from pathlib import Path

from conftest import run_module


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    return path


def lines_of(err: str) -> list[str]:
    """``err``'s lines without Python's caret lines (``^^^^``: their presence varies by version)."""
    return [line for line in err.splitlines() if line.strip(" ^~")]


def test_a_module_raising_at_import_shows_where_with_the_traceback(tmp_path: Path) -> None:
    # was one line, "cannot import task module 'boomtasks': RuntimeError: boom", no line
    path = write(tmp_path, "boomtasks", 'import os\n\nraise RuntimeError("boom")\n')
    result = run_module("worker", "--import", "boomtasks", cwd=tmp_path)
    assert (result.code, result.out) == (2, "")
    assert lines_of(result.err) == [
        "asynctasq worker: error: cannot import task module 'boomtasks': RuntimeError: boom "
        f"(raised at {path}, line 3)",
        "Traceback (most recent call last):",
        f'  File "{path}", line 3, in <module>',
        '    raise RuntimeError("boom")',
        "RuntimeError: boom",
    ]


def test_the_traceback_goes_through_the_modules_the_task_module_imports(tmp_path: Path) -> None:
    inner = write(tmp_path, "settingsmod", "LIMIT = int('ten')\n")
    outer = write(tmp_path, "outertasks", "import settingsmod\n")
    result = run_module("worker", "outertasks", cwd=tmp_path)
    assert result.code == 2
    assert lines_of(result.err) == [
        "asynctasq worker: error: cannot import task module 'outertasks': ValueError: invalid "
        f"literal for int() with base 10: 'ten' (raised at {inner}, line 1)",
        "Traceback (most recent call last):",
        f'  File "{outer}", line 1, in <module>',
        "    import settingsmod",
        f'  File "{inner}", line 1, in <module>',
        "    LIMIT = int('ten')",
        "ValueError: invalid literal for int() with base 10: 'ten'",
    ]


def test_a_syntax_error_shows_the_file_line_and_caret(tmp_path: Path) -> None:
    path = write(tmp_path, "typotasks", "def f(:\n    pass\n")
    result = run_module("worker", "--import", "typotasks", cwd=tmp_path)
    assert result.code == 2
    lines = result.err.splitlines()
    assert lines[0] == (
        "asynctasq worker: error: cannot import task module 'typotasks': SyntaxError: invalid "
        "syntax (typotasks.py, line 1)"
    )
    assert lines[1:3] == [f'  File "{path}", line 1', "    def f(:"]
    assert lines[-1] == "SyntaxError: invalid syntax"


def test_a_module_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    result = run_module("worker", "--import", "nosuchpkg.tasks", cwd=tmp_path)
    assert (result.code, result.err) == (
        2,
        "asynctasq worker: error: cannot import task module 'nosuchpkg.tasks': "
        "ModuleNotFoundError: No module named 'nosuchpkg'\n",
    )


def test_a_missing_dependency_of_the_module_shows_the_importing_line(tmp_path: Path) -> None:
    path = write(tmp_path, "deptasks", "import os\nimport not_installed_dependency_xyz\n")
    result = run_module("worker", "--import", "deptasks", cwd=tmp_path)
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "asynctasq worker: error: cannot import task module 'deptasks': ModuleNotFoundError: "
        f"No module named 'not_installed_dependency_xyz' (raised at {path}, line 2)"
    )
    assert "    import not_installed_dependency_xyz" in result.err.splitlines()


def test_a_module_calling_sys_exit_at_import_is_named_with_its_code_and_line(
    tmp_path: Path,
) -> None:
    # exited 3 with nothing printed: SystemExit is not an Exception
    path = write(tmp_path, "exittasks", "import sys\n\nsys.exit(3)\n")
    result = run_module("worker", "--import", "exittasks", cwd=tmp_path)
    assert (result.code, result.out) == (2, "")
    assert lines_of(result.err) == [
        "asynctasq worker: error: cannot import task module 'exittasks': module 'exittasks' "
        f"called sys.exit(3) (at {path}, line 3)",
        "Traceback (most recent call last):",
        f'  File "{path}", line 3, in <module>',
        "    sys.exit(3)",
        "SystemExit: 3",
    ]


def test_sys_exit_in_a_module_the_task_module_imports_names_that_module(tmp_path: Path) -> None:
    inner = write(tmp_path, "exitsettings", "raise SystemExit('no settings')\n")
    write(tmp_path, "exitoutertasks", "import exitsettings\n")
    result = run_module("worker", "exitoutertasks", cwd=tmp_path)
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "asynctasq worker: error: cannot import task module 'exitoutertasks': module "
        f"'exitsettings' called sys.exit('no settings') (at {inner}, line 1)"
    )


def test_sys_exit_without_a_code_at_import_is_not_a_successful_exit(tmp_path: Path) -> None:
    # exit 0 and no output looked like a worker that had finished its work
    path = write(tmp_path, "quittasks", "import sys\nsys.exit()\n")
    result = run_module("worker", "--import", "quittasks", cwd=tmp_path)
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "asynctasq worker: error: cannot import task module 'quittasks': module 'quittasks' "
        f"called sys.exit() (at {path}, line 2)"
    )
