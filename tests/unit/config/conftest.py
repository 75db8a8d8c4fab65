"""Config tests start with no current handle and leave none behind (init() sets one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from asynctasq import context


@pytest.fixture(autouse=True)
def _no_current_handle() -> Iterator[None]:
    token = context.make_current(None)
    yield
    context.restore(token)
