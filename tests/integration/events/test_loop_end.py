"""The docs' pattern on a real Redis: a module-level ``init()``, then ``asyncio.run(main())``.

The handle's services belong to the event loop that built them; ``asyncio.run()`` cancels
the event lane's task when ``main()`` returns, so the ``task_enqueued`` still queued was
lost without a word. The bus now delivers it when the loop ends.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

from redis import Redis

from asynctasq import init, task


@task
async def greet(name: str) -> None: ...


def test_a_dispatch_in_asyncio_run_after_a_module_level_init_reaches_the_subscriber(
    redis_url: str,
) -> None:
    tag = uuid.uuid4().hex[:12]
    channel, queue = f"asynctasq:test-events:{tag}", f"t-loop-end-{tag}"
    client = Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=5.0) is not None  # the subscribe confirmation
    try:
        init(
            {
                "driver": "redis",
                "redis": {"url": redis_url},
                "events": {"enable_event_emitter_redis": True, "channel": channel},
            },
            env_file=None,
        )

        async def main() -> list[str]:
            first = await greet("a").on_queue(queue).dispatch()
            return [first, await greet("b").on_queue(queue).dispatch()]

        ids = asyncio.run(main())
        ids += asyncio.run(main())  # a second loop: the handle builds new services for it
        seen = []
        while len(seen) < len(ids):
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
            assert message is not None, f"only {len(seen)} of {len(ids)} events arrived"
            seen.append(json.loads(message["data"]))
        assert [(e["event_type"], e["task_id"]) for e in seen] == [
            ("task_enqueued", task_id) for task_id in ids
        ]
    finally:
        pubsub.close()
        client.delete(*(f"queue:{queue}{s}" for s in ("", ":processing", ":delayed", ":dead")))
        client.close()


def test_the_events_example_of_docs_monitoring_md_works_as_written(
    redis_url: str, tmp_path: Path
) -> None:
    text = (Path(__file__).parents[3] / "docs" / "monitoring.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- example: events -->\n```python\n(.*?)```", text, re.S)
    assert found is not None
    script = tmp_path / "example_events.py"
    script.write_text(found[1], encoding="utf-8")
    tag = uuid.uuid4().hex[:12]
    channel, queue = f"asynctasq:test-events:{tag}", f"t-doc-{tag}"
    client = Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=5.0) is not None
    try:
        done = subprocess.run(
            [sys.executable, "-X", "dev", "-W", "error", str(script)],
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(Path(__file__).parents[3]),
                "ASYNCTASQ_REDIS_URL": redis_url,
                "ASYNCTASQ_EVENTS_CHANNEL": channel,
                "ASYNCTASQ_TASK_DEFAULTS_QUEUE": queue,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout) == (0, "task_enqueued example_events:send None\n")
        assert "Warning" not in done.stderr  # no unclosed connection, no lost event
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
        assert message is not None
        event = json.loads(message["data"])
        assert (event["event_type"], event["task_name"], event["queue"]) == (
            "task_enqueued",
            "example_events:send",
            queue,
        )
    finally:
        pubsub.close()
        client.delete(f"queue:{queue}")
        client.close()
