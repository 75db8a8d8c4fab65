"""``run_worker`` refuses bad settings before it touches the broker, naming every problem."""

from __future__ import annotations

import pytest

from asynctasq.errors import ConfigError
from asynctasq.handle import Handle
from asynctasq.tasks import task
from asynctasq.worker.state import MAX_CONCURRENCY
from tests.unit.worker.conftest import sizes, work

pytestmark = pytest.mark.anyio


@task(queue="q")
async def never() -> None:
    raise AssertionError("a refused worker must not run anything")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"concurrency": 0}, "concurrency=0: must be at least 1"),
        ({"concurrency": True}, "concurrency=True: must be at least 1"),
        (
            {"concurrency": MAX_CONCURRENCY + 1},
            f"concurrency={MAX_CONCURRENCY + 1}: must be at most {MAX_CONCURRENCY}",
        ),
        ({"max_tasks": 0}, "max_tasks=0: must be at least 1 (or None)"),
        ({"queues": ["q", " "]}, "queues=['q', ' ']: give at least one non-empty name"),
    ],
)
async def test_bad_worker_settings_are_a_config_error_naming_the_value(
    handle: Handle, options: dict[str, object], named: str
) -> None:
    await never().dispatch()
    with pytest.raises(ConfigError) as caught:
        await work(handle, tasks=[never], **options)
    assert named in str(caught.value)
    assert (await sizes(handle)).ready == 1  # nothing was claimed


async def test_every_problem_is_named_at_once(handle: Handle) -> None:
    with pytest.raises(ConfigError) as caught:
        await work(handle, tasks=[never], concurrency=0, max_tasks=0)
    assert str(caught.value) == (
        "invalid worker settings: concurrency=0: must be at least 1; "
        "max_tasks=0: must be at least 1 (or None)"
    )
