"""The docs' pattern on a real Redis: a module-level ``init()``, then ``asyncio.run(main())``.

The handle's services belong to the event loop that built them; ``asyncio.run()`` cancels
the event lane's task when ``main()`` returns, so the ``task_enqueued`` still queued was
lost without a word. The bus now delivers it when the loop ends.
"""

from __future__ import annotations

import asyncio
import json
import uuid

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
