"""The RabbitMQ driver while its broker is unreachable: a TCP proxy in front of the real one.

The shared broker is never stopped: the driver connects through
:class:`~tests.integration.tcp_proxy.Proxy`, which is stopped (``SIGSTOP``: a blackhole,
nothing answers) or killed (connections reset, new ones refused) instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import pytest

from asynctasq.config.records import RabbitMQConfig
from asynctasq.drivers import rabbitmq_quiet as quiet
from asynctasq.drivers.protocol import DeadLetterEntry, Delivery, Outgoing, QueueSizes
from asynctasq.drivers.rabbitmq import RabbitMQDriver
from asynctasq.errors import DriverError
from tests.integration.drivers.rabbitmq_world import RabbitMQWorld
from tests.integration.tcp_proxy import Proxy

pytestmark = pytest.mark.anyio


@pytest.fixture
def proxy(rabbitmq_url: str) -> Iterator[Proxy]:
    running = Proxy(rabbitmq_url).start()
    yield running
    running.stop()


@pytest.fixture
async def site(rabbitmq_url: str, proxy: Proxy) -> AsyncIterator[RabbitMQWorld]:
    """Yield a world whose drivers connect through ``proxy``, reconnecting every 0.2 s and
    waiting at most 5 s for the broker's answers (the proxy is stopped before they close)."""
    made = RabbitMQWorld(
        rabbitmq_url,
        connect_url=proxy.url,
        defaults={"reconnect_seconds": 0.2, "operation_timeout_seconds": 5.0},
    )
    yield made
    proxy.stop()
    await made.close()


async def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``check()`` every 0.05 s until truthy; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if check():
            return
        assert asyncio.get_running_loop().time() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.05)


async def others() -> set[asyncio.Task[object]]:
    """Return the tasks of this loop other than the current one, after a few loop turns."""
    for _ in range(5):
        await asyncio.sleep(0)
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[arg-type]


async def test_an_open_that_times_out_against_a_blackholed_broker_leaves_nothing_running(
    site: RabbitMQWorld,
    proxy: Proxy,
) -> None:
    # F1: the process must be able to exit after the error (no reconnect task left).
    before = await others()
    proxy.blackhole()
    driver = RabbitMQDriver(site.config(), operation_timeout_seconds=1.0)
    with pytest.raises(DriverError, match="rabbitmq open failed"):
        await driver.open()
    assert await others() - before == set()


async def test_an_open_refused_by_a_stopped_broker_leaves_nothing_running(
    site: RabbitMQWorld,
    proxy: Proxy,
) -> None:
    before = await others()
    proxy.refuse()
    driver = RabbitMQDriver(site.config(), operation_timeout_seconds=1.0)
    with pytest.raises(DriverError, match="rabbitmq open failed"):
        await driver.open()
    assert await others() - before == set()


