"""URLs and DSNs: Redis database rule (C31) and passwords with reserved characters (C29)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from asynctasq.config.resolve import resolve
from asynctasq.config.urls import credentials_problem, redis_url_db
from asynctasq.errors import ConfigError

DB_RULES = [
    # (url, db setting or None, expected db or error fragment)
    ("redis://h/2", None, 2),
    ("redis://h?db=3", None, 3),
    ("redis://h/2?db=3", None, "names database 2 in its path but 3 in ?db="),
    ("redis://h/2?db=2", None, 2),
    ("redis://h/2", 5, "conflicts with database 2 in redis.url (from code); set only one"),
    ("redis://h/2", 2, 2),
    ("redis://h?db=4", 5, "conflicts with database 4 in redis.url"),
    ("redis://h:6379", 7, 7),
    ("redis://h/", 7, 7),
    ("redis://h", None, 0),
    ("redis://h/1/2", None, "the URL path must be empty or /<database number>"),
    ("redis://h/abc", None, "the URL path must be empty or /<database number>"),
    ("redis://h/1.5", None, "the URL path must be empty or /<database number>"),
    ("redis://h//7", None, "the URL path must be empty or /<database number>"),
    ("redis://h?db=x", None, "?db= must be a whole number"),
    ("redis://h?db=1&db=1", None, "names the database more than once"),
    ("redis://h/20", None, "must be between 0 and 15"),
    ("rediss://h:6380/3", None, 3),
    ("unix:///tmp/r.sock", None, 0),
    ("unix:///tmp/r.sock?db=4", None, 4),
    ("unix:///tmp/r.sock?db=4", 4, 4),
    ("unix:///tmp/r.sock?db=4", 6, "conflicts with database 4 in redis.url"),
    ("unix:///tmp/r.sock", 6, 6),
]


@pytest.mark.parametrize(("url", "db", "expected"), DB_RULES)
def test_redis_database_rule(url: str, db: int | None, expected: int | str) -> None:
    redis: dict[str, object] = {"url": url} if db is None else {"url": url, "db": db}
    if isinstance(expected, int):
        assert resolve({"redis": redis}, environ={}).config.redis.db == expected
        return
    with pytest.raises(ConfigError) as caught:
        resolve({"redis": redis}, environ={})
    (problem,) = caught.value.problems
    assert expected in problem.rule


def test_database_from_the_url_reports_the_url_as_its_source() -> None:
    resolved = resolve(environ={"ASYNCTASQ_REDIS_URL": "redis://h/3"})
    assert resolved.config.redis.db == 3
    assert resolved.provenance["redis.db"] == "environment variable ASYNCTASQ_REDIS_URL"


def test_explicit_db_equal_to_the_default_still_conflicts_with_the_url() -> None:
    with pytest.raises(ConfigError, match=r"conflicts with database 2 in redis\.url"):
        resolve(environ={"ASYNCTASQ_REDIS_URL": "redis://h/2", "ASYNCTASQ_REDIS_DB": "0"})


def test_events_redis_url_with_a_malformed_path_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"events\.redis_url .*the URL path must be empty"):
        resolve({"events": {"redis_url": "redis://h/x"}}, environ={})


@pytest.mark.parametrize(
    ("url", "db"), [("redis://h/2", 2), ("unix:///s?db=1", 1), ("redis://h", None)]
)
def test_redis_url_db_is_pure(url: str, db: int | None) -> None:
    assert redis_url_db(url) == (db, None)


PASSWORDS = ["p@ss", "p#ss", "p%ss", "p/ss", "p:ss", "p ss", "p+ss", "pä$s", "p?ss"]


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize(
    ("group", "scheme"), [("postgres", "postgresql"), ("mysql", "mysql"), ("redis", "redis")]
)
def test_percent_encoded_passwords_are_accepted_unchanged(
    password: str, group: str, scheme: str
) -> None:
    key, path = ("url", "/0") if group == "redis" else ("dsn", "/app")
    dsn = f"{scheme}://user:{quote(password, safe='')}@db.example:5432{path}"
    config = resolve({"driver": "memory", group: {key: dsn}}, environ={}).config
    assert getattr(getattr(config, group), key) == dsn


@pytest.mark.parametrize("password", ["p@ss", "p#ss", "p%ss", "p/ss", "p?ss", "a#b@c/d"])
@pytest.mark.parametrize(
    ("group", "scheme"), [("postgres", "postgresql"), ("mysql", "mysql"), ("redis", "redis")]
)
def test_raw_reserved_characters_say_percent_encode_and_never_show_the_password(
    password: str, group: str, scheme: str
) -> None:
    key = "url" if group == "redis" else "dsn"
    dsn = f"{scheme}://user:{password}@db.example:5432/app"
    with pytest.raises(ConfigError) as caught:
        resolve({group: {key: dsn}}, environ={})
    (problem,) = caught.value.problems
    assert problem.path == f"{group}.{key}"
    assert "percent-encode the password" in problem.rule
    assert problem.value == f"{scheme}://***"
    assert password not in str(caught.value)
    assert password not in repr(caught.value.problems)


@pytest.mark.parametrize("password", ["p:ss", "p+ss", "pä$s", "p ss"])
def test_raw_characters_that_do_not_break_parsing_are_accepted(password: str) -> None:
    dsn = f"postgresql://user:{password}@db.example/app"
    assert credentials_problem(dsn) is None


def test_user_name_with_a_raw_at_sign_must_be_encoded() -> None:
    assert credentials_problem("postgresql://me@tenant:pw@h/db") is not None
    assert credentials_problem("postgresql://me%40tenant:pw@h/db") is None


def test_dsn_with_an_invalid_port_is_an_error_without_the_port_text() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({"postgres": {"dsn": "postgresql://u:pw@h:notaport/db"}}, environ={})
    assert "notaport" not in str(caught.value)
