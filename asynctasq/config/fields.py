"""``setting()``: an attrs field that carries its own documentation and rules.

Every configuration field is declared once, with ``setting(...)``. From that one
declaration come the environment variable name, the CLI flag, the ``.env.example`` line,
the docs table row, the validation rule and how the value is masked in output.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar, dataclass_transform

import attrs

from asynctasq.config.mask import mask_repr, mask_secret, mask_url_repr

Context = Literal["dispatch", "worker", "both"]

META_KEY = "asynctasq"

T = TypeVar("T")


@attrs.frozen
class Rule:
    """A validation rule: ``check(value)`` is true when ``value`` is acceptable.

    ``text`` completes the sentence "``path`` ..." (e.g. "must be between 0 and 15").
    Rules only see structured values of the right type; ``None`` is never checked.
    """

    check: Callable[[Any], bool]
    text: str


def between(low: float, high: float) -> Rule:
    """Return a rule accepting ``low <= value <= high``."""
    return Rule(lambda v: low <= v <= high, f"must be between {low} and {high}")


def at_least(low: float) -> Rule:
    """Return a rule accepting ``value >= low``."""
    return Rule(lambda v: v >= low, f"must be at least {low}")


def positive() -> Rule:
    """Return a rule accepting ``value > 0``."""
    return Rule(lambda v: v > 0, "must be greater than 0")


MIN_INTERVAL_SECONDS = 0.1
"""The shortest period a worker's loops accept (heartbeat, delayed-task checks), seconds.

Each period is one broker round trip and some bookkeeping: at 1e-6 s a worker spent ~90 %
of a core beating and never appeared in the live-worker list (its registry entry lived
three periods, 3 microseconds). Ten times a second is already more than monitoring or
delayed-task promotion needs (a delay is kept to the millisecond regardless: the loop
wakes when the next one is due).
"""


MAX_INTERVAL_SECONDS = 3600
"""The longest period a worker's loops accept (heartbeat, delayed-task checks): one hour.

A loop's work waits up to one period: with ``redis.delayed_task_interval=1e9`` a delay
dispatched by another process was never promoted, nor were the tasks of a worker that
died recovered. The heartbeat's registry entry expires after three periods, and brokers
refuse expiries that long, so every heartbeat failed (RabbitMQ from a period of ``1e9``:
"invalid expiration", MySQL from ``1e11``: "datetime field overflow", Redis and PostgreSQL
at ``1e300``: "value is not an integer or out of range", "timestamp out of range"). A
period over an hour is almost surely a unit mistake (milliseconds given as seconds).
"""


def interval_seconds() -> Rule:
    """Return a rule accepting a loop period of at least :data:`MIN_INTERVAL_SECONDS`."""
    return Rule(
        lambda v: v >= MIN_INTERVAL_SECONDS,
        f"must be at least {MIN_INTERVAL_SECONDS} seconds (a shorter period keeps the "
        "worker busy with this loop alone)",
    )


def interval_at_most_an_hour(why: str) -> Rule:
    """Return a rule accepting a loop period of at most :data:`MAX_INTERVAL_SECONDS`.

    Args:
        why: what a longer period would break, e.g. "a dead worker stays listed ...";
            it ends the rule's text: "must be at most 3600 seconds (one hour: <why>)".
    """
    return Rule(
        lambda v: v <= MAX_INTERVAL_SECONDS,
        f"must be at most {MAX_INTERVAL_SECONDS} seconds (one hour: {why})",
    )


def non_empty() -> Rule:
    """Return a rule accepting a string with something other than whitespace in it."""
    return Rule(lambda v: bool(str(v).strip()), "must not be empty")


SQL_NAME_MAX = 48
"""Longest table name accepted: room for the suffixes of the tables and indexes named after
it (``_completed_q``, 12 characters) within PostgreSQL's 63 bytes."""


def file_path() -> Rule:
    """Return a rule accepting a database file path, not SQLite's ``:memory:``.

    An in-memory database lives in one connection: a worker and the process dispatching to
    it would each have their own, so no task would ever reach the worker.
    """
    return Rule(
        lambda v: str(v).strip() != ":memory:",
        "must be a file path: ':memory:' is private to one connection, so a worker and a "
        "dispatcher could never share it (use a file; in tests, the memory driver)",
    )


QUEUE_TABLE_SUFFIXES = ("", "_workers", "_completed", "_ready", "_leased", "_completed_q")
"""What the SQL drivers append to the queue table's name for the tables and indexes they
create with it (the table itself, its worker and completed-task tables, its indexes)."""

DEAD_LETTER_TABLE_SUFFIXES = ("", "_queue")
"""Likewise for the dead-letter table (the table and its index)."""

_SQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


def sql_name() -> Rule:
    """Return a rule accepting a table name: ``name`` or ``schema.name``.

    Letters, digits and underscores, not starting with a digit, at most
    :data:`SQL_NAME_MAX` characters per part: the drivers quote it and derive index names
    from it, so nothing else can be spliced into their SQL.
    """
    return Rule(
        lambda v: (
            _SQL_NAME.fullmatch(v) is not None
            and all(len(part) <= SQL_NAME_MAX for part in v.split("."))
        ),
        "must be a table name: letters, digits and underscores, optionally schema.name, "
        f"at most {SQL_NAME_MAX} characters each",
    )


