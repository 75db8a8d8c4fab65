"""What a RabbitMQ driver test works in: a unique exchange, its queues and the drivers it opened.

The ``world`` and ``raw`` fixtures in this directory's ``conftest.py`` and the ``site``
fixture of ``test_rabbitmq_outages.py`` are each one :class:`RabbitMQWorld`; a test asks
it for queues and drivers, and the fixture closes the drivers and deletes the topology.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import attrs
from aio_pika.abc import AbstractChannel

from asynctasq.config.fields import settings_of
from asynctasq.config.records import RabbitMQConfig
from asynctasq.drivers.rabbitmq import RabbitMQDriver
from tests.integration.rabbitmq_admin import delete_topology

CONFIG_FIELDS = frozenset(settings_of(RabbitMQConfig))
"""The keyword arguments :class:`RabbitMQConfig` takes (``url``, ``prefetch_count``, ...)."""


def unique_name() -> str:
    """Return a fresh exchange or queue name: ``t-`` and 16 hex digits."""
    return f"t-{uuid.uuid4().hex[:16]}"


@attrs.define
class RabbitMQWorld:
    """A unique exchange, the queues a test made, and the drivers it opened on them.

    Args:
        url: the real broker's URL; the topology is deleted through it.
        connect_url: the URL drivers connect to (a :class:`~tests.integration.tcp_proxy.Proxy`
            in front of ``url``); ``None`` connects them to ``url``.
        defaults: keyword arguments every :meth:`driver` call starts from (a call's own
            keywords override them), e.g. ``{"reconnect_seconds": 0.2}``.
    """

    url: str
    connect_url: str | None = None
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    exchange: str = attrs.field(factory=unique_name)
    queues: list[str] = attrs.field(factory=list)
    drivers: list[RabbitMQDriver] = attrs.field(factory=list)

    def queue(self) -> str:
        """Return a new queue name, deleted (with its companion queues) by :meth:`close`."""
        name = unique_name()
        self.queues.append(name)
        return name

    def config(self, **settings: Any) -> RabbitMQConfig:
        """Return the settings of a driver on this world's exchange and connect URL.

        Args:
            settings: other :class:`RabbitMQConfig` fields (``prefetch_count=5``, ...).
        """
        url = self.connect_url if self.connect_url is not None else self.url
        return RabbitMQConfig(url=url, exchange_name=self.exchange, **settings)

    async def driver(self, **options: Any) -> RabbitMQDriver:
        """Open a driver on this world's exchange; :meth:`close` closes it.

        Args:
            options: ``defaults`` overridden by these; :class:`RabbitMQConfig` field names
                (``prefetch_count``, ``delayed_task_interval``) go to the settings, the rest
                (``reconnect_seconds``, ``operation_timeout_seconds``, ``watch_seconds``,
                ``completed_limit``, ...) to the :class:`RabbitMQDriver` constructor.

        Raises:
            TypeError: an option neither of them takes.
            DriverError: the driver could not connect.
        """
        merged = {**self.defaults, **options}
        settings = {key: value for key, value in merged.items() if key in CONFIG_FIELDS}
        rest = {key: value for key, value in merged.items() if key not in CONFIG_FIELDS}
        driver = RabbitMQDriver(self.config(**settings), **rest)
        await driver.open()
        self.drivers.append(driver)
        return driver

    async def close(self) -> None:
        """Close every driver in ``drivers``, then delete the exchange and the queues."""
        for driver in self.drivers:
            await driver.close()
        await delete_topology(self.url, self.exchange, self.queues)


async def ready_count(raw: AbstractChannel, name: str) -> int:
    """Return how many messages queue ``name`` holds ready, as the broker declares it."""
    declared = await raw.declare_queue(name, passive=True)
    return int(declared.declaration_result.message_count or 0)