async def test_a_dead_letter_of_a_delivery_lost_with_the_connection_is_stored_for_its_copy(
    site: RabbitMQWorld, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    # F2: the last attempt fails while the connection is down. The dead letter cannot be
    # stored then; the copy the broker delivers once the connection is back is
    # dead-lettered with the task's real error, not run again (nor lost as WorkerLostError).
    driver = await site.driver()
    q = site.queue()
    await driver.enqueue(Outgoing(q, b"doomed", task_id="t1"))
    [delivery] = await driver.dequeue([q], limit=1, wait_seconds=5.0)
    proxy.refuse()
    await until(lambda: not driver._link.connected, 10, "the driver sees the connection down")
    entry = DeadLetterEntry(q, b"doomed", "t1", "mod:fn", "ValueError", "bad input", 3, 1.5)
    await driver.dead_letter(delivery, entry)
    proxy.start()
    with anyio.fail_after(30):
        while not (dead := await driver.dead_letters(q)):
            assert await driver.dequeue([q], limit=1, wait_seconds=0.2) == []
    assert [(d.error_type, d.error_message, d.attempts) for d in dead] == [
        ("ValueError", "bad input", 3)
    ]
    assert await driver.dequeue([q], limit=1, wait_seconds=0.5) == []
    assert await driver.sizes(q) == QueueSizes(0, 0, 0, 1)


async def test_a_retry_of_a_delivery_lost_with_the_connection_is_stored_for_its_copy(
    site: RabbitMQWorld,
    proxy: Proxy,
) -> None:
    driver = await site.driver()
    q = site.queue()
    await driver.enqueue(Outgoing(q, b"attempt 1"))
    [delivery] = await driver.dequeue([q], limit=1, wait_seconds=5.0)
    proxy.refuse()
    await until(lambda: not driver._link.connected, 10, "the driver sees the connection down")
    await driver.retry(delivery, Outgoing(q, b"attempt 2", delay_seconds=0.5))
    proxy.start()
    with anyio.fail_after(30):
        while not (got := await driver.dequeue([q], limit=5, wait_seconds=0.2)):
            await driver.maintain([q])
    assert [(d.body, d.delivery_count) for d in got] == [(b"attempt 2", 1)]
    await driver.ack(got)
    assert await driver.sizes(q) == QueueSizes(0, 0, 0, 0)


async def test_stopping_while_the_broker_is_blackholed_is_bounded_and_loses_nothing(
    site: RabbitMQWorld, proxy: Proxy, rabbitmq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # F4: release, remove_worker and close each wait a few seconds, not the 30 s operation
    # timeout (a container's stop timeout would kill the worker first).
    driver = await site.driver(operation_timeout_seconds=30.0, prefetch_count=5)
    q = site.queue()
    await driver.enqueue_many([Outgoing(q, b"%d" % i) for i in range(3)])
    held = await driver.dequeue([q], limit=1, wait_seconds=5.0)
    await until(lambda: driver._consumers.buffered(q) == 2, 10, "two more prefetched")
    proxy.blackhole()
    with anyio.fail_after(20), caplog.at_level(logging.WARNING, "asynctasq.drivers.rabbitmq"):
        with pytest.raises(DriverError, match="release failed: no answer from the broker"):
            await driver.release(held)
        with pytest.raises(DriverError, match="remove_worker failed: no answer from the"):
            await driver.remove_worker("w1")
        await driver.close()
    assert "not giving 2 prefetched messages back (the broker did not answer)" in caplog.text
    proxy.stop()  # the broker sees the connection closed and requeues all three
    config = RabbitMQConfig(url=rabbitmq_url, exchange_name=site.exchange, prefetch_count=5)
    successor = RabbitMQDriver(config)
    await successor.open()
    site.drivers.append(successor)
    got: list[Delivery] = []
    with anyio.fail_after(30):
        while len(got) < 3:
            got += await successor.dequeue([q], limit=3, wait_seconds=1.0)
    assert sorted(d.body for d in got) == [b"0", b"1", b"2"]
    await successor.ack(got)


async def test_messages_held_by_a_lost_worker_come_back_counted_with_a_true_warning(
    site: RabbitMQWorld, proxy: Proxy, rabbitmq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # F3: RabbitMQ marks a running and a merely prefetched message alike `redelivered`;
    # both are counted, and the warning says the task may not have started.
    lost = await site.driver(prefetch_count=5)
    q = site.queue()
    await lost.enqueue_many([Outgoing(q, b"%d" % i, task_id=f"t{i}") for i in range(2)])
    await lost.dequeue([q], limit=1, wait_seconds=5.0)
    await until(lambda: lost._consumers.buffered(q) == 1, 10, "the second one prefetched")
    proxy.refuse()  # as if its process died: it never comes back
    config = RabbitMQConfig(url=rabbitmq_url, exchange_name=site.exchange, prefetch_count=5)
    successor = RabbitMQDriver(config)
    await successor.open()
    site.drivers.append(successor)
    caplog.set_level(logging.WARNING, "asynctasq.drivers.rabbitmq")
    got: list[Delivery] = []
    with anyio.fail_after(30):
        while len(got) < 2:
            got += await successor.dequeue([q], limit=2, wait_seconds=1.0)
    assert sorted((d.body, d.delivery_count) for d in got) == [(b"0", 2), (b"1", 2)]
    lines = [
        f"task {task_id} on queue {q!r} came back redelivered: the worker holding it was "
        "lost (it may not have started; RabbitMQ cannot tell); counted as delivery 2"
        for task_id in ("t0", "t1")
    ]
    await until(lambda: all(line in caplog.text for line in lines), 10, "both logged")
    await successor.ack(got)


async def test_a_dispatch_to_a_blackholed_broker_says_it_waited_for_publisher_confirms(
    site: RabbitMQWorld,
    proxy: Proxy,
) -> None:
    # F7: the error named nothing ("TimeoutError: TimeoutError()").
    driver = await site.driver(operation_timeout_seconds=1.0)
    q = site.queue()
    await driver.enqueue(Outgoing(q, b"before"))
    proxy.blackhole()
    with pytest.raises(DriverError) as caught:
        await driver.enqueue(Outgoing(q, b"during"))
    assert str(caught.value) == (
        "rabbitmq enqueue failed: TimeoutError: waited 1 s for the broker's publisher confirms"
    )


async def test_a_dispatch_while_the_connection_is_down_says_it_waited_for_the_connection(
    site: RabbitMQWorld,
    proxy: Proxy,
) -> None:
    driver = await site.driver(operation_timeout_seconds=1.0)
    q = site.queue()
    await driver.enqueue(Outgoing(q, b"before"))
    proxy.refuse()
    await until(lambda: not driver._link.connected, 10, "the driver sees the connection down")
    with pytest.raises(DriverError) as caught:
        await driver.enqueue(Outgoing(q, b"during"))
    assert str(caught.value) == (
        "rabbitmq enqueue failed: TimeoutError: waited 1 s for the connection to come back"
    )


def dropped(text: str) -> int:
    """Return how many repeats of the library line starting with ``text`` were not shown."""
    seen = quiet.QUIET._seen
    return sum(n for (_, msg), (_, n) in seen.items() if str(msg).startswith(text))


async def test_an_outage_logs_each_kind_of_library_line_once_and_says_lost_and_back(
    site: RabbitMQWorld, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    # F7: aio-pika and aiormq logged an ERROR, a WARNING and an INFO per reconnection
    # attempt (every 0.2 s here), with tracebacks when the connection dropped.
    driver = await site.driver()
    quiet.QUIET.reset()  # other tests' outages were seen by the same filter
    caplog.set_level(logging.INFO)
    proxy.refuse()
    await until(lambda: not driver._link.connected, 10, "the driver sees the connection down")
    await until(lambda: dropped("error when creating transport") >= 3, 10, "3 more attempts")
    proxy.start()
    await until(lambda: "rabbitmq connection back after" in caplog.text, 20, "reconnected")
    library = [r for r in caplog.records if r.name.startswith(("aio_pika", "aiormq"))]
    kinds = Counter((r.name, r.msg) for r in library)
    assert max(kinds.values()) == 1, kinds
    assert not any(r.exc_info for r in library)
    ours = [r.getMessage() for r in caplog.records if r.name == "asynctasq.drivers.rabbitmq"]
    assert [m.split(" (")[0].split(" after")[0] for m in ours] == [
        "rabbitmq connection lost",
        "rabbitmq connection back",
    ]


async def test_a_vhost_the_broker_refuses_is_named_in_the_error(rabbitmq_url: str) -> None:
    url = rabbitmq_url.rstrip("/") + "/no-such-vhost"
    driver = RabbitMQDriver(RabbitMQConfig(url=url), operation_timeout_seconds=5.0)
    with pytest.raises(DriverError) as caught:
        await driver.open()
    assert str(caught.value).startswith(
        "rabbitmq open failed: vhost 'no-such-vhost' refused by the broker: it does not "
        "exist or user 'guest' has no permission on it"
    )
