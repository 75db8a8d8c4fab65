"""Where settings come from, as pure functions that each return a :class:`Layer`.

A layer is a nested partial mapping of *raw* values (text from the environment, ``.env``
and flags; typed values from code) plus, for each leaf it sets, the text naming its
source. Layers are merged by precedence (defaults < ``.env`` < environment < code/flags)
and structured once afterwards; see :mod:`asynctasq.config.resolve`.

Rules shared by the text sources (``.env``, environment, flags):

- only ``ASYNCTASQ_``-prefixed names are read, from the environment and ``.env`` alike;
  an unprefixed ``DRIVER=`` or ``REDIS_URL=`` has no effect (FIELD-CASES C25);
- surrounding whitespace is removed from every value (strings, choices and URLs alike):
  ``ASYNCTASQ_DRIVER=" redis "`` is ``redis``;
- an empty or whitespace-only value means "unset": the leaf is left out of the layer, so a
  lower layer (usually the default) applies (FIELD-CASES C27);
- an ``ASYNCTASQ_*`` name that is no setting is recorded in :attr:`Layer.unknown`, and
  ``resolve()`` warns about it.

Code overrides (:func:`overrides`) set exactly the keys the caller wrote: for a record,
the keyword arguments it was constructed with (``RedisConfig(db=5)`` sets only
``redis.db``). Their values are kept exactly as given (no trimming). An unknown key is a
problem that suggests the nearest valid key.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
from decouple import RepositoryEnv

from asynctasq.config.fields import explicit_keys
from asynctasq.config.leaves import ENV_PREFIX, env_names, group_keys, leaves, show, show_given
from asynctasq.config.records import GROUPS, Config
from asynctasq.errors import ConfigProblem


@attrs.frozen
class Layer:
    """One source's contribution.

    Attributes:
        values: nested raw values, e.g. ``{"driver": "redis", "redis": {"db": "5"}}``.
        sources: ``{dotted leaf path: source text}`` for every leaf in ``values``, e.g.
            ``{"redis.db": "environment variable ASYNCTASQ_REDIS_DB"}``.
        problems: what was wrong with the source itself (unknown code keys, unreadable file).
        unknown: ``(name, source text)`` of each ``ASYNCTASQ_*`` name that is no setting,
            e.g. ``("ASYNCTASQ_REDIS_DBB", ".env line 4")``.
        malformed: source texts of ``.env`` lines that are neither blank, a comment nor
            ``KEY=value`` (e.g. ``".env line 7"``); they are ignored with a warning.

    """

    values: Mapping[str, Any] = attrs.field(factory=dict)
    sources: Mapping[str, str] = attrs.field(factory=dict)
    problems: tuple[ConfigProblem, ...] = ()
    unknown: tuple[tuple[str, str], ...] = ()
    malformed: tuple[str, ...] = ()


def _put(values: dict[str, Any], path: str, raw: Any) -> None:
    group, _, name = path.partition(".")
    if name:
        values.setdefault(group, {})[name] = raw
    else:
        values[group] = raw


def _text_layer(entries: Iterable[tuple[str, str, str]], malformed: tuple[str, ...] = ()) -> Layer:
    """Build a layer from ``(name, raw text, source text)`` triples of a text source.

    Values are trimmed; a blank value is left out (unset).
    """
    known = env_names()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []
    for name, raw, source in entries:
        if not name.startswith(ENV_PREFIX):
            continue
        path = known.get(name)
        if path is None:
            unknown.append((name, source))
        elif raw.strip():
            _put(values, path, raw.strip())
            sources[path] = source
    return Layer(values, sources, (), tuple(unknown), malformed)


def defaults() -> Layer:
    """Return every setting at its default value, each with source ``"default"``."""
    values: dict[str, Any] = {}
    for path, leaf in leaves().items():
        _put(values, path, leaf.default)
    return Layer(values, dict.fromkeys(leaves(), "default"))


def environ(mapping: Mapping[str, str] | None = None) -> Layer:
    """Return the settings found in environment variables.

    Args:
        mapping: the environment; ``None`` means ``os.environ``.

    Returns:
        A layer with source text ``"environment variable ASYNCTASQ_..."`` per leaf.

    """
    if mapping is None:
        mapping = os.environ
    return _text_layer((name, raw, f"environment variable {name}") for name, raw in mapping.items())


_EXPORT = re.compile(r"export\s+")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def dotenv_key(key: str) -> str:
    """Return the variable name of a ``.env`` key: trimmed, without a leading ``export ``."""
    stripped = key.strip()
    found = _EXPORT.match(stripped)
    return stripped[found.end() :] if found else stripped


def dotenv_line_numbers(text: str) -> dict[str, int]:
    """Return ``{key: 1-based line number}`` for the lines python-decouple reads as settings.

    Mirrors ``decouple.RepositoryEnv``: blank lines, lines starting with ``#`` and lines
    without ``=`` are skipped; the key is the text before the first ``=``, trimmed, with an
    optional ``export `` prefix removed. When a key repeats, the last line wins, as it does
    in decouple.
    """
    return {key: number for key, (_raw_key, number) in _dotenv_keys(text).items()}


def _dotenv_keys(text: str) -> dict[str, tuple[str, int]]:
    """Return ``{variable name: (key as decouple stores it, line number of its last line)}``."""
    found: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and "=" in stripped:
            raw_key = stripped.split("=", 1)[0].strip()
            found[dotenv_key(raw_key)] = (raw_key, number)
    return found


def dotenv_malformed_lines(text: str) -> list[int]:
    """Return the 1-based numbers of lines that are not blank, a comment or ``KEY=value``.

    ``KEY`` (after an optional ``export ``) must be a variable name: letters, digits and
    ``_``, not starting with a digit. Such lines are ignored; the caller warns about them.
    """
    found: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, _value = stripped.partition("=")
        if not sep or not _KEY.fullmatch(dotenv_key(key)):
            found.append(number)
    return found


def dotenv(path: str | Path | None = ".env") -> Layer:
    """Return the settings found in a ``.env`` file, read with python-decouple.

    Values are taken as decouple reads them: ``KEY=value`` with surrounding whitespace
    trimmed, one pair of matching single or double quotes removed, the value running to the
    end of the line (a ``#`` or ``=`` inside a value is part of it; only whole lines
    starting with ``#`` are comments). Also accepted: an ``export `` prefix before the key
    (``export ASYNCTASQ_REDIS_DB=5``, as shell scripts write it) and a UTF-8 byte order mark
    at the start of the file. A line that is not blank, a comment or ``KEY=value`` is
    ignored and listed in :attr:`Layer.malformed` (``resolve()`` warns about it).

    Args:
        path: the file; ``None`` means no file. A missing file is not an error.

    Returns:
        A layer with source text ``"<file name> line N"`` (``".env line 3"``) per leaf; a
        directory or an unreadable file gives a layer holding one problem.

    """
    if path is None:
        return Layer()
    file = Path(path)
    if not file.exists():
        return Layer()
    if file.is_dir():
        problem = ConfigProblem(
            "env_file", str(file), "the .env file", "is a directory, not a file"
        )
        return Layer(problems=(problem,))
    try:
        text = file.read_text(encoding="utf-8-sig")
        raw: dict[str, str] = RepositoryEnv(str(file), encoding="utf-8-sig").data
    except (OSError, UnicodeDecodeError) as exc:
        problem = ConfigProblem(
            path="env_file",
            value=str(file),
            source="the .env file",
            rule=f"cannot be read ({type(exc).__name__})",
        )
        return Layer(problems=(problem,))
    malformed = tuple(f"{file.name} line {n}" for n in dotenv_malformed_lines(text))
    return _text_layer(
        (
            (name, raw[raw_key], f"{file.name} line {number}")
            for name, (raw_key, number) in _dotenv_keys(text).items()
            if raw_key in raw
        ),
        malformed,
    )


def _suggest(key: str, candidates: Iterable[str], prefix: str = "") -> str:
    options = sorted(set(candidates))
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    if close:
        return f"unknown setting; did you mean '{prefix}{close[0]}'?"
    return f"unknown setting; valid keys: {', '.join(options)}"


def _items(obj: Any, kind: str) -> list[tuple[str, Any]] | None:
    """Return the keys a mapping holds or a record was built with, or ``None`` if neither."""
    if isinstance(obj, Mapping):
        return [(str(k), v) for k, v in obj.items()]
    if attrs.has(type(obj)) and (kind == "" or isinstance(obj, GROUPS.get(kind, Config))):
        return [(k, getattr(obj, k)) for k in explicit_keys(obj)]
    return None


class _CodeReader:
    """Walk code or flag overrides into a layer, collecting problems instead of raising.

    ``text=True`` (flags) applies the text-source rules: strings are trimmed and a blank or
    ``None`` value is left out. Code values (``text=False``) are kept as given.
    """

    def __init__(self, label: Callable[[str], str], text: bool) -> None:
        self.label = label
        self.text = text
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.problems: list[ConfigProblem] = []

    def problem(self, path: str, value: Any, rule: str) -> None:
        leaf = leaves().get(path)
        self.problems.append(ConfigProblem(path, show(leaf, value), self.label(path), rule))

    def leaf(self, path: str, value: Any) -> None:
        if self.text and isinstance(value, str):
            value = value.strip()
        if self.text and (value is None or value == ""):
            return
        _put(self.values, path, value)
        self.sources[path] = self.label(path)

    def top(self, obj: Any) -> None:
        items = _items(obj, "")
        if items is None or (attrs.has(type(obj)) and not isinstance(obj, Config)):
            rule = "must be a mapping or a Config"
            self.problems.append(
                ConfigProblem("<overrides>", show_given(obj), self.label(""), rule)
            )
            return
        top_keys = [p for p in leaves() if "." not in p] + list(GROUPS)
        for key, value in items:
            if key in GROUPS:
                self.group(key, value)
            elif key in leaves():
                self.leaf(key, value)
            else:
                self.problem(key, value, _suggest(key, top_keys))

    def group(self, group: str, obj: Any) -> None:
        items = _items(obj, group)
        if items is None:
            rule = f"must be a {GROUPS[group].__name__} or a mapping"
            self.problems.append(ConfigProblem(group, show_given(obj), self.label(group), rule))
            return
        keys = group_keys(group)
        seen: dict[str, str] = {}
        for key, value in items:
            name = keys.get(key)
            if name is None:
                self.problem(f"{group}.{key}", value, _suggest(key, keys, f"{group}."))
            elif name in seen:
                path = f"{group}.{name}"
                self.problem(path, value, f"given twice, as {seen[name]!r} and {key!r}")
            else:
                seen[name] = key
                self.leaf(f"{group}.{name}", value)

    def layer(self) -> Layer:
        return Layer(self.values, self.sources, tuple(self.problems))


def overrides(obj: Mapping[str, Any] | Config | None) -> Layer:
    """Return the settings given in code: a mapping, a :class:`Config`, or ``None``.

    A group may be a mapping (``{"redis": {"db": 5}}``) or a record
    (``{"redis": RedisConfig(db=5)}``); a record contributes exactly the keys it was
    constructed with. Aliases (``{"sqs": {"region": ...}}``) map to their field. ``None``
    values are kept (they mean ``None``, and are an error for a field that cannot be None).

    Returns:
        A layer with source text ``"code"``; unknown keys become problems that suggest the
        nearest valid key.

    """
    reader = _CodeReader(lambda _path: "code", text=False)
    if obj is not None:
        reader.top(obj)
    return reader.layer()


def flags(mapping: Mapping[str, Any] | None) -> Layer:
    """Return the settings given as CLI flags, as a nested mapping like :func:`overrides`.

    Values are trimmed like environment values; ``None`` and blank text mean "flag not
    given". Source text per leaf is ``"flag --<path with dashes>"``, e.g. ``"flag --redis-db"``.
    """
    reader = _CodeReader(_flag_source, text=True)
    if mapping is not None:
        reader.top(mapping)
    return reader.layer()


def _flag_source(path: str) -> str:
    leaf = leaves().get(path)
    return f"flag {leaf.flag}" if leaf is not None else "flags"


def merge(*layers: Layer) -> Layer:
    """Return one layer where each later layer's leaves replace the earlier ones'."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    unknown: list[tuple[str, str]] = []
    malformed: list[str] = []
    for layer in layers:
        for key, value in layer.values.items():
            if key in GROUPS and isinstance(value, Mapping):
                values[key] = {**values.get(key, {}), **value}
            else:
                values[key] = value
        sources.update(layer.sources)
        problems.extend(layer.problems)
        unknown.extend(layer.unknown)
        malformed.extend(layer.malformed)
    return Layer(values, sources, tuple(problems), tuple(unknown), tuple(malformed))
