"""Redis stops answering (a stalled network: a blackholed TCP proxy in front of the real one).

The shared Redis is never stopped: the worker and the dispatcher connect through
:class:`~tests.integration.tcp_proxy.Proxy`, which is frozen with ``SIGSTOP``. Nothing is
refused, nothing answers: commands time out (redis-py's 5 s socket timeout).
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from asynctasq.config.records import RedisConfig
from asynctasq.drivers import redis_format as form
from asynctasq.drivers.protocol import Outgoing
from asynctasq.drivers.redis import RedisDriver
from asynctasq.errors import DriverError
from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many
from tests.integration.tcp_proxy import Proxy
from tests.integration.worker import tasks_mod
from tests.integration.worker.conftest import Ledger, Worker, worker_env

pytestmark = pytest.mark.anyio


@pytest.fixture
def proxy(redis_url: str) -> Iterator[Proxy]:
    running = Proxy(redis_url).start()
    yield running
    running.stop()


async def test_an_enqueue_without_a_reply_says_the_message_may_have_been_stored(
    proxy: Proxy,
) -> None:
    driver = RedisDriver(RedisConfig(url=proxy.url))
    await driver.open()
    try:
        proxy.blackhole()
        with pytest.raises(DriverError) as raised:
            await driver.enqueue(Outgoing(queue="unanswered", body=b"x"))
        assert "TimeoutError" in str(raised.value)
        assert "may or may not have been stored" in str(raised.value)
    finally:
        proxy.resume()
        await driver.close()


def until(check: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)  # a subprocess and its log have no event to await


@pytest.mark.parametrize(
    ("second", "limit"),
    [
        # one signal: the blocked fetch (<= 5 s), leaving the registry (<= 5 s), the close's
        # PING (1 s)
        (None, 20),
        # a second signal skips the waits (SPEC §4: a second signal exits quickly)
        ("worker stopping", 6),
        # a second signal during the last stop step (closing the connections) is still a
        # stop request, not the default action (it was: exit 143 and no log line)
        (" stopped: ", 15),
    ],
    ids=["one-signal", "two-signals", "second-signal-while-closing"],
)
def test_a_worker_whose_redis_stopped_answering_still_stops_promptly(
    proxy: Proxy,
    start_worker: Callable[..., Worker],
    redis_url: str,
    second: str | None,
    limit: float,
) -> None:
    queue = f"unanswered-{uuid.uuid4().hex[:8]}"
    worker = start_worker("--queues", queue, "--shutdown-timeout", "5", env=worker_env(proxy.url))
    with redis.Redis.from_url(redis_url) as direct:  # the worker's BLMOVE has begun

        def waiting() -> bool:
            grabs = direct.zrange(form.GRABS_KEY, 0, -1)
            return any(grab.endswith(f":{queue}".encode()) for grab in grabs)

        until(waiting, f"the worker never waited on {queue}:\n{worker.output()}")
    assert " started: " in worker.output()
    proxy.blackhole()
    worker.signal(signal.SIGTERM)
    if second is not None:
        until(lambda: second in worker.output(), f"no {second!r} in:\n{worker.output()}")
        worker.signal(signal.SIGTERM)
    assert worker.wait(limit) == 0
    log = worker.output()
    assert " stopped: " in log
    assert "closing without checking for grabbed or claimed" in log or "cut short by SIGTERM" in log
    assert "unclosed resource" not in log


async def test_a_second_signal_settles_every_cancelled_task_at_once_with_redis_stalled(
    proxy: Proxy, start_worker: Callable[..., Worker], handle: Handle, queue: str, ledger: Ledger
) -> None:
    worker = start_worker("--queues", queue, "--shutdown-timeout", "30", env=worker_env(proxy.url))
    await dispatch_many(
        [tasks_mod.slow(ledger.key, 60, label=str(n)).on_queue(queue) for n in range(4)]
    )
    await ledger.wait_for(lambda rows: len(rows) == 4, 20)  # all four running
    proxy.blackhole()
    worker.signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    worker.signal(signal.SIGTERM)
    # each cancelled task's retry waits for a reply that never comes (5 s); settled one
    # after another, four took 24 s
    assert worker.wait(12) == 0
    proxy.resume()
