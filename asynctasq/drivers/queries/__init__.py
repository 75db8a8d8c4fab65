"""Named SQL queries, one ``.sql`` file per dialect, loaded once per driver.

A file is a sequence of blocks, each introduced by a ``-- name: <name>`` line; the block's
text up to the next such line is the query (comments and blank lines around it dropped).
Every dialect's file defines the same names, so :mod:`asynctasq.drivers.sql` states each
rule once and calls it by name (the way procrastinate keeps ``queries.sql``).

Inside a query:

* ``{queue_table}``, ``{dead_letter_table}`` and the other keys of :func:`load`'s
  ``names`` are replaced by quoted identifiers (or literals) before anything else;
* ``:name`` is a parameter, bound by name from a mapping (``::type`` casts are left alone);
* ``[[ ... ]]`` encloses a fragment repeated once per row by ``execute_many`` (the rows'
  parameters are renamed ``name__0``, ``name__1``, ...), e.g. a multi-row ``VALUES`` list;
  a query may hold several such fragments.
  PostgreSQL queries have no such fragment: ``execute_many`` binds each parameter there as
  an array of the rows' values (``unnest(:id::bigint[], ...)``).

Queries named ``migrate_<n>_<what>`` are the schema, run in file order by ``migrate``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Literal

import attrs

Style = Literal["numeric", "pyformat", "named"]
"""How a client binds parameters: ``$1`` (asyncpg), ``%(name)s`` (aiomysql), ``:name`` (sqlite3)."""

_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_REPEAT = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)


@attrs.frozen
class Query:
    """One named query in the client's own parameter style.

    Attributes:
        name: the query's name in its ``.sql`` file.
        sql: the text with identifiers filled in and ``:name`` parameters converted
            (for a repeated fragment, see :meth:`expand`).
        params: parameter names in order of first use (the order of ``$1, $2, ...``).
        style: the client's parameter style.
        repeated: the first ``[[ ... ]]`` fragment in ``:name`` form, or ``""`` when there
            is none.
        template: the whole query in ``:name`` form with the fragment still marked.
    """

    name: str
    sql: str
    params: tuple[str, ...]
    style: Style
    repeated: str = ""
    template: str = ""

    def positional(self, values: Mapping[str, Any]) -> list[Any]:
        """Return the values of :attr:`params` in order (for ``$n`` placeholders)."""
        return [values[name] for name in self.params]

    def expand(self, rows: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
        """Repeat each ``[[ ... ]]`` fragment once per row.

        Returns:
            The statement and one mapping holding every row's parameters under
            ``name__<row>``; for a query without a fragment, its text and ``rows[0]``.
        """
        if not self.repeated:
            return self.sql, dict(rows[0]) if rows else {}
        values: dict[str, Any] = {}
        for number, row in enumerate(rows):
            values.update({f"{key}__{number}": value for key, value in row.items()})

        def repeat(match: re.Match[str]) -> str:
            return ", ".join(
                _PARAM.sub(lambda m, n=number: f":{m.group(1)}__{n}", match.group(1))
                for number in range(len(rows))
            )

        return convert(_REPEAT.sub(repeat, self.template), self.style)[0], values


def convert(text: str, style: Style) -> tuple[str, tuple[str, ...]]:
    """Convert ``:name`` parameters of ``text`` to ``style``.

    Returns:
        The converted text and the parameter names in order of first use.
    """
    order: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order.append(name)
        if style == "numeric":
            return f"${order.index(name) + 1}"
        if style == "pyformat":
            return f"%({name})s"
        return match.group(0)

    if style == "pyformat":
        text = text.replace("%", "%%")
    return _PARAM.sub(replace, text), tuple(order)


def parse(text: str) -> dict[str, str]:
    """Split a ``.sql`` file into ``{name: query text}``, in file order.

    Raises:
        ValueError: a name appears twice, or text comes before the first name line.
    """
    pieces = _NAME_LINE.split(text)
    head, rest = pieces[0], pieces[1:]
    if _strip(head):
        raise ValueError("SQL text before the first '-- name:' line")
    found: dict[str, str] = {}
    for name, body in zip(rest[0::2], rest[1::2], strict=True):
        if name in found:
            raise ValueError(f"query {name!r} is defined twice")
        found[name] = _strip(body)
    return found


def _strip(body: str) -> str:
    lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";").strip()


def load(dialect: str, style: Style, names: Mapping[str, str]) -> dict[str, Query]:
    """Load ``queries/<dialect>.sql`` with ``names`` filled in, converted to ``style``.

    Args:
        dialect: ``"postgres"``, ``"mysql"`` or ``"sqlite"``.
        style: the client's parameter style.
        names: ``{key: text}`` for each ``{key}`` in the file, e.g.
            ``{"queue_table": '"task_queue"'}``; the texts must already be quoted.

    Returns:
        ``{query name: Query}``.
    """
    text = resources.files(__name__).joinpath(f"{dialect}.sql").read_text(encoding="utf-8")
    queries: dict[str, Query] = {}
    for name, body in parse(text).items():
        filled = body.format_map(names)
        fragment = _REPEAT.search(filled)
        plain = _REPEAT.sub(lambda m: m.group(1), filled)
        sql, params = convert(plain, style)
        queries[name] = Query(
            name, sql, params, style, fragment.group(1) if fragment else "", filled
        )
    return queries
