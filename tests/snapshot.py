"""A syrupy extension that keeps snapshots in the top-level ``snapshots/`` as plain text files.

``tests/unit/cli/test_config_cmd.py::test_x`` is stored as
``snapshots/unit/cli/test_config_cmd/test_x.txt``: the tree mirrors ``tests/`` and each
snapshot is the exact text a user sees, readable and diffable on its own. Use it through a
``snapshot`` fixture override::

    @pytest.fixture
    def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
        return snapshot.use_extension(TextSnapshotExtension)

Written against syrupy 7: ``SingleFileSnapshotExtension`` with ``_write_mode`` TEXT,
``dirname(cls, *, test_location)`` as a classmethod. Update with ``pytest --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from syrupy.location import PyTestLocation

TESTS_DIR = Path(__file__).resolve().parent
SNAPSHOTS_DIR = TESTS_DIR.parent / "snapshots"


class TextSnapshotExtension(SingleFileSnapshotExtension):
    """One UTF-8 ``.txt`` file per snapshot under ``snapshots/<test dir relative to tests>/``."""

    _write_mode = WriteMode.TEXT
    file_extension = "txt"

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        test_dir = Path(test_location.filepath).resolve().parent
        relative = test_dir.relative_to(TESTS_DIR)
        return str(SNAPSHOTS_DIR / relative / test_location.basename)
