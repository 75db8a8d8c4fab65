"""Drivers: one module per broker behind :class:`~asynctasq.drivers.protocol.Driver`.

:func:`build_driver` looks the driver name up in a table of ``"module:function"`` strings
and imports that module only then, so a broker's client library is needed only when its
driver is used (the way anyio loads its backends by name).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from asynctasq.config.validate import require_driver_settings
from asynctasq.errors import ConfigError

if TYPE_CHECKING:
    from asynctasq.config.records import Config
    from asynctasq.drivers.protocol import Driver

BUILDERS: Mapping[str, str] = {
    "redis": "asynctasq.drivers.redis:build",
    "memory": "asynctasq.drivers.memory:build",
    "rabbitmq": "asynctasq.drivers.rabbitmq:build",
    "postgres": "asynctasq.drivers.postgres:build",
    "mysql": "asynctasq.drivers.mysql:build",
    "sqlite": "asynctasq.drivers.sqlite:build",
    "sqs": "asynctasq.drivers.sqs:build",
}
"""Driver name -> ``"module:function"``; the function takes the ``Config`` and returns a Driver."""

EXTRAS: Mapping[str, str] = {
    "redis": "redis",
    "rabbitmq": "rabbitmq",
    "sqs": "sqs",
    "postgres": "postgres",
    "mysql": "mysql",
}
"""Driver name -> the ``pip install asynctasq[extra]`` that provides its client library."""

NOT_YET: tuple[str, ...] = ()
"""Drivers the configuration accepts but this version does not provide."""


def build_driver(
    config: Config, name: str | None = None, *, provenance: Mapping[str, str] | None = None
) -> Driver:
    """Build the driver ``name`` (default ``config.driver``) from its configuration group.

    The driver is not connected yet: call ``await driver.open()`` (the handle does).

    Args:
        config: the resolved configuration; the driver reads only its own group.
        name: a driver name such as ``"redis"`` or ``"memory"``; ``None`` means ``config.driver``.
        provenance: ``{setting path: source text}`` from ``resolve()``, used to say where a
            missing required setting came from; ``None`` reports each as ``"default"``.

    Returns:
        A new, unopened driver.

    Raises:
        ConfigError: the name is unknown, the driver is not available in this version, a
            setting it requires is not set (e.g. ``postgres.dsn``), or its client library is
            not installed.

    """
    chosen = config.driver if name is None else name
    target = BUILDERS.get(chosen)
    if target is None:
        if chosen in NOT_YET:
            raise ConfigError(
                f"driver {chosen!r} is not available in this version of asynctasq; "
                f"available drivers: {', '.join(sorted(BUILDERS))}"
            )
        raise ConfigError(
            f"unknown driver {chosen!r}; available drivers: {', '.join(sorted(BUILDERS))}"
        )
    require_driver_settings(config, provenance or {}, chosen)
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = EXTRAS.get(chosen, chosen)
        raise ConfigError(
            f"driver {chosen!r} needs a library that is not installed ({exc.name or exc}); "
            f"install it with: pip install 'asynctasq[{extra}]'"
        ) from exc
    build = cast("Callable[[Config], Driver]", getattr(module, function_name))
    return build(config)
