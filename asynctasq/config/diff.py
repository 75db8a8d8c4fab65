"""Rows of ``(path, value, default, source)`` for ``asynctasq config``, secrets masked.

Pure functions over a resolved :class:`~asynctasq.config.records.Config` and its
provenance (dotted path -> source text, from ``resolve()``). Values are made safe to show
before they leave this module: a secret field is ``"***"``, a URL or DSN has its password
replaced by ``***``, and free-form values (``tortoise_orm``, an engine, any other text) go
through :func:`~asynctasq.config.mask.mask_urls_in_text`; inside a mapping, the value of a
password-like key (``password``, ``db_pwd``, ``token``) is ``"***"``.

Source: SPEC §2 ("Secrets ... never appear in reprs, logs or errors") and §7 (``config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from asynctasq.config.mask import MASK, is_secret_key, mask_url, mask_urls_in_text
from asynctasq.config.records import Config
from asynctasq.config.schema import SettingSpec, settings
from asynctasq.config.validate import value_at

DEFAULT_SOURCE = "default"


@attrs.frozen
class Row:
    """One leaf setting as ``asynctasq config`` shows it.

    Attributes:
        path: dotted key path, e.g. ``"postgres.dsn"``.
        value: the resolved value, masked; JSON-friendly (``str``, ``int``, ``float``,
            ``bool``, ``None``, or a masked ``dict``/``list`` for code-only values).
        default: the default value, masked the same way.
        source: where the value came from: ``"default"``, ``"code"``, ``"flag --redis-db"``,
            ``"environment variable ASYNCTASQ_DRIVER"`` or ``".env line 3"``.
        changed: whether the resolved value differs from the default.

    """

    path: str
    value: Any
    default: Any
    source: str
    changed: bool

    def as_json(self) -> dict[str, Any]:
        """Return ``{"path", "value", "default", "source"}`` for ``config --json``."""
        return {
            "path": self.path,
            "value": self.value,
            "default": self.default,
            "source": self.source,
        }


def _masked_plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask_urls_in_text(value)
    if isinstance(value, Mapping):
        return {
            str(key): MASK if is_secret_key(str(key)) and item is not None else _masked_plain(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked_plain(item) for item in value]
    return mask_urls_in_text(repr(value))


def shown(spec: SettingSpec, value: Any) -> Any:
    """Return ``value`` of setting ``spec`` made safe to print.

    Args:
        spec: the setting (its ``secret`` and ``url`` flags decide the masking).
        value: the raw value.

    Returns:
        ``None`` for ``None``; ``"***"`` for a set secret; a URL/DSN with its password
        replaced by ``***``; other scalars unchanged; containers and objects with any
        embedded URL password masked.

    """
    if value is None:
        return None
    if spec.secret:
        return MASK
    if spec.url:
        return mask_url(str(value))
    return _masked_plain(value)


def rows(config: Config, provenance: Mapping[str, str]) -> list[Row]:
    """Return one :class:`Row` per leaf setting, in the schema's display order.

    Args:
        config: the resolved configuration.
        provenance: dotted path -> source text; a missing path counts as ``"default"``.

    Returns:
        Every setting, masked, with its default and source.

    """
    found: list[Row] = []
    for spec in settings():
        value = value_at(config, spec.path)
        found.append(
            Row(
                path=spec.path,
                value=shown(spec, value),
                default=shown(spec, spec.default),
                source=provenance.get(spec.path, DEFAULT_SOURCE),
                changed=value != spec.default,
            )
        )
    return found


def diff_rows(config: Config, provenance: Mapping[str, str]) -> list[Row]:
    """Return the rows of :func:`rows` whose value differs from the default.

    A setting given explicitly with its default value is not a difference.
    """
    return [row for row in rows(config, provenance) if row.changed]
