"""Dispatch: ORM models travel as references (class path + primary key), never as data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, make_transient_to_detached

from asynctasq import SerializationError, configured, task
from asynctasq.codec.refs import ModelRef
from asynctasq.message import TaskMessage, decode, encode
from asynctasq.orm import to_references
from tests.unit.orm import sa_tasks as tasks
from tests.unit.orm.sa_models import Author, Base, Seat

AUTHOR = "tests.unit.orm.sa_models:Author"


@task(process=True)
def in_pool(author: Author) -> None:
    """Never runs: dispatch refuses models for process-pool tasks."""


def saved(model: Any) -> Any:
    """Give ``model`` an identity as if it had been loaded (no database needed)."""
    make_transient_to_detached(model)
    return model


def message(args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskMessage:
    return TaskMessage(
        task_id="t",
        task_name="n",
        args=args,
        kwargs=kwargs,
        queue="q",
        attempt=1,
        max_attempts=1,
        retry_strategy="fixed",
        retry_delay_seconds=0.0,
        timeout_seconds=None,
        visibility_timeout_seconds=30.0,
        correlation_id=None,
        dispatched_at=0.0,
    )


def test_a_saved_instance_becomes_a_reference_by_class_path_and_key() -> None:
    args, kwargs = to_references((saved(Author(id=7, name="a")),), {}, task="t")
    assert args == (ModelRef("sqlalchemy", AUTHOR, (7,)),)
    assert kwargs == {}


def test_a_composite_key_keeps_every_column_in_mapper_order() -> None:
    seat = saved(Seat(hall="B", number=12, label="x"))
    args, _ = to_references((seat,), {}, task="t")
    assert args == (ModelRef("sqlalchemy", "tests.unit.orm.sa_models:Seat", ("B", 12)),)


def test_models_inside_lists_tuples_sets_and_dict_values_are_replaced() -> None:
    one, two = saved(Author(id=1, name="a")), saved(Author(id=2, name="b"))
    args, kwargs = to_references(
        ([one, two], (one,), {two}), {"by_name": {"a": one, "nested": [two]}}, task="t"
    )
    ref1, ref2 = ModelRef("sqlalchemy", AUTHOR, (1,)), ModelRef("sqlalchemy", AUTHOR, (2,))
    assert args == ([ref1, ref2], (ref1,), {ref2})
    assert kwargs == {"by_name": {"a": ref1, "nested": [ref2]}}


def test_plain_arguments_are_returned_as_given() -> None:
    args, kwargs = (1, "x", [1, 2]), {"k": {"a": (1,)}, "u": uuid.uuid4()}
    new_args, new_kwargs = to_references(args, kwargs, task="t")
    assert new_args[2] is args[2]
    assert new_kwargs["k"] is kwargs["k"]
    assert new_kwargs["u"] is kwargs["u"]


def test_an_unsaved_instance_is_refused_naming_the_argument() -> None:
    with pytest.raises(SerializationError, match=r"kwargs\['who'\]\[1\].*not saved yet"):
        to_references((), {"who": [saved(Author(id=1, name="a")), Author(name="new")]}, task="t")


def test_a_model_cannot_be_sent_to_a_process_pool_task() -> None:
    with pytest.raises(SerializationError, match=r"args\[0\].*process pool.*primary key"):
        to_references((saved(Author(id=1, name="a")),), {}, task="t", process=True)


def test_references_survive_the_message_codec_with_their_types() -> None:
    ref = ModelRef("sqlalchemy", "m:C", ("B", 12, uuid.UUID(int=5)))
    back = decode(encode(message((ref, [ref]), {"d": {"x": ref}})))
    assert back.args == (ref, [ref])
    assert back.kwargs == {"d": {"x": ref}}
    assert type(back.args[0].pk) is tuple


@pytest.mark.anyio
async def test_dispatch_sends_references() -> None:
    author = saved(Author(id=3, name="c"))
    async with configured(driver="memory") as handle:
        await tasks.describe(author).dispatch()
        driver = await handle.driver()
        [delivery] = await driver.dequeue(["default"], wait_seconds=0, limit=1)
    assert decode(delivery.body).args == (ModelRef("sqlalchemy", AUTHOR, (3,)),)


@pytest.mark.anyio
async def test_dispatch_refuses_an_unsaved_instance() -> None:
    async with configured(driver="memory"):
        with pytest.raises(
            SerializationError, match=r"args\[0\] \(a tests.unit.orm.sa_models.Author\)"
        ):
            await tasks.describe(Author(name="never saved")).dispatch()


@pytest.mark.anyio
async def test_dispatch_refuses_a_model_for_a_process_pool_task() -> None:
    async with configured(driver="memory"):
        with pytest.raises(SerializationError, match=r"process pool"):
            await in_pool(saved(Author(id=1, name="a"))).dispatch()


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as found:
        yield found
    engine.dispose()


def test_an_instance_deleted_and_committed_is_refused_naming_the_argument(
    session: Session,
) -> None:
    author = Author(id=1, name="a")
    session.add(author)
    session.commit()
    session.delete(author)
    session.commit()
    with pytest.raises(SerializationError, match=r"kwargs\['who'\] .*Author.*was deleted"):
        to_references((), {"who": author}, task="t")


def test_an_instance_deleted_and_flushed_is_refused(session: Session) -> None:
    author = Author(id=2, name="b")
    session.add(author)
    session.commit()
    session.delete(author)
    session.flush()
    with pytest.raises(SerializationError, match=r"args\[0\] .*was deleted"):
        to_references((author,), {}, task="t")


def test_the_unsaved_message_says_to_commit_before_dispatching() -> None:
    with pytest.raises(SerializationError, match=r"not saved yet.*; commit its session before dis"):
        to_references((Author(name="new"),), {}, task="t")


def test_a_model_as_a_dict_key_is_refused_saying_so() -> None:
    author = saved(Author(id=3, name="c"))
    with pytest.raises(SerializationError, match=r"args\[0\]: a model cannot be a dict key"):
        to_references(({author: 1},), {}, task="t")
    with pytest.raises(SerializationError, match=r"kwargs\['m'\]\['x'\]: a model cannot"):
        to_references((), {"m": {"x": {Author(name="unsaved"): 1}}}, task="t")
