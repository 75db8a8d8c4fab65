"""The code in docs/tasks.md and docs/workers.md works as written.

Every ``python`` block must compile (top-level ``await`` allowed: snippets show calls made
inside your own coroutines). A block preceded by ``<!-- runnable -->`` is a complete script
and is run as one (from its own file, so its tasks are named after it); a block preceded by
``<!-- runnable: pytest -->`` is a test module and is run by pytest. Both use the
in-process ``memory`` driver only.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("docs/tasks.md", "docs/workers.md")
FENCE = re.compile(r"(?:<!-- (runnable(?:: pytest)?) -->\n)?```python\n(.*?)```", re.S)


def blocks(doc: str) -> list[tuple[str | None, str, int]]:
    """Return ``(marker, code, line)`` of each python block of ``doc``."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    return [
        (match[1], match[2], text.count("\n", 0, match.start(2)) + 1)
        for match in FENCE.finditer(text)
    ]


def cases(*kinds: str | None) -> list[tuple[str, int, str]]:
    """Return ``(doc, line, code)`` of the blocks of those kinds (every block if none given)."""
    return [
        (doc, line, code)
        for doc in DOCS
        for kind, code, line in blocks(doc)
        if not kinds or kind in kinds
    ]


def ids(cases: list[tuple[str, int, str]]) -> list[str]:
    return [f"{doc}:{line}" for doc, line, _ in cases]


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def module_name(doc: str, line: int) -> str:
    return f"{Path(doc).stem}_line_{line}"


@pytest.mark.parametrize("doc", DOCS)
def test_each_guide_has_runnable_examples(doc: str) -> None:
    kinds = [kind for kind, _, _ in blocks(doc)]
    assert sum(kind is not None for kind in kinds) >= 3, kinds


def test_the_workers_guide_has_a_runnable_test_module() -> None:
    assert [kind for kind, _, _ in blocks("docs/workers.md")].count("runnable: pytest") >= 1


@pytest.mark.parametrize(("doc", "line", "code"), cases(), ids=ids(cases()))
def test_every_python_block_compiles(doc: str, line: int, code: str) -> None:
    compile(code, f"{doc}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize(("doc", "line", "code"), cases("runnable"), ids=ids(cases("runnable")))
def test_a_runnable_example_runs_as_a_script(
    doc: str, line: int, code: str, tmp_path: Path
) -> None:
    script = tmp_path / f"{module_name(doc, line)}.py"
    script.write_text(code, encoding="utf-8")
    done = run([sys.executable, script.name], tmp_path)
    assert done.returncode == 0, f"{doc}:{line}\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize(
    ("doc", "line", "code"), cases("runnable: pytest"), ids=ids(cases("runnable: pytest"))
)
def test_a_runnable_test_module_passes_under_pytest(
    doc: str, line: int, code: str, tmp_path: Path
) -> None:
    module = tmp_path / f"test_{module_name(doc, line)}.py"
    module.write_text(code, encoding="utf-8")
    done = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", module.name], tmp_path
    )
    assert done.returncode == 0, f"{doc}:{line}\n{done.stdout}{done.stderr}"
    assert " passed" in done.stdout
    assert "failed" not in done.stdout
