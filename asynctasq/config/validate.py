"""Validation of a structured :class:`Config`: every broken rule becomes one problem.

Per-field rules come from each field's :class:`~asynctasq.config.fields.FieldMeta`
(``choices`` and ``rules``); the rules that involve more than one field are here:

- ``min_pool_size`` <= ``max_pool_size`` (postgres, mysql);
- ``queue_table`` and ``dead_letter_table`` name different tables, and no table or index
  made for one has the name of one made for the other (postgres, mysql, sqlite; see
  :func:`table_clash`);
- URL/DSN settings must have an accepted scheme and parse into user, password, host and
  port (FIELD-CASES C29), and a Redis URL's database must be well-formed and agree with an
  explicitly set ``redis.db`` (FIELD-CASES C31; the rule is documented on ``RedisConfig``).

These run when the configuration is resolved. One rule runs later, when a driver is
built (:func:`require_driver_settings`, called by ``build_driver``): a field with
``required_for=<driver>`` (postgres ``dsn``; sqs ``region_name`` and ``queue_url_prefix``)
must be set to use that driver. So ``init({"driver": "postgres"})`` works, and the first
dispatch, ``asynctasq worker`` or ``migrate`` fails with the missing setting named.

Values in problems are masked (secrets as ``***``, passwords inside URLs as ``***``) and
shown as they were given (``'0'`` from the environment, not the converted ``0.0``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from asynctasq.config.fields import DEAD_LETTER_TABLE_SUFFIXES, QUEUE_TABLE_SUFFIXES
from asynctasq.config.leaves import Leaf, leaves, show
from asynctasq.config.records import Config
from asynctasq.config.urls import SCHEMES, redis_url_db, safe_mask, url_problem
from asynctasq.errors import ConfigError, ConfigProblem

POOLS = ("postgres", "mysql")

SQL_GROUPS = ("postgres", "mysql", "sqlite")


def value_at(config: Config, path: str) -> Any:
    """Return the value at dotted ``path`` (``"redis.db"``) of ``config``."""
    found: Any = config
    for part in path.split("."):
        found = getattr(found, part)
    return found


def _problem(
    leaf: Leaf,
    value: Any,
    provenance: Mapping[str, str],
    rule: str,
    given: Mapping[str, Any] | None = None,
) -> ConfigProblem:
    shown = show(leaf, given.get(leaf.path, value) if given else value)
    return ConfigProblem(leaf.path, shown, provenance.get(leaf.path, "default"), rule)


def field_problems(
    config: Config,
    provenance: Mapping[str, str],
    skip: Collection[str] = (),
    given: Mapping[str, Any] | None = None,
) -> Iterator[ConfigProblem]:
    """Yield a problem for each value outside its field's ``choices`` or failing its ``rules``.

    Args:
        config: the structured configuration.
        provenance: ``{path: source text}``.
        skip: paths not to check (their value failed to convert and is a default stand-in).
        given: ``{path: value as given}`` (text from the environment, the code value) to
            show in a problem instead of the converted value; missing paths show the value.

    """
    for path, leaf in leaves().items():
        value = value_at(config, path)
        if path in skip or value is None:
            continue
        if leaf.meta.choices and value not in leaf.meta.choices:
            choices = ", ".join(leaf.meta.choices)
            yield _problem(leaf, value, provenance, f"must be one of: {choices}", given)
        for rule in leaf.meta.rules:
            if not rule.check(value):
                yield _problem(leaf, value, provenance, rule.text, given)


def _pool_problems(
    config: Config, provenance: Mapping[str, str], skip: Collection[str]
) -> Iterator[ConfigProblem]:
    for group in POOLS:
        if {f"{group}.min_pool_size", f"{group}.max_pool_size"} & set(skip):
            continue
        low = value_at(config, f"{group}.min_pool_size")
        high = value_at(config, f"{group}.max_pool_size")
        if low > high:
            high_source = provenance.get(f"{group}.max_pool_size", "default")
            rule = f"must not exceed {group}.max_pool_size ({high}, from {high_source})"
            yield _problem(leaves()[f"{group}.min_pool_size"], low, provenance, rule)


def table_clash(queue_table: str, dead_letter_table: str) -> str | None:
    """Return a name both tables would create, or ``None`` when they are apart.

    Each table brings objects named after it (:data:`QUEUE_TABLE_SUFFIXES`,
    :data:`DEAD_LETTER_TABLE_SUFFIXES`): ``jobs`` makes ``jobs_workers``, ``jobs_ready``...
    Names are compared as written, schema included, ignoring case (SQLite ignores it, and
    MySQL does on some systems). Returns the name as the queue table derives it, e.g.
    ``"jobs"`` or ``"jobs_workers"``.
    """
    made = {(queue_table + suffix).lower(): queue_table + suffix for suffix in QUEUE_TABLE_SUFFIXES}
    for suffix in DEAD_LETTER_TABLE_SUFFIXES:
        found = made.get((dead_letter_table + suffix).lower())
        if found is not None:
            return found
    return None


def _table_problems(
    config: Config, provenance: Mapping[str, str], skip: Collection[str]
) -> Iterator[ConfigProblem]:
    for group in SQL_GROUPS:
        queue_path, dead_path = f"{group}.queue_table", f"{group}.dead_letter_table"
        if {queue_path, dead_path} & set(skip):
            continue
        queue, dead = value_at(config, queue_path), value_at(config, dead_path)
        clash = table_clash(queue, dead)
        if clash is None:
            continue
        where = f"{queue_path} ({queue!r}, from {provenance.get(queue_path, 'default')})"
        if clash.lower() == queue.lower() == dead.lower():
            rule = f"must differ from {where}: dead letters need a table of their own"
        else:
            rule = (
                f"clashes with {where}: both would create {clash!r} (the queue table's "
                "companions add _workers, _completed, _ready, _leased, _completed_q; "
                "the dead-letter table's index adds _queue)"
            )
        yield _problem(leaves()[dead_path], dead, provenance, rule)


def required_problems(
    config: Config, provenance: Mapping[str, str], driver_name: str | None = None
) -> list[ConfigProblem]:
    """Return a problem for each setting the driver ``driver_name`` needs that is not set.

    Args:
        config: the resolved configuration.
        provenance: ``{path: source text}``; a missing path counts as ``"default"``.
        driver_name: the driver about to be used; ``None`` means ``config.driver``.

    Returns:
        e.g. ``[ConfigProblem("postgres.dsn", None, "default", "is required when driver is
        'postgres' (set ASYNCTASQ_POSTGRES_DSN or pass it in code)")]``; ``[]`` when all set.

    """
    driver = config.driver if driver_name is None else driver_name
    found: list[ConfigProblem] = []
    for path, leaf in leaves().items():
        if leaf.meta.required_for == driver and value_at(config, path) is None:
            how = f" (set {leaf.env} or pass it in code)" if leaf.env else ""
            rule = f"is required when driver is {driver!r}{how}"
            found.append(ConfigProblem(path, None, provenance.get(path, "default"), rule))
    return found


def require_driver_settings(
    config: Config, provenance: Mapping[str, str], driver_name: str | None = None
) -> None:
    """Raise when a setting the driver ``driver_name`` needs is not set.

    Called by ``build_driver`` before a driver is built, so that a configuration naming a
    driver can be resolved (and shown by ``asynctasq config``) before it is complete.

    Args:
        config: the resolved configuration.
        provenance: ``{path: source text}``; a missing path counts as ``"default"``.
        driver_name: the driver about to be built; ``None`` means ``config.driver``.

    Raises:
        ConfigError: listing every missing setting, e.g. ``postgres.dsn = <missing> (from
            default): is required when driver is 'postgres' (set ASYNCTASQ_POSTGRES_DSN or
            pass it in code)``.

    Source: seed/configuration.md "init({'driver': 'postgres'})" must work as shown.

    """
    problems = required_problems(config, provenance, driver_name)
    if problems:
        raise ConfigError(problems)


def _url_problems(config: Config, provenance: Mapping[str, str]) -> Iterator[ConfigProblem]:
    for path, leaf in leaves().items():
        value = value_at(config, path)
        checked = leaf.meta.url or path in SCHEMES
        if not checked or not isinstance(value, str) or not value.strip():
            continue
        reason = url_problem(path, value)
        if reason is not None:
            source = provenance.get(path, "default")
            shown = safe_mask(value) if leaf.meta.url else show(leaf, value)
            yield ConfigProblem(path, shown, source, reason)
        elif path in ("redis.url", "events.redis_url"):
            _db, reason = redis_url_db(value)
            if reason is not None:
                yield _problem(leaf, value, provenance, reason)


def redis_db_conflict(
    db: int, url_db: int | None, provenance: Mapping[str, str]
) -> ConfigProblem | None:
    """Return a problem when the Redis URL and an explicit ``redis.db`` name different dbs.

    Args:
        db: ``redis.db`` as the sources set it.
        url_db: the database the URL names, from :func:`~asynctasq.config.urls.redis_url_db`.
        provenance: ``{path: source text}``; ``redis.db`` is explicit unless ``"default"``.

    """
    explicit = provenance.get("redis.db", "default") != "default"
    if url_db is None or not explicit or db == url_db:
        return None
    url_source = provenance.get("redis.url", "default")
    rule = f"conflicts with database {url_db} in redis.url (from {url_source}); set only one"
    return _problem(leaves()["redis.db"], db, provenance, rule)


def cross_problems(
    config: Config, provenance: Mapping[str, str], skip: Collection[str] = ()
) -> Iterator[ConfigProblem]:
    """Yield the problems of rules that involve more than one field, or a URL's structure.

    Args:
        config: the structured configuration.
        provenance: ``{path: source text}``.
        skip: paths whose value failed to convert; rules reading them are not checked.

    """
    yield from _pool_problems(config, provenance, skip)
    yield from _table_problems(config, provenance, skip)
    yield from (p for p in _url_problems(config, provenance) if p.path not in skip)
