"""One CLI flag per environment-settable setting, generated from the configuration schema.

Flags keep their values as the raw strings the user typed and hand them to ``resolve()``
(``flags=``), so a flag is parsed and validated by exactly the rules that apply to its
environment variable: ``--redis-db " 5 "`` is 5, ``--redis-db 99`` is a ``ConfigError``
naming ``flag --redis-db``, ``--events-enable-all yes`` is true, an empty value is unset.
Flags sit at the precedence of code: above the environment and ``.env``.

Source: SPEC §7 ("a flag for every config field ... flags override the environment and
.env"); FIELD-CASES C37.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import Any

from asynctasq.config.leaves import ENV_PREFIX
from asynctasq.config.schema import SettingSpec, env_text, settings

DEST_PREFIX = "config:"
"""Namespace attribute prefix of config flags: ``--redis-db`` is stored as ``config:redis.db``."""

FLAGS_USAGE = "--<group>-<setting> VALUE ..."
"""How a usage line names the config flags (listing all of them would fill a screen)."""

_METAVARS = {"int": "INT", "int | None": "INT", "float": "FLOAT", "bool": "BOOL"}


def _metavar(spec: SettingSpec) -> str:
    if spec.choices:
        return "{" + ",".join(spec.choices) + "}"
    if spec.secret:
        return "SECRET"
    if spec.url:
        return "URL"
    return _METAVARS.get(spec.type_text, "TEXT")


def _help(spec: SettingSpec) -> str:
    words = [spec.help]
    if spec.is_bool:
        words.append("true/false/1/0/yes/no/on/off.")
    if spec.choices:
        words.append(f"Choices: {', '.join(spec.choices)}.")
    default = env_text(spec.default)
    words.append(f"Default: {default}." if default else "Default: unset.")
    words.append(f"Env: {spec.env}.")
    return " ".join(words).replace("%", "%%")


def option_strings(spec: SettingSpec) -> list[str]:
    """Return the flags of a setting: its own, plus one spelled like its variable if that differs.

    ``sqs.region_name`` (variable ``ASYNCTASQ_SQS_REGION``) answers to ``--sqs-region-name``
    and ``--sqs-region``; every other setting has one flag.
    """
    found = [spec.flag] if spec.flag else []
    if spec.env:
        from_env = "--" + spec.env.removeprefix(ENV_PREFIX).lower().replace("_", "-")
        if from_env not in found:
            found.append(from_env)
    return found


def add_config_flags(
    parser: argparse.ArgumentParser, *, only: Collection[str] | None = None
) -> None:
    """Add one ``--<group>-<field>`` flag per environment-settable setting to ``parser``.

    The flags form their own ``--help`` section. A flag that is not given leaves no
    attribute on the namespace, so :func:`flag_overrides` returns only what was typed.

    Args:
        parser: the subcommand's parser (``config``, ``worker``, ``migrate``...).
        only: top-level keys whose flags to add, e.g. ``("driver", "postgres")`` for a
            command that needs only those; ``None`` adds every flag.

    """
    group = parser.add_argument_group(
        "configuration flags",
        "One per setting (see `asynctasq publish` / .env.example). A flag overrides the "
        "environment and .env, and is parsed like its environment variable.",
    )
    for spec in settings():
        if spec.flag is None or (only is not None and spec.path.split(".")[0] not in only):
            continue
        group.add_argument(
            *option_strings(spec),
            dest=DEST_PREFIX + spec.path,
            default=argparse.SUPPRESS,
            metavar=_metavar(spec),
            help=_help(spec),
        )


def flag_overrides(namespace: argparse.Namespace) -> dict[str, Any]:
    """Return the config flags given on the command line as a nested mapping of raw strings.

    Args:
        namespace: what ``parser.parse_args()`` returned for a parser with config flags.

    Returns:
        e.g. ``{"driver": "postgres", "redis": {"db": " 5 "}}`` for
        ``--driver postgres --redis-db " 5 "``; ``{}`` when no config flag was given.
        Pass it to ``resolve(flags=...)``.

    """
    nested: dict[str, Any] = {}
    for key, value in vars(namespace).items():
        if not key.startswith(DEST_PREFIX):
            continue
        group, _, name = key.removeprefix(DEST_PREFIX).rpartition(".")
        target = nested.setdefault(group, {}) if group else nested
        target[name] = value
    return nested
