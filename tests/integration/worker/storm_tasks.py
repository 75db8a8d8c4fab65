"""Tasks for the lock-contention storm (FIELD-CASES C34); ledger rows as in ``tasks_mod``."""

from __future__ import annotations

from asynctasq.tasks import current_task, task
from tests.integration.worker.tasks_mod import note


@task(retry_strategy="fixed", retry_delay=0, max_attempts=3)
async def fail_once(key: str, fail_first: bool) -> None:
    """Write ``start``; raise on the first attempt if ``fail_first``, else write ``end``."""
    info = current_task()
    assert info is not None
    await note(key, "start")
    if fail_first and info.attempt == 1:
        raise ValueError("fails once on purpose")
    await note(key, "end")
