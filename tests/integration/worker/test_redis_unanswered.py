"""Redis stops answering (a stalled network: a blackholed TCP proxy in front of the real one).

The shared Redis is never stopped: the worker and the dispatcher connect through
:class:`~tests.integration.tcp_proxy.Proxy`, which is frozen with ``SIGSTOP``. Nothing is
refused, nothing answers: commands time out (redis-py's 5 s socket timeout).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest

from asynctasq.config.records import RedisConfig
from asynctasq.drivers.protocol import Outgoing
from asynctasq.drivers.redis import RedisDriver
from asynctasq.errors import DriverError
from tests.integration.tcp_proxy import Proxy
from tests.integration.worker.conftest import Worker, worker_env

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


@pytest.mark.parametrize("signals", [1, 2])
def test_a_worker_whose_redis_stopped_answering_still_stops_promptly(
    proxy: Proxy, start_worker: Callable[..., Worker], signals: int
) -> None:
    env = worker_env(proxy.url)
    worker = start_worker("--queues", "unanswered-q", "--shutdown-timeout", "5", env=env)
    deadline = time.monotonic() + 20
    while "started" not in worker.output():
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.05)  # a subprocess log has no event to await
    proxy.blackhole()
    for _ in range(signals):
        worker.signal(signal.SIGTERM)
        time.sleep(0.2)
    # one signal: the blocked fetch (<= 5 s), leaving the registry (<= 5 s), the close's
    # PING (1 s); a second signal skips the waits (SPEC §4: a second signal exits quickly)
    assert worker.wait(20 if signals == 1 else 6) == 0
    assert "closing without giving back held messages" in worker.output()
