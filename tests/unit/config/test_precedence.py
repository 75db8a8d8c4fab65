"""Precedence over every setting: code > environment > .env > defaults (flags rank with code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asynctasq.config.leaves import Leaf, leaves
from asynctasq.config.resolve import resolve
from asynctasq.config.validate import value_at

URLS = {
    "redis.url": ["redis://one.example:6379", "redis://two.example:6379", "rediss://three:6380"],
    "events.redis_url": ["redis://ev1:6379", "redis://ev2:6379", "redis://ev3:6379"],
    "postgres.dsn": ["postgresql://a:p1@h1/db", "postgresql://b:p2@h2/db", "postgres://c@h3/db"],
    "mysql.dsn": ["mysql://a:p1@h1/db", "mysql://b:p2@h2/db", "mysql://c:p3@h3:3307/db"],
    "rabbitmq.url": ["amqp://a:p1@h1:5672/", "amqp://b:p2@h2:5672/", "amqps://c:p3@h3/"],
    "sqs.endpoint_url": ["http://localhost:4566", "http://h2:4566", "https://h3"],
    "sqs.queue_url_prefix": ["https://sqs.a/1/", "https://sqs.b/2/", "http://localhost:4566/3/"],
}
FEWER = {  # must stay <= max_pool_size (10), or <= 900 (the SQS delay limit)
    "postgres.min_pool_size",
    "mysql.min_pool_size",
    "sqs.delay_hop_seconds",
}
DRIVERS = ["memory", "postgres", "sqs"]  # required settings are checked when a driver is built


def sample(leaf: Leaf, n: int) -> Any:
    """Return the n-th (0..2) valid non-default value of ``leaf``, distinct for each n."""
    if leaf.path in URLS:
        return URLS[leaf.path][n]
    if leaf.path == "driver":
        return DRIVERS[n]
    if leaf.meta.choices:
        order = [c for c in leaf.meta.choices if c != leaf.default] + [leaf.default]
        return order[n % len(order)]
    if leaf.type is bool or leaf.type == bool | None:
        return (n % 2 == 0) != bool(leaf.default)  # the first sample is never the default
    if leaf.type is int or leaf.type == int | None:
        base = leaf.default or 1
        return base - 1 - n if leaf.path in FEWER else base + 1 + n
    if leaf.type is float:
        return leaf.default + 0.5 * (n + 1)
    if leaf.path.endswith("_table"):
        return f"value_{n}_{leaf.name}"  # a table name: letters, digits, underscores
    return f"value-{n}-{leaf.name}"


def text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def nested(path: str, value: Any) -> dict[str, Any]:
    group, _, name = path.partition(".")
    return {group: {name: value}} if name else {group: value}


ENV_LEAVES = [p for p, leaf in leaves().items() if leaf.env is not None]
ALL_LEAVES = list(leaves())


def test_the_matrix_covers_every_environment_setting() -> None:
    assert len(ENV_LEAVES) == len(ALL_LEAVES) - 2  # sqlalchemy_engine, tortoise_orm: code only
    for path in ENV_LEAVES:
        leaf = leaves()[path]
        values = [sample(leaf, n) for n in range(3)]
        assert values[0] != leaf.default, path
        assert values[0] != values[1] != values[2], path


@pytest.mark.parametrize("path", ALL_LEAVES)
def test_default_alone(path: str) -> None:
    resolved = resolve()
    assert value_at(resolved.config, path) == leaves()[path].default
    assert resolved.provenance[path] == "default"


@pytest.mark.parametrize("path", ENV_LEAVES)
def test_dotenv_alone(path: str) -> None:
    leaf = leaves()[path]
    Path(".env").write_text(f"# settings\n{leaf.env}={text(sample(leaf, 0))}\n")
    resolved = resolve()
    assert value_at(resolved.config, path) == sample(leaf, 0)
    assert resolved.provenance[path] == ".env line 2"


@pytest.mark.parametrize("path", ENV_LEAVES)
def test_environment_alone(path: str) -> None:
    leaf = leaves()[path]
    assert leaf.env is not None
    resolved = resolve(environ={leaf.env: text(sample(leaf, 0))})
    assert value_at(resolved.config, path) == sample(leaf, 0)
    assert resolved.provenance[path] == f"environment variable {leaf.env}"


@pytest.mark.parametrize("path", ENV_LEAVES)
def test_code_alone(path: str) -> None:
    leaf = leaves()[path]
    resolved = resolve(nested(path, sample(leaf, 0)), environ={})
    assert value_at(resolved.config, path) == sample(leaf, 0)
    assert resolved.provenance[path] == "code"


@pytest.mark.parametrize("path", ENV_LEAVES)
def test_flag_alone(path: str) -> None:
    leaf = leaves()[path]
    resolved = resolve(environ={}, flags=nested(path, text(sample(leaf, 0))))
    assert value_at(resolved.config, path) == sample(leaf, 0)
    assert resolved.provenance[path] == f"flag {leaf.flag}"


@pytest.mark.parametrize("path", ENV_LEAVES)
def test_code_beats_environment_beats_dotenv_beats_default(path: str) -> None:
    leaf = leaves()[path]
    assert leaf.env is not None
    dotenv_value, env_value, code_value = (sample(leaf, n) for n in range(3))
    Path(".env").write_text(f"{leaf.env}={text(dotenv_value)}\n")
    env = {leaf.env: text(env_value)}

    only_file = resolve(environ={})
    assert value_at(only_file.config, path) == dotenv_value
    assert only_file.provenance[path] == ".env line 1"

    file_and_env = resolve(environ=env)
    assert value_at(file_and_env.config, path) == env_value
    assert file_and_env.provenance[path] == f"environment variable {leaf.env}"

    everything = resolve(nested(path, code_value), environ=env)
    assert value_at(everything.config, path) == code_value
    assert everything.provenance[path] == "code"


@pytest.mark.parametrize("path", ENV_LEAVES)
def test_flag_beats_environment_and_code(path: str) -> None:
    leaf = leaves()[path]
    assert leaf.env is not None
    env_value, code_value, flag_value = (sample(leaf, n) for n in range(3))
    resolved = resolve(
        nested(path, code_value),
        environ={leaf.env: text(env_value)},
        flags=nested(path, text(flag_value)),
    )
    assert value_at(resolved.config, path) == flag_value
    assert resolved.provenance[path] == f"flag {leaf.flag}"


@pytest.mark.parametrize("path", ENV_LEAVES)
def test_blank_environment_value_falls_back_to_dotenv(path: str) -> None:
    leaf = leaves()[path]
    assert leaf.env is not None
    Path(".env").write_text(f"{leaf.env}={text(sample(leaf, 1))}\n")
    resolved = resolve(environ={leaf.env: "  "})
    assert value_at(resolved.config, path) == sample(leaf, 1)
    assert resolved.provenance[path] == ".env line 1"


def test_code_only_settings_come_from_code() -> None:
    engine = object()
    tortoise = {"db_url": "sqlite://:memory:", "modules": {"models": ["app.models"]}}
    resolved = resolve({"sqlalchemy_engine": engine, "tortoise_orm": tortoise}, environ={})
    assert resolved.config.sqlalchemy_engine is engine
    assert resolved.config.tortoise_orm == tortoise
    assert resolved.provenance["sqlalchemy_engine"] == "code"
    assert resolved.provenance["tortoise_orm"] == "code"


def test_provenance_names_every_leaf() -> None:
    assert set(resolve(environ={}).provenance) == set(leaves())
