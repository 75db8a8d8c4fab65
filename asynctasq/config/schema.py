"""The configuration schema for display: one :class:`SettingSpec` per leaf, grouped in sections.

Built on :func:`asynctasq.config.leaves.leaves` (the one walk over the records that also
names each setting's environment variable and CLI flag), it adds what people read. Every
list of settings is generated from here, so nothing is written twice by hand: the CLI
flags (``asynctasq.cli.flags``), the ``.env.example`` template (:func:`env_example_text`),
the docs' option tables (:func:`markdown_tables`) and ``asynctasq config`` output
(:mod:`asynctasq.config.diff`).

A code-only setting (``env=""``: ``sqlalchemy_engine``, ``tortoise_orm``) has neither an
environment variable nor a flag.

Source: SPEC §2 (environment names, "Each record field carries metadata"), seed
"Configuration Structure".
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Iterator
from typing import Any

import attrs

from asynctasq.config.fields import Context, settings_of
from asynctasq.config.leaves import Leaf, leaves
from asynctasq.config.records import GROUPS, Config


@attrs.frozen
class SettingSpec:
    """Everything known about one leaf setting.

    Attributes:
        path: dotted key path, e.g. ``"redis.db"``; a top-level field is its name (``"driver"``).
        group: the group key (``"redis"``), or ``None`` for a top-level field.
        name: the field name inside its record (``"db"``).
        type_text: the annotation as written in the record, e.g. ``"int | None"``.
        default: the default value (``None`` when unset by default).
        env: the environment variable name, or ``None`` for a code-only setting.
        flag: the CLI flag (``"--redis-db"``), or ``None`` for a code-only setting.
        help: one sentence describing the setting.
        context: ``"dispatch"``, ``"worker"`` or ``"both"``.
        secret: the whole value is masked when shown.
        url: the password inside the value is masked when shown.
        choices: the accepted values of an enumeration, else ``()``.
        required_for: the driver whose selection makes this setting required, else ``None``.

    """

    path: str
    group: str | None
    name: str
    type_text: str
    default: Any
    env: str | None
    flag: str | None
    help: str
    context: Context
    secret: bool
    url: bool
    choices: tuple[str, ...]
    required_for: str | None

    @property
    def is_bool(self) -> bool:
        """Whether the setting is a boolean (parsed from true/false/1/0/yes/no/on/off)."""
        return self.type_text == "bool"


@attrs.frozen
class Section:
    """Settings shown together: the top-level ``driver``, one group, or the code-only hooks.

    Attributes:
        key: the group key (``"redis"``), ``""`` for driver selection, ``"code"`` for the hooks.
        title: a short heading, e.g. ``"Redis driver settings"``.
        record: the record class name (``"RedisConfig"``), ``""`` for the top-level sections.
        context: where the group is used: ``"dispatch"``, ``"worker"`` or ``"both"``.
        specs: the section's settings in declaration order.

    """

    key: str
    title: str
    record: str
    context: Context
    specs: tuple[SettingSpec, ...]


def type_text(annotation: Any) -> str:
    """Return a field annotation as written in the record: ``int``, ``str | None``, ``Any``.

    Accepts the annotation string (``from __future__ import annotations``) or the type
    object ``attrs.resolve_types`` puts in its place.
    """
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _spec(leaf: Leaf) -> SettingSpec:
    meta = leaf.meta
    return SettingSpec(
        path=leaf.path,
        group=leaf.group,
        name=leaf.name,
        type_text=type_text(leaf.type),
        default=leaf.default,
        env=leaf.env,
        flag=leaf.flag if leaf.env is not None else None,
        help=meta.help,
        context=meta.context,
        secret=meta.secret,
        url=meta.url,
        choices=meta.choices,
        required_for=meta.required_for,
    )


@functools.cache
def sections() -> tuple[Section, ...]:
    """Return the settings grouped for display, in the seed's order.

    ``driver`` first, then each group of :data:`GROUPS`, then the code-only top-level
    hooks (``sqlalchemy_engine``, ``tortoise_orm``).
    """
    specs = [_spec(leaf) for leaf in leaves().values()]
    top = [spec for spec in specs if spec.group is None and spec.env is not None]
    code_only = [spec for spec in specs if spec.group is None and spec.env is None]
    groups: list[Section] = []
    for name, (_field, meta) in settings_of(Config).items():
        if name in GROUPS:
            title = meta.help.rstrip(".")
            members = tuple(spec for spec in specs if spec.group == name)
            groups.append(Section(name, title, GROUPS[name].__name__, meta.context, members))
    found = [Section("", "Driver selection", "", "both", tuple(top)), *groups]
    if code_only:
        found.append(Section("code", "Code-only settings", "", "both", tuple(code_only)))
    return tuple(found)


def settings() -> Iterator[SettingSpec]:
    """Yield every leaf setting in display order (see :func:`sections`)."""
    for section in sections():
        yield from section.specs


@functools.cache
def by_path() -> dict[str, SettingSpec]:
    """Return ``{dotted path: spec}`` for every leaf setting."""
    return {spec.path: spec for spec in settings()}


@functools.cache
def by_env() -> dict[str, SettingSpec]:
    """Return ``{environment variable: spec}`` for every setting that has one."""
    return {spec.env: spec for spec in settings() if spec.env is not None}


@functools.cache
def by_flag() -> dict[str, SettingSpec]:
    """Return ``{CLI flag: spec}`` for every setting that has one (``"--redis-db"``)."""
    return {spec.flag: spec for spec in settings() if spec.flag is not None}


def env_text(value: Any) -> str:
    """Return ``value`` written as an environment variable value.

    ``None`` -> ``""`` (unset), booleans -> ``"true"``/``"false"``, anything else ``str()``.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def python_text(value: Any) -> str:
    """Return ``value`` as the docs show a default: ``None``, ``False``, ``3``, ``redis://...``."""
    return str(value)


