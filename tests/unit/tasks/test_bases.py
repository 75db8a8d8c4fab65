from __future__ import annotations

import sys

import pytest

from asynctasq.errors import ConfigError
from asynctasq.handle import Handle
from asynctasq.tasks import AsyncProcessTask, AsyncTask, SyncProcessTask, SyncTask, TaskConfig
from asynctasq.tasks.registry import build_registry
from tests.unit.tasks.conftest import enqueued

pytestmark = pytest.mark.anyio


class SendEmail(AsyncTask):
    config: TaskConfig = {"queue": "emails", "max_attempts": 5, "correlation_id": "mail"}

    def __init__(self, to: str, subject: str = "hi") -> None:
        super().__init__(to=to, subject=subject)

    async def execute(self) -> str:
        return f"{self.to}:{self.subject}"


class Resize(SyncTask, name="images.resize"):
    def execute(self) -> int:
        return 1


class Heavy(SyncProcessTask):
    def execute(self) -> int:
        return 2


class HeavyAsync(AsyncProcessTask):
    async def execute(self) -> int:
        return 3


class SharedBase(AsyncTask, abstract=True):
    config: TaskConfig = {"queue": "shared"}


class FromShared(SharedBase):
    async def execute(self) -> None:
        return None


def test_a_task_class_carries_its_name_mode_and_config() -> None:
    definition = SendEmail.definition
    assert definition.name == f"{__name__}:SendEmail"
    assert definition.mode == "async"
    assert (definition.options.queue, definition.options.max_attempts) == ("emails", 5)
    assert (Resize.definition.name, Resize.definition.mode) == ("images.resize", "sync")
    assert Heavy.definition.mode == "sync_process"
    assert HeavyAsync.definition.mode == "async_process"


def test_a_worker_given_this_module_finds_its_concrete_classes_by_name() -> None:
    registry = build_registry([sys.modules[__name__]])
    assert registry.lookup(f"{__name__}:SendEmail") is SendEmail.definition
    assert registry.lookup("images.resize") is Resize.definition


def test_an_abstract_base_has_no_definition_and_its_config_is_inherited() -> None:
    assert "definition" not in vars(SharedBase)
    assert build_registry([sys.modules[__name__]]).find(f"{__name__}:SharedBase") is None
    assert FromShared.definition.options.queue == "shared"


def test_an_abstract_subclass_of_a_concrete_task_cannot_be_dispatched_as_its_parent() -> None:
    class Variant(SendEmail, abstract=True):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Variant("a@example.com").pending()


def test_arguments_are_stored_and_become_attributes() -> None:
    email = SendEmail("a@example.com")
    assert (email.to, email.subject) == ("a@example.com", "hi")
    assert dict(email.pending().kwargs) == {"to": "a@example.com", "subject": "hi"}


async def test_a_class_task_dispatches_with_its_config(handle: Handle) -> None:
    task_id = await SendEmail("b@example.com", subject="yo").dispatch()
    [message] = await enqueued(handle, "emails")
    assert message.task_id == task_id
    assert message.task_name == f"{__name__}:SendEmail"
    assert (message.args, message.kwargs) == ((), {"to": "b@example.com", "subject": "yo"})
    assert (message.max_attempts, message.correlation_id) == (5, "mail")


async def test_chaining_on_an_instance_beats_the_class_config(handle: Handle) -> None:
    await SendEmail("c@example.com").on_queue("urgent").max_attempts(2).dispatch()
    [message] = await enqueued(handle, "urgent")
    assert message.max_attempts == 2


async def test_the_worker_side_rebuilds_the_instance_from_the_arguments() -> None:
    invocation = SendEmail.definition.invoke((), {"to": "d@example.com", "subject": "s"})
    assert await invocation.execute() == "d@example.com:s"
    assert invocation.should_retry(ValueError()) is True


def test_argument_names_reserved_by_the_base_are_refused() -> None:
    class Clashing(AsyncTask):
        async def execute(self) -> None:
            return None

    with pytest.raises(TypeError, match="dispatch"):
        Clashing(dispatch=1)


def test_a_subclass_that_skips_super_init_is_told_how_to_fix_it() -> None:
    class Forgetful(AsyncTask):
        def __init__(self, x: int) -> None:
            self.x = x

        async def execute(self) -> None:
            return None

    with pytest.raises(TypeError, match=r"super\(\).__init__"):
        Forgetful(1).pending()


def test_a_bad_class_config_is_a_config_error_naming_the_class() -> None:
    with pytest.raises(ConfigError, match="max_attempts"):

        class Bad(AsyncTask):
            config: TaskConfig = {"max_attempts": 0}

    with pytest.raises(ConfigError, match=r"^visibility_timeout=0\.5 in .*leases under a second"):

        class Brief(AsyncTask):
            config: TaskConfig = {"visibility_timeout": 0.5}

    with pytest.raises(ConfigError, match="unknown task option"):

        class Typo(AsyncTask):
            config = {"max_attempt": 3}  # type: ignore[typeddict-unknown-key]
