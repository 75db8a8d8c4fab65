"""The configuration schema: one spec per leaf, the naming rules, and what is generated from it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from asynctasq.config.fields import settings_of
from asynctasq.config.records import GROUPS, Config
from asynctasq.config.resolve import resolve
from asynctasq.config.schema import (
    by_env,
    by_flag,
    by_path,
    context_words,
    env_example_text,
    env_text,
    markdown_tables,
    sections,
    settings,
    type_text,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BEGIN = "<!-- BEGIN OPTION TABLES: generated from asynctasq.config.schema; do not edit -->"
END = "<!-- END OPTION TABLES -->"

ASSIGNMENT = re.compile(r"^# (ASYNCTASQ_[A-Z_]+)=(.*)$")


def _record_paths() -> list[str]:
    paths: list[str] = []
    for name in settings_of(Config):
        if name in GROUPS:
            paths.extend(f"{name}.{field}" for field in settings_of(GROUPS[name]))
        else:
            paths.append(name)
    return paths


def test_there_is_one_spec_per_leaf_of_the_records() -> None:
    assert sorted(spec.path for spec in settings()) == sorted(_record_paths())


def test_sections_put_driver_first_then_the_seed_groups_then_code_only_hooks() -> None:
    keys = [section.key for section in sections()]
    assert keys == ["", *GROUPS, "code"]
    assert [spec.path for spec in sections()[0].specs] == ["driver"]
    assert [spec.path for spec in sections()[-1].specs] == ["sqlalchemy_engine", "tortoise_orm"]


@pytest.mark.parametrize(
    ("path", "env"),
    [
        ("driver", "ASYNCTASQ_DRIVER"),
        ("redis.max_connections", "ASYNCTASQ_REDIS_MAX_CONNECTIONS"),
        ("redis.warmup_connections", "ASYNCTASQ_REDIS_WARMUP_CONNECTIONS"),
        ("redis.delayed_task_interval", "ASYNCTASQ_REDIS_DELAYED_TASK_INTERVAL"),
        ("rabbitmq.delayed_task_interval", "ASYNCTASQ_RABBITMQ_DELAYED_TASK_INTERVAL"),
        ("postgres.warmup_connections", "ASYNCTASQ_POSTGRES_WARMUP_CONNECTIONS"),
        ("mysql.warmup_connections", "ASYNCTASQ_MYSQL_WARMUP_CONNECTIONS"),
        ("events.enable_all", "ASYNCTASQ_EVENTS_ENABLE_ALL"),
        ("task_defaults.retry_strategy", "ASYNCTASQ_TASK_DEFAULTS_RETRY_STRATEGY"),
        ("process_pool.max_tasks_per_child", "ASYNCTASQ_PROCESS_POOL_MAX_TASKS_PER_CHILD"),
        ("repository.keep_completed_tasks", "ASYNCTASQ_REPOSITORY_KEEP_COMPLETED_TASKS"),
        ("sqs.region_name", "ASYNCTASQ_SQS_REGION"),
    ],
)
def test_environment_names_are_the_ones_spec_section_2_lists(path: str, env: str) -> None:
    assert by_path()[path].env == env


def test_every_other_environment_name_is_prefix_group_and_field_in_upper_case() -> None:
    for spec in settings():
        if spec.env is None or spec.path == "sqs.region_name":
            continue
        assert spec.env == "ASYNCTASQ_" + spec.path.replace(".", "_").upper()


@pytest.mark.parametrize("path", ["sqlalchemy_engine", "tortoise_orm"])
def test_code_only_settings_have_neither_variable_nor_flag(path: str) -> None:
    spec = by_path()[path]
    assert (spec.env, spec.flag) == (None, None)


@pytest.mark.parametrize(
    ("flag", "path"),
    [
        ("--driver", "driver"),
        ("--redis-url", "redis.url"),
        ("--postgres-dsn", "postgres.dsn"),
        ("--task-defaults-max-attempts", "task_defaults.max_attempts"),
        ("--process-pool-size", "process_pool.size"),
    ],
)
def test_flags_named_in_spec_section_7_exist(flag: str, path: str) -> None:
    assert by_flag()[flag].path == path


def test_environment_names_and_flags_are_unique() -> None:
    with_env = [spec for spec in settings() if spec.env is not None]
    assert len(by_env()) == len(with_env)
    assert len(by_flag()) == len(with_env)


@pytest.mark.parametrize(
    ("path", "type_text", "default", "choices"),
    [
        (
            "driver",
            "str",
            "redis",
            ("redis", "postgres", "mysql", "rabbitmq", "sqs", "sqlite", "memory"),
        ),
        ("redis.password", "str | None", None, ()),
        ("redis.db", "int", 0, ()),
        ("task_defaults.retry_strategy", "str", "exponential", ("fixed", "exponential")),
        ("process_pool.size", "int | None", None, ()),
        ("events.enable_all", "bool", False, ()),
        ("tortoise_orm", "dict[str, Any] | None", None, ()),
    ],
)
def test_specs_carry_type_default_and_choices_from_the_records(
    path: str, type_text: str, default: object, choices: tuple[str, ...]
) -> None:
    spec = by_path()[path]
    assert (spec.type_text, spec.default, spec.choices) == (type_text, default, choices)


def test_type_text_reads_annotations_as_strings_or_resolved_types() -> None:
    assert [type_text("int | None"), type_text(int), type_text(int | None)] == [
        "int | None",
        "int",
        "int | None",
    ]


@pytest.mark.parametrize(
    ("path", "secret", "url"),
    [
        ("redis.password", True, False),
        ("sqs.aws_secret_access_key", True, False),
        ("redis.url", False, True),
        ("postgres.dsn", False, True),
        ("redis.db", False, False),
    ],
)
def test_specs_say_how_a_value_is_masked(path: str, secret: bool, url: bool) -> None:
    assert (by_path()[path].secret, by_path()[path].url) == (secret, url)


def test_env_text_writes_values_as_the_environment_would_hold_them() -> None:
    assert [env_text(None), env_text(False), env_text(True), env_text(1.0), env_text("x")] == [
        "",
        "false",
        "true",
        "1.0",
        "x",
    ]


def _assignments(text: str) -> dict[str, str]:
    return {m[1]: m[2] for line in text.splitlines() if (m := ASSIGNMENT.match(line))}


def test_env_example_lists_every_variable_once_with_its_default() -> None:
    text = env_example_text()
    assignments = _assignments(text)
    assert assignments == {env: env_text(spec.default) for env, spec in by_env().items()}
    assert sum(line.startswith("# ASYNCTASQ_") for line in text.splitlines()) == len(by_env())


def test_env_example_sets_nothing_every_line_is_a_comment_or_blank() -> None:
    lines = env_example_text().splitlines()
    assert all(line == "" or line.startswith("#") for line in lines)


def test_env_example_ends_with_one_newline_and_has_no_trailing_spaces() -> None:
    text = env_example_text()
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    assert all(line == line.rstrip() for line in text.splitlines())


def test_env_example_shows_help_choices_and_required_driver() -> None:
    text = " ".join(env_example_text().replace("\n# ", " ").split())
    assert "Queue driver to use. Type: str." in text
    assert "Choices: fixed, exponential." in text
    assert "Required when the driver is postgres." in text


def test_copying_env_example_to_dotenv_changes_nothing(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(env_example_text(), encoding="utf-8")
    resolved = resolve(environ={}, env_file=dotenv)
    assert resolved.config == resolve(environ={}, env_file=None).config
    assert set(resolved.provenance.values()) == {"default"}


def test_uncommenting_every_line_of_env_example_still_gives_the_defaults(tmp_path: Path) -> None:
    uncommented = [
        line.removeprefix("# ") if ASSIGNMENT.match(line) else line
        for line in env_example_text().splitlines()
    ]
    dotenv = tmp_path / ".env"
    dotenv.write_text("\n".join(uncommented) + "\n", encoding="utf-8")
    resolved = resolve(environ={}, env_file=dotenv)
    assert resolved.config == Config()
    read_from_file = {path for path, source in resolved.provenance.items() if source != "default"}
    set_to_something = {s.path for s in settings() if s.env is not None and s.default is not None}
    assert read_from_file == set_to_something


def test_markdown_tables_have_a_row_per_setting_with_its_variable_and_flag() -> None:
    tables = markdown_tables()
    for spec in settings():
        row = next(line for line in tables.splitlines() if line.startswith(f"| `{spec.name}` "))
        assert row.count(" | ") == 6
        if spec.env is not None:
            assert f"`{spec.env}`" in tables
            assert f"`{spec.flag}`" in tables


def test_markdown_tables_escape_pipes_inside_cells() -> None:
    assert "| str \\| None |" in markdown_tables()


def _docs_tables(text: str) -> str:
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END)].strip("\n") + "\n"


def test_docs_option_tables_are_the_generated_ones() -> None:
    assert _docs_tables(DOCS.read_text(encoding="utf-8")) == markdown_tables(), (
        "regenerate them: PYTHONPATH=. python tests/unit/test_schema.py"
    )


def test_the_docs_say_where_each_group_is_used() -> None:
    # "Where each group is used" is written by hand; every group must be in it, rightly.
    text = DOCS.read_text(encoding="utf-8")
    part = text.split("## Where each group is used", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str] = {}
    for line in part.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            found.update((name.strip(" `"), cells[1]) for name in cells[0].split(","))
    expected = {
        section.key or "driver": context_words(section.context)
        for section in sections()
        if section.key != "code"
    }
    assert found == expected


def write_docs_tables() -> None:
    """Rewrite the generated part of docs/configuration.md (run this file as a script)."""
    text = DOCS.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{BEGIN}\n\n{markdown_tables()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    write_docs_tables()
    sys.exit(0)
