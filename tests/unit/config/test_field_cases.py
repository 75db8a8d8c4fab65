"""FIELD-CASES C25 (prefix only) and C27 (bool/number parsing); issue 2's done-when checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from asynctasq.config.resolve import resolve
from asynctasq.errors import ConfigError
from asynctasq.handle import init

UNPREFIXED = {"DRIVER": "sqs", "REDIS_URL": "redis://wrong.invalid:1/9", "redis_db": "7"}


def test_c25_unprefixed_dotenv_keys_have_no_effect() -> None:
    lines = [f"{k}={v}" for k, v in UNPREFIXED.items()] + ["ASYNCTASQ_REDIS_DB=2"]
    Path(".env").write_text("\n".join(lines) + "\n")
    config = init().config
    assert config.driver == "redis"
    assert config.redis.url == "redis://localhost:6379"
    assert config.redis.db == 2


def test_c25_unprefixed_environment_variables_have_no_effect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Path(".env").write_text("ASYNCTASQ_REDIS_DB=2\n")
    for name, value in UNPREFIXED.items():
        monkeypatch.setenv(name, value)
    config = init().config
    assert config.driver == "redis"
    assert config.redis.url == "redis://localhost:6379"
    assert config.redis.db == 2


BOOL_VAR = "ASYNCTASQ_EVENTS_ENABLE_EVENT_EMITTER_REDIS"
BOOLS = [
    ("FALSE", False),
    ("False", False),
    ("0", False),
    ("no", False),
    ("off", False),
    (" false ", False),
    ("TRUE", True),
    (" yes ", True),
    ("On", True),
    ("t", True),
    ("Y", True),
    ("", None),
    ("   ", None),
    ("None", "must be a boolean"),
    ("maybe", "must be a boolean"),
]
INTS = [
    ("5", 5),
    (" 5 ", 5),
    ("", None),
    ("5.0", "must be a whole number"),
    ("abc", "must be a whole number"),
    ("20", "must be between 0 and 15"),
    ("-1", "must be between 0 and 15"),
]
CASES = [(BOOL_VAR, "events.enable_event_emitter_redis", t, e) for t, e in BOOLS] + [
    ("ASYNCTASQ_REDIS_DB", "redis.db", t, e) for t, e in INTS
]


def resolve_from(where: str, name: str, text: str) -> object:
    if where == "environment":
        return resolve(environ={name: text})
    Path(".env").write_text(f'# c27\n{name}="{text}"\n')
    return resolve(environ={})


@pytest.mark.parametrize("where", ["environment", ".env"])
@pytest.mark.parametrize(("name", "path", "text", "expected"), CASES)
def test_c27_parsing_table(
    where: str, name: str, path: str, text: str, expected: bool | int | str | None
) -> None:
    source = f"environment variable {name}" if where == "environment" else ".env line 2"
    group, field = path.split(".")
    if isinstance(expected, str):
        with pytest.raises(ConfigError) as caught:
            resolve_from(where, name, text)
        (problem,) = caught.value.problems
        assert (problem.path, problem.value, problem.source) == (path, text, source)
        assert expected in problem.rule
        assert f"{path} = {text!r} (from {source}): {expected}" in str(caught.value)
        return
    resolved = resolve_from(where, name, text)
    value = getattr(getattr(resolved.config, group), field)  # type: ignore[attr-defined]
    if expected is None:  # blank means unset: the default, from "default"
        assert value == (False if group == "events" else 0)
        assert resolved.provenance[path] == "default"  # type: ignore[attr-defined]
    else:
        assert value == expected
        assert resolved.provenance[path] == source  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "expected"), [(" 5 ", 5), ("", 0)])
def test_c27_flags_parse_like_the_environment(text: str, expected: int) -> None:
    assert resolve(environ={}, flags={"redis": {"db": text}}).config.redis.db == expected


def test_c27_flag_error_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"redis\.db = '5\.0' \(from flag --redis-db\)"):
        resolve(environ={}, flags={"redis": {"db": "5.0"}})


def test_done_when_driver_from_environment_dsn_from_dotenv_password_hidden() -> None:
    Path(".env").write_text("ASYNCTASQ_POSTGRES_DSN=postgresql://app:s3cret@db/app\n")
    resolved = resolve(environ={"ASYNCTASQ_DRIVER": "postgres"})
    assert resolved.config.driver == "postgres"
    assert resolved.config.postgres.dsn == "postgresql://app:s3cret@db/app"
    assert resolved.provenance["driver"] == "environment variable ASYNCTASQ_DRIVER"
    assert resolved.provenance["postgres.dsn"] == ".env line 1"
    assert "s3cret" not in repr(resolved)
    assert "postgresql://app:***@db/app" in repr(resolved.config.postgres)


def test_done_when_redis_db_20_makes_init_raise_one_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCTASQ_REDIS_DB", "20")
    with pytest.raises(ConfigError) as caught:
        init()
    (problem,) = caught.value.problems
    assert problem.source == "environment variable ASYNCTASQ_REDIS_DB"
    assert problem.rule == "must be between 0 and 15"
    assert "ASYNCTASQ_REDIS_DB" in str(caught.value)
