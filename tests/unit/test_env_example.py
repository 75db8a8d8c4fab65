"""The committed root ``.env.example`` is exactly what ``asynctasq publish`` writes."""

from __future__ import annotations

from pathlib import Path

from asynctasq.config.schema import env_example_text

ROOT_ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_root_env_example_is_byte_identical_to_the_generated_template() -> None:
    assert ROOT_ENV_EXAMPLE.read_bytes() == env_example_text().encode("utf-8"), (
        "regenerate it: python -m asynctasq publish --force (from the repository root)"
    )
