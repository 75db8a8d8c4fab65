"""URLs and DSNs: Redis database rule (C31) and passwords with reserved characters (C29)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from asynctasq.config.resolve import resolve
from asynctasq.config.urls import (
    BAD_IPV6,
    BARE_IPV6,
    ENCODE_HINT,
    PORT_RULE,
    SEVERAL_HOSTS,
    STRAY_BRACKET,
    UNCLOSED_BRACKET,
    credentials_problem,
    redis_url_db,
    url_problem,
)
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


HOST_AND_PORT = [
    ("postgres", "dsn", "postgresql://app:s3cret@db:notaport/app", PORT_RULE),
    ("redis", "url", "redis://localhost:99999", PORT_RULE),
    ("redis", "url", "redis://localhost:0", PORT_RULE),
    ("mysql", "dsn", "mysql://app:s3cret@db:-1/app", PORT_RULE),
    ("redis", "url", "redis://[::1:6379", UNCLOSED_BRACKET),
    ("redis", "url", "redis://:s3cret@[::1/0", UNCLOSED_BRACKET),
    ("redis", "url", "redis://::1]:6379", STRAY_BRACKET),
    ("redis", "url", "redis://[not-v6]:6379", BAD_IPV6),
    ("redis", "url", "redis://::1:6379", BARE_IPV6),
    ("redis", "url", "redis://", "names no host, e.g. redis://localhost"),
    ("redis", "url", "redis://:s3cret@/0", "names no host, e.g. redis://localhost"),
    ("rabbitmq", "url", "amqp://guest:s3cret@:5672/", "names no host, e.g. amqp://localhost"),
    ("redis", "url", "redis://h1:6379,h2:6379", SEVERAL_HOSTS),
    ("postgres", "dsn", "postgresql://u:s3cret@h1:5432,h2:x/app", PORT_RULE),
]


@pytest.mark.parametrize(("group", "key", "url", "rule"), HOST_AND_PORT)
def test_a_bad_host_or_port_is_named_not_blamed_on_the_password(
    group: str, key: str, url: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({group: {key: url}}, environ={})
    (problem,) = caught.value.problems
    assert problem.rule == rule
    assert "percent-encode" not in problem.rule
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:p@h1:5432,h2:5432/app",
        "postgresql://u:p@h1,h2:5433/app",
        "postgres://u:p%40ss@h1:5432,[::1]:5432/app?target_session_attrs=read-write",
    ],
)
def test_multi_host_postgres_dsns_are_accepted(dsn: str) -> None:
    assert resolve({"postgres": {"dsn": dsn}}, environ={}).config.postgres.dsn == dsn


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("redis.url", "redis://[::1]:6379/2"),
        ("redis.url", "redis://h:"),
        ("redis.url", "unix:///run/redis.sock?db=1"),
        ("postgres.dsn", "postgresql:///app?host=/var/run/postgresql"),
        ("postgres.dsn", "postgresql://[fe80::1%25eth0]:5432/app"),
        ("sqs.queue_url_prefix", "https://sqs.us-east-1.amazonaws.com/123456789012/"),
        ("sqs.endpoint_url", "http://localhost:4566"),
    ],
)
def test_well_formed_hosts_pass(path: str, url: str) -> None:
    assert url_problem(path, url) is None


def test_the_sqs_queue_url_prefix_must_be_an_http_url() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(environ={"ASYNCTASQ_SQS_QUEUE_URL_PREFIX": "notaurl"})
    (problem,) = caught.value.problems
    assert problem.render() == (
        "sqs.queue_url_prefix = 'notaurl' (from environment variable "
        "ASYNCTASQ_SQS_QUEUE_URL_PREFIX): must start with one of http://, https://"
    )


@pytest.mark.parametrize("url", ["redis://u:p[ss@h/0", "redis://u:p]ss@h/0"])
def test_a_raw_bracket_in_the_password_still_says_percent_encode(url: str) -> None:
    assert credentials_problem(url) == ENCODE_HINT
