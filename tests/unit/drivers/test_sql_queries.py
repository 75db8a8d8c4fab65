"""Named SQL queries: parsing, parameter styles, per-row fragments, what each dialect defines."""

from __future__ import annotations

import re

import pytest

from asynctasq.config.fields import DEAD_LETTER_TABLE_SUFFIXES, QUEUE_TABLE_SUFFIXES
from asynctasq.drivers.queries import convert, load, parse
from asynctasq.drivers.sql import STATUSES
from asynctasq.drivers.sql_connector import identifiers, labels

NAMES = identifiers("task_queue", "dead_letter_queue", quote='"')
DIALECTS = {"postgres": "numeric", "mysql": "pyformat", "sqlite": "named"}

# The queries the shared logic calls (MySQL splits each claim into _select + _update).
SHARED = {
    "lock_schema", "unlock_schema", "schema_objects", "check_queue_table",
    "check_dead_letter_table", "enqueue", "next_due", "ack", "complete", "release",
    "extend", "retry", "drop_lease", "insert_dead", "sizes", "dead_letters",
    "lock_dead_letters", "delete_dead", "purge_dead", "queue_names",
}  # fmt: skip
CLAIMS = {"claim", "reclaim"}


def test_a_file_is_split_at_name_lines_and_comments_are_dropped() -> None:
    text = "-- header\n\n-- name: one\n-- about one\nSELECT 1;\n\n-- name: two\nSELECT\n  2\n"
    assert parse(text) == {"one": "SELECT 1", "two": "SELECT\n  2"}


def test_text_before_the_first_name_or_a_repeated_name_is_refused() -> None:
    with pytest.raises(ValueError, match="before the first"):
        parse("SELECT 1\n-- name: one\nSELECT 2")
    with pytest.raises(ValueError, match="defined twice"):
        parse("-- name: one\nSELECT 1\n-- name: one\nSELECT 2")


def test_named_parameters_become_each_clients_style_and_casts_stay() -> None:
    text = "SELECT :a::bigint, :b, :a, '10:30', x % 2"
    assert convert(text, "numeric") == ("SELECT $1::bigint, $2, $1, '10:30', x % 2", ("a", "b"))
    assert convert(text, "pyformat") == (
        "SELECT %(a)s::bigint, %(b)s, %(a)s, '10:30', x %% 2",
        ("a", "b"),
    )
    assert convert(text, "named") == (text, ("a", "b"))


def test_a_fragment_in_double_brackets_is_repeated_once_per_row() -> None:
    queries = load("mysql", "pyformat", identifiers("q", "d", quote="`"))
    sql, values = queries["ack"].expand([{"id": 1, "lease": 7}, {"id": 2, "lease": 8}])
    assert sql == (
        "DELETE FROM `q` WHERE id IN (%(id__0)s, %(id__1)s) AND (id, lease_id) IN "
        "((%(id__0)s, %(lease__0)s), (%(id__1)s, %(lease__1)s))"
    )
    assert values == {"id__0": 1, "lease__0": 7, "id__1": 2, "lease__1": 8}


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_dialect_defines_what_the_shared_logic_calls(dialect: str) -> None:
    names = set(load(dialect, DIALECTS[dialect], NAMES))  # type: ignore[arg-type]
    claims = {f"{c}_{part}" for c in CLAIMS for part in ("select", "update")}
    assert names >= SHARED
    assert names >= (claims if dialect == "mysql" else CLAIMS)
    assert [n for n in names if n.startswith("migrate_")]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_dialect_uses_the_one_status_vocabulary(dialect: str) -> None:
    queries = load(dialect, DIALECTS[dialect], NAMES)  # type: ignore[arg-type]
    table = next(q.sql for name, q in queries.items() if name.startswith("migrate_1"))
    [checked] = re.findall(r"status IN \(([^)]*)\)", table)
    assert tuple(part.strip(" '") for part in checked.split(",")) == STATUSES
    used = {s for q in queries.values() for s in re.findall(r"status = '(\w+)'", q.sql)}
    assert used == set(STATUSES)


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_payload_column_holds_more_than_64_kib(dialect: str) -> None:
    queries = load(dialect, DIALECTS[dialect], NAMES)  # type: ignore[arg-type]
    table = next(q.sql for name, q in queries.items() if name.startswith("migrate_1"))
    payload = re.search(r"payload (\w+)", table)
    assert payload is not None
    assert payload.group(1) == {"postgres": "BYTEA", "mysql": "LONGBLOB", "sqlite": "BLOB"}[dialect]


def test_identifiers_are_quoted_per_part_and_index_names_follow_the_table() -> None:
    names = identifiers("jobs.task_queue", "other.dead", quote='"')
    assert names["queue_table"] == '"jobs"."task_queue"'
    assert names["ready_index"] == '"task_queue_ready"'  # CREATE INDEX takes no schema
    assert names["ready_index_text"] == '\'"jobs"."task_queue_ready"\''  # lookups do
    assert names["ready_index_label"] == "'jobs.task_queue_ready'"
    assert names["ready_index_name"] == "'task_queue_ready'"
    assert names["dead_index_text"] == '\'"other"."dead_queue"\''
    assert names["notify_function"] == '"jobs"."task_queue_notify"'
    assert names["notify_trigger"] == '"task_queue_notify"'
    assert names["workers_table"] == '"jobs"."task_queue_workers"'
    assert names["completed_table"] == '"jobs"."task_queue_completed"'
    assert names["completed_index"] == '"task_queue_completed_q"'
    assert names["queue_table_text"] == '\'"jobs"."task_queue"\''
    assert names["queue_table_label"] == "'jobs.task_queue'"
    assert names["channel"] == "'asynctasq:jobs.task_queue'"
    assert names["queue_table_schema"] == "'jobs'"
    assert names["dead_letter_table_schema"] == "'other'"
    assert identifiers("t", "d", quote="`")["queue_table_schema"] == "DATABASE()"
    assert identifiers("t", "d", quote="`")["queue_table_label"] == "'t'"


def test_the_configuration_rule_knows_every_name_the_drivers_derive() -> None:
    # config.validate refuses a dead-letter table whose objects clash with the queue
    # table's; it must know every suffix the drivers add.
    made = labels("q", "d")
    derived = {f"q{suffix}" for suffix in QUEUE_TABLE_SUFFIXES}
    derived |= {f"d{suffix}" for suffix in DEAD_LETTER_TABLE_SUFFIXES}
    relations = {name for key, name in made.items() if not key.startswith("notify_")}
    assert relations == derived
