"""The leaves of the configuration tree: every setting, its dotted path, type and names.

A leaf is ``driver``, ``sqlalchemy_engine``, ``tortoise_orm`` or ``<group>.<field>`` (e.g.
``redis.db``). Its environment variable and CLI flag are derived from the path unless its
:class:`~asynctasq.config.fields.FieldMeta` says otherwise, so no name is written twice.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import attrs

from asynctasq.config.fields import FieldMeta, settings_of
from asynctasq.config.mask import MASK, mask_secret, mask_url, mask_urls_in_text
from asynctasq.config.records import GROUPS, Config

ENV_PREFIX = "ASYNCTASQ_"
"""Only environment and ``.env`` names with this prefix are read (FIELD-CASES C25)."""


@attrs.frozen
class Leaf:
    """One setting.

    Attributes:
        path: dotted path, e.g. ``"redis.db"`` or ``"driver"``.
        group: the group key (``"redis"``) or ``None`` for a top-level setting.
        name: the field name inside its record (``"db"``).
        type: the resolved field type (``int``, ``str | None``, ...).
        meta: the field's :class:`FieldMeta`.
        default: the field's default value.
        env: the environment variable name, or ``None`` for a code-only setting.
        flag: the CLI flag, e.g. ``"--redis-db"``.

    """

    path: str
    group: str | None
    name: str
    type: Any
    meta: FieldMeta
    default: Any
    env: str | None
    flag: str


def env_name(path: str, meta: FieldMeta) -> str | None:
    """Return the environment variable for ``path``: ``meta.env`` or ``ASYNCTASQ_<PATH>``.

    ``ASYNCTASQ_`` plus the path with dots as underscores, upper case (``redis.db`` ->
    ``ASYNCTASQ_REDIS_DB``); ``None`` when ``meta.env`` is ``""`` (code only).

    Source: SPEC §2 "Environment names".
    """
    if meta.env is not None:
        return meta.env or None
    return ENV_PREFIX + path.replace(".", "_").upper()


def flag_name(path: str) -> str:
    """Return the CLI flag for ``path``: ``redis.db`` -> ``--redis-db``."""
    return "--" + path.replace(".", "-").replace("_", "-")


def _leaf(path: str, group: str | None, field: attrs.Attribute[Any], meta: FieldMeta) -> Leaf:
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    return Leaf(
        path=path,
        group=group,
        name=field.name,
        type=field.type,
        meta=meta,
        default=default,
        env=env_name(path, meta),
        flag=flag_name(path),
    )


@functools.cache
def leaves() -> dict[str, Leaf]:
    """Return every leaf of :class:`Config`, by dotted path, in declaration order."""
    attrs.resolve_types(cast(Any, Config))
    found: dict[str, Leaf] = {}
    for name, (field, meta) in settings_of(Config).items():
        group_cls = GROUPS.get(name)
        if group_cls is None:
            found[name] = _leaf(name, None, field, meta)
            continue
        attrs.resolve_types(group_cls)
        for sub, (sub_field, sub_meta) in settings_of(group_cls).items():
            path = f"{name}.{sub}"
            found[path] = _leaf(path, name, sub_field, sub_meta)
    return found


@functools.cache
def env_names() -> dict[str, str]:
    """Return ``{environment variable: dotted path}`` for every leaf that has one."""
    return {leaf.env: path for path, leaf in leaves().items() if leaf.env is not None}


def group_keys(group: str) -> dict[str, str]:
    """Return ``{accepted code key: field name}`` for a group, aliases included."""
    keys: dict[str, str] = {}
    for name, (_field, meta) in settings_of(GROUPS[group]).items():
        keys[name] = name
        for alias in meta.aliases:
            keys[alias] = name
    return keys


def show(leaf: Leaf | None, value: Any) -> str:
    """Return ``value`` as text for a message, masked as ``leaf`` requires.

    Secret fields show ``***``; URL fields show the URL with its password masked; other
    text has any URL password inside it masked (:func:`mask_urls_in_text`). A value of an
    unknown key (``leaf`` is ``None``) shows only when it is a number or a bool, since a
    mistyped ``pasword`` key still holds a secret. A value that is not text or a number (a
    dict such as ``tortoise_orm``, an engine) shows only its type, ``<dict>``, since it may
    hold passwords.
    """
    if value is None:
        return "None"
    if not isinstance(value, str | int | float):
        return f"<{type(value).__name__}>"
    if leaf is None:
        return str(value) if isinstance(value, int | float) else MASK
    if leaf.meta.secret:
        return mask_secret(value)
    if leaf.meta.url:
        return mask_url(str(value))
    return mask_urls_in_text(str(value))


def show_given(value: Any) -> str:
    """Return a value given where a setting group or the overrides were expected, masked.

    Text keeps its words with any password inside masked (``'redis://x'``); numbers show
    as written; other objects show their type (``<SQSConfig>``), since they may hold secrets.
    """
    if isinstance(value, str):
        return mask_urls_in_text(value)
    return show(None, value)