@attrs.frozen
class FieldMeta:
    """What a configuration field says about itself.

    Attributes:
        help: one sentence for docs, ``--help`` and ``.env.example``.
        context: ``"dispatch"``, ``"worker"`` or ``"both"`` (the seed's "Configuration Contexts").
        secret: the whole value is a secret (passwords, AWS keys): always shown as ``***``.
        url: the value is a URL or DSN that may embed a password; only the password is masked.
        env: the full environment variable name when it is not ``ASYNCTASQ_<GROUP>_<FIELD>``;
            ``""`` means the field cannot be set from the environment (code only).
        choices: the accepted values, when the field is an enumeration.
        rules: further rules the structured value must satisfy.
        aliases: other keys accepted for this field in code overrides (e.g. ``region``).
        required_for: the driver that needs this ``None``-default field set; checked when
            that driver is built (``config.validate.require_driver_settings``).
    """

    help: str
    context: Context = "both"
    secret: bool = False
    url: bool = False
    env: str | None = None
    choices: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    aliases: tuple[str, ...] = ()
    required_for: str | None = None


def setting(
    *,
    default: Any = attrs.NOTHING,
    factory: Callable[[], Any] | None = None,
    help: str,
    context: Context = "both",
    secret: bool = False,
    url: bool = False,
    env: str | None = None,
    choices: tuple[str, ...] = (),
    rules: tuple[Rule, ...] = (),
    aliases: tuple[str, ...] = (),
    required_for: str | None = None,
) -> Any:
    """Declare one configuration field.

    Args:
        default: the seed's default value.
        factory: a zero-argument callable making the default (for nested records).
        help: one sentence describing the field.
        context: where the field is used: ``"dispatch"``, ``"worker"`` or ``"both"``.
        secret: mask the whole value everywhere it is shown.
        url: mask the password inside the value (URLs and DSNs).
        env: full environment variable name if not derived from the path; ``""`` for none.
        choices: accepted values for an enumeration.
        rules: extra :class:`Rule` objects.
        aliases: alternative keys accepted in code overrides.
        required_for: the driver that needs this field (checked when it is built).

    Returns:
        An ``attrs.field`` whose metadata holds a :class:`FieldMeta`.
    """
    meta = FieldMeta(
        help=help,
        context=context,
        secret=secret,
        url=url,
        env=env,
        choices=choices,
        rules=rules,
        aliases=aliases,
        required_for=required_for,
    )
    shown: Callable[[Any], str] = mask_repr  # free-form values: URL passwords masked
    if secret:
        shown = mask_secret
    elif url:
        shown = mask_url_repr
    if factory is not None:
        return attrs.field(factory=factory, metadata={META_KEY: meta}, repr=shown)
    return attrs.field(default=default, metadata={META_KEY: meta}, repr=shown)


def meta_of(field: attrs.Attribute[Any]) -> FieldMeta | None:
    """Return the :class:`FieldMeta` of an attrs field, or ``None`` for a plain field."""
    found = field.metadata.get(META_KEY)
    return found if isinstance(found, FieldMeta) else None


_EXPLICIT = "_explicit_keys"


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(setting,))
def record(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen, keyword-only attrs record that remembers which keys were passed.

    ``RedisConfig(db=5)`` records ``{"db"}`` as explicitly given, so that passing it to
    ``init()`` overrides only ``db`` and keeps a ``url`` coming from ``.env``. Aliases
    declared with ``setting(aliases=...)`` are accepted as keyword arguments too. The
    keys live in a private ``init=False`` slot that takes no part in equality or repr.
    """
    cls.__annotations__[_EXPLICIT] = "frozenset[str]"
    setattr(
        cls,
        _EXPLICIT,
        attrs.field(init=False, factory=frozenset, eq=False, repr=False, hash=False),
    )
    built: Any = attrs.frozen(kw_only=True)(cls)
    aliases = {
        alias: f.name
        for f in attrs.fields(built)
        if (m := meta_of(f)) is not None
        for alias in m.aliases
    }
    original_init = built.__init__

    @functools.wraps(original_init)
    def __init__(self: Any, **kwargs: Any) -> None:  # noqa: N807 - it is the __init__
        for alias, name in aliases.items():
            if alias in kwargs:
                if name in kwargs:
                    message = f"{cls.__name__}() got both {name!r} and its alias {alias!r}"
                    raise TypeError(message)
                kwargs[name] = kwargs.pop(alias)
        original_init(self, **kwargs)
        object.__setattr__(self, _EXPLICIT, frozenset(kwargs))

    built.__init__ = __init__
    return built  # type: ignore[no-any-return]


def explicit_keys(instance: Any) -> frozenset[str]:
    """Return the keyword names passed when ``instance`` was constructed.

    Records made by ``attrs.evolve`` or by structuring report every field they were given.
    """
    keys: frozenset[str] = getattr(instance, _EXPLICIT, frozenset())
    return keys


def settings_of(cls: type[Any]) -> dict[str, tuple[attrs.Attribute[Any], FieldMeta]]:
    """Return ``{name: (attrs field, FieldMeta)}`` for the declared settings of a record class.

    Private bookkeeping fields (without :class:`FieldMeta`) are left out.
    """
    found: dict[str, tuple[attrs.Attribute[Any], FieldMeta]] = {}
    for f in attrs.fields(cls):
        m = meta_of(f)
        if m is not None:
            found[f.name] = (f, m)
    return found