_CONTEXT_WORDS: dict[str, str] = {
    "both": "dispatch and worker",
    "dispatch": "dispatch only",
    "worker": "worker only",
}

_RULE = "# " + "-" * 78

_ENV_HEADER = """\
# asynctasq configuration template (.env.example)
#
# Written by `asynctasq publish` from the configuration records: regenerate it rather
# than editing it by hand. Copy it to .env and uncomment the lines you change. Every
# variable is listed, commented out, with its default, so copying the file as it is
# changes nothing.
#
# Precedence, highest first: code (init() arguments, CLI flags) > environment
# variables > .env > defaults.
# Booleans accept true/false/1/0/yes/no/on/off in any case. An empty value means
# "unset": the default applies. Surrounding whitespace is ignored.
# Keep .env out of version control: it holds passwords and keys.
"""


def context_words(context: str) -> str:
    """Return ``"dispatch and worker"``, ``"dispatch only"`` or ``"worker only"``."""
    return _CONTEXT_WORDS.get(context, context)


def _facts(spec: SettingSpec) -> str:
    default = env_text(spec.default) or "unset"
    parts = [f"Type: {spec.type_text}.", f"Context: {context_words(spec.context)}."]
    if spec.choices:
        parts.append(f"Choices: {', '.join(spec.choices)}.")
    parts.append(f"Default: {default}.")
    if spec.required_for:
        parts.append(f"Required when the driver is {spec.required_for}.")
    if spec.secret:
        parts.append("Secret.")
    return " ".join(parts)


def _comment(text: str) -> list[str]:
    return [
        f"# {line}"
        for line in textwrap.wrap(text, width=86, break_on_hyphens=False, break_long_words=False)
    ]


def _env_section_lines(section: Section) -> list[str]:
    if section.key == "code":
        lines = [_RULE, f"# {section.title}: pass them to init() in code", _RULE]
        for spec in section.specs:
            text = f"{spec.path} ({spec.type_text}, default {spec.default}): {spec.help}"
            lines.extend(_comment(text))
        return lines
    heading = section.title
    if section.record:
        heading += f" (group {section.key}, {section.record}); {context_words(section.context)}"
    lines = [_RULE, *_comment(heading), _RULE]
    for spec in section.specs:
        lines.extend(["", *_comment(spec.help), *_comment(_facts(spec))])
        lines.append(f"# {spec.env}={env_text(spec.default)}")
    return lines


def env_example_text() -> str:
    """Return the text of ``.env.example``: every variable, commented out, with its default.

    Returns:
        The whole file, LF line endings, ending with one newline. ``asynctasq publish``
        writes it; the repository's root ``.env.example`` is byte-identical to it.

    Source: seed "init()" (the ``asynctasq publish`` tip); SPEC §2 and §7.

    """
    lines = [_ENV_HEADER.rstrip("\n")]
    for section in sections():
        lines.append("")
        lines.extend(_env_section_lines(section))
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`"


def _description(spec: SettingSpec) -> str:
    words = [spec.help]
    if spec.choices:
        words.append("Choices: " + ", ".join(_code(c) for c in spec.choices) + ".")
    if spec.required_for:
        words.append(f"Required when `driver` is `{spec.required_for}`.")
    if spec.secret:
        words.append("Secret: always shown as `***`.")
    elif spec.url:
        words.append("A password inside is shown as `***`.")
    return " ".join(words)


def _table(section: Section) -> list[str]:
    head = [
        "| Option | Type | Default | Environment variable | CLI flag | Context | Description |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [
        "| "
        + " | ".join(
            _cell(cell)
            for cell in (
                _code(spec.name),
                spec.type_text,
                _code(python_text(spec.default)),
                _code(spec.env) if spec.env else "code only",
                _code(spec.flag) if spec.flag else "—",
                spec.context,
                _description(spec),
            )
        )
        + " |"
        for spec in section.specs
    ]
    return head + rows


def markdown_tables() -> str:
    """Return the docs' option tables: one ``###`` heading and table per section.

    Returns:
        Markdown text ending with one newline; ``docs/configuration.md`` embeds it between
        marker comments and a test checks the two are equal.

    """
    blocks: list[str] = []
    for section in sections():
        if section.record:
            heading = f"### `{section.key}`: {section.title} (`{section.record}`)"
            intro = f"Context: {context_words(section.context)}."
        else:
            heading = f"### {section.title}"
            intro = (
                "Set in code only (`init({...})` or `configured(...)`); no variable or flag."
                if section.key == "code"
                else "Top-level setting."
            )
        blocks.append("\n".join([heading, "", intro, "", *_table(section)]))
    return "\n\n".join(blocks) + "\n"
