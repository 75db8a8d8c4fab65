"""README's short example runs as written: its tasks module and its in-process test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_readme_has_the_tasks_module_dispatch_script_and_test() -> None:
    blocks = python_blocks()
    assert len(blocks) == 3
    assert "@task" in blocks[0]
    assert ".dispatch()" in blocks[1]
    assert 'configured(driver="memory")' in blocks[2]


def test_readme_test_passes_against_the_readme_tasks_module(tmp_path: Path) -> None:
    tasks_module, _, test_module = python_blocks()
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "tasks.py").write_text(tasks_module)
    (tmp_path / "test_readme.py").write_text(test_module)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme.py"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{tmp_path}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
