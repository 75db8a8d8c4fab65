"""``resolve()``: merge the sources, structure once, validate, and say where each value came from.

The pipeline, all pure except for one warning::

    defaults() < dotenv(env_file) < environ(environ) < overrides(code) < flags(flags)
        -> merge -> convert each leaf (make_converter) -> Config -> validate
        -> Resolved(config, provenance)   or   ConfigError listing every problem

Precedence is the seed's: code > environment variables > ``.env`` > defaults. CLI flags
are the CLI's code layer; when both are given, a flag beats a code override.

Source: seed/configuration.md "Configuration Priority"; SPEC §2.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import attrs

from asynctasq.config import sources
from asynctasq.config.convert import ConversionError, make_converter, type_name
from asynctasq.config.leaves import env_names, leaves, show
from asynctasq.config.records import Config
from asynctasq.config.sources import Layer
from asynctasq.config.urls import redis_url_db, url_problem
from asynctasq.config.validate import cross_problems, field_problems, redis_db_conflict
from asynctasq.errors import ConfigError, ConfigProblem, UnknownSettingWarning


@attrs.frozen
class Resolved:
    """A resolved configuration and the source of each of its values.

    Attributes:
        config: the frozen configuration record.
        provenance: ``{dotted leaf path: source text}`` for every leaf, e.g.
            ``{"driver": "default", "redis.db": "environment variable ASYNCTASQ_REDIS_DB",
            "postgres.dsn": ".env line 3", "redis.url": "code", "redis.max_connections":
            "flag --redis-max-connections"}``.

    """

    config: Config
    provenance: Mapping[str, str]


_CONVERTER = make_converter()


def _raw(values: Mapping[str, Any], path: str) -> Any:
    group, _, name = path.partition(".")
    return values[group][name] if name else values[group]


def _convert(merged: Layer) -> tuple[dict[str, Any], set[str], list[ConfigProblem]]:
    """Convert each leaf; a leaf that fails keeps its default and becomes a problem."""
    converted: dict[str, Any] = {}
    failed: set[str] = set()
    problems: list[ConfigProblem] = []
    for path, leaf in leaves().items():
        raw = _raw(merged.values, path)
        try:
            converted[path] = _CONVERTER.structure(raw, leaf.type)
        except Exception as exc:  # any failure to convert is a problem to report
            rule = str(exc) if isinstance(exc, ConversionError) else ""
            rule = rule or f"must be of type {type_name(leaf.type)}"
            source = merged.sources.get(path, "default")
            problems.append(ConfigProblem(path, show(leaf, raw), source, rule))
            failed.add(path)
            converted[path] = leaf.default
    return converted, failed, problems


def _apply_url_db(
    converted: dict[str, Any], provenance: dict[str, str], failed: set[str], given: dict[str, Any]
) -> ConfigProblem | None:
    """Take ``redis.db`` from the Redis URL when only the URL names one (RedisConfig rule)."""
    url = converted["redis.url"]
    if {"redis.url", "redis.db"} & failed or url_problem("redis.url", url) is not None:
        return None
    url_db, reason = redis_url_db(url)
    if reason is not None or url_db is None:
        return None
    conflict = redis_db_conflict(converted["redis.db"], url_db, provenance)
    if conflict is None and provenance["redis.db"] == "default":
        converted["redis.db"] = given["redis.db"] = url_db
        provenance["redis.db"] = provenance["redis.url"]
    return conflict


def _build(converted: Mapping[str, Any]) -> Config:
    nested: dict[str, Any] = {}
    for path, value in converted.items():
        group, _, name = path.partition(".")
        if name:
            nested.setdefault(group, {})[name] = value
        else:
            nested[group] = value
    return _CONVERTER.structure(nested, Config)


def caller_stacklevel() -> int:
    """Return the ``stacklevel`` that makes a warning point at the first frame outside asynctasq.

    ``resolve()`` is reached through ``init()``, ``configured()``, ``Config.get()`` and the
    CLI at different depths; counting frames up to the caller's keeps the file and line the
    warning reports in the user's code.
    """
    level = 1
    frame = sys._getframe(1)  # the function that will call warnings.warn
    while frame.f_back is not None:
        module = frame.f_globals.get("__name__", "")
        if module != "asynctasq" and not module.startswith("asynctasq."):
            break
        frame = frame.f_back
        level += 1
    return level


def _warn_ignored(unknown: tuple[tuple[str, str], ...], malformed: tuple[str, ...]) -> None:
    """Warn once about unknown ``ASYNCTASQ_*`` names and once about malformed ``.env`` lines."""
    if unknown:
        known = list(env_names())
        parts = []
        for name, source in unknown:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]}?" if close else ""
            parts.append(f"{name} ({source.removesuffix(' ' + name)}{hint})")
        message = "ignoring unknown asynctasq settings: " + ", ".join(parts)
        warnings.warn(message, UnknownSettingWarning, stacklevel=caller_stacklevel())
    if malformed:
        message = (
            "ignoring lines that are not KEY=value: "
            + ", ".join(malformed)
            + " (write KEY=value, optionally after 'export '; comments start with '#')"
        )
        warnings.warn(message, UnknownSettingWarning, stacklevel=caller_stacklevel())


def resolve_layers(
    explicit: Layer,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = ".env",
) -> Resolved:
    """Resolve with an already-built explicit (code and flags) layer on top.

    :func:`resolve` builds that layer from its arguments; ``configured()`` merges its
    overrides over the current handle's explicit layer and calls this.

    Args:
        explicit: the code/flags layer (highest precedence).
        environ: the environment; ``None`` means ``os.environ``.
        env_file: the ``.env`` path; ``None`` reads no file; a missing file is fine.

    Returns:
        The :class:`Resolved` configuration.

    Raises:
        ConfigError: listing every problem at once (values masked).

    Warns:
        UnknownSettingWarning: naming each ``ASYNCTASQ_*`` variable that is no setting, and
            each ``.env`` line that is not ``KEY=value``; the warning points at the first
            caller outside asynctasq.

    """
    file_layer = sources.dotenv(None if env_file is None else os.fspath(env_file))
    merged = sources.merge(sources.defaults(), file_layer, sources.environ(environ), explicit)
    _warn_ignored(merged.unknown, merged.malformed)
    converted, failed, problems = _convert(merged)
    problems[:0] = merged.problems
    provenance = {path: merged.sources.get(path, "default") for path in leaves()}
    given = {path: _raw(merged.values, path) for path in leaves()}
    conflict = _apply_url_db(converted, provenance, failed, given)
    if conflict is not None:
        problems.append(conflict)
    config = _build(converted)
    problems.extend(field_problems(config, provenance, failed, given))
    problems.extend(cross_problems(config, provenance, failed))
    if problems:
        raise ConfigError(problems)
    return Resolved(config, provenance)


def explicit_layer(
    overrides: Mapping[str, Any] | Config | None = None, flags: Mapping[str, Any] | None = None
) -> Layer:
    """Return the merged code and flags layer (flags on top)."""
    return sources.merge(sources.overrides(overrides), sources.flags(flags))


def resolve(
    overrides: Mapping[str, Any] | Config | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = ".env",
    flags: Mapping[str, Any] | None = None,
) -> Resolved:
    """Resolve the configuration from defaults, ``.env``, the environment, code and flags.

    Args:
        overrides: code settings: a nested mapping (``{"redis": {"db": 5}}``), records in
            it (``{"redis": RedisConfig(db=5)}``, exactly the keys it was built with), or a
            :class:`Config`.
        environ: the environment; ``None`` means ``os.environ``.
        env_file: the ``.env`` path (default ``".env"`` in the current directory);
            ``None`` reads no file; a missing file is fine.
        flags: CLI flag settings as a nested mapping; ``None`` values and blank text mean
            "not given". Flags rank with code, above it when both set a key.

    Returns:
        ``Resolved(config, provenance)``.

    Raises:
        ConfigError: listing every problem (unknown code keys, values that do not parse,
            broken rules), each with its path, masked value, source and rule.

    Warns:
        UnknownSettingWarning: naming each ``ASYNCTASQ_*`` variable that is no setting.

    Source: seed/configuration.md "Configuration Priority"; SPEC §2.

    """
    return resolve_layers(explicit_layer(overrides, flags), environ=environ, env_file=env_file)
