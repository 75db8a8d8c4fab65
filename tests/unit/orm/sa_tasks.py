"""Tasks taking models, for the unit tests; each records what it saw in ``SEEN``."""

from __future__ import annotations

from typing import Any

from asynctasq import AsyncTask, ModelNotFoundError, SyncTask, task
from tests.unit.orm.sa_models import Author, Seat

SEEN: list[Any] = []


@task(max_attempts=2, retry_delay=0)
async def describe(author: Author) -> None:
    SEEN.append((author.name, sorted(book.id for book in author.books)))


@task(max_attempts=1)
def describe_in_thread(author: Author) -> None:
    SEEN.append((author.name, len(author.books)))


@task(max_attempts=1)
async def seats(by_hall: dict[str, list[Seat]], first: Seat) -> None:
    SEEN.append(({hall: [s.label for s in found] for hall, found in by_hall.items()}, first.label))


class Rename(AsyncTask):
    config = {"max_attempts": 1}

    def __init__(self, author: Author, name: str) -> None:
        super().__init__(author=author, name=name)

    async def execute(self) -> None:
        self.author.name = self.name
        SEEN.append(self.author.name)

    async def failed(self, exc: BaseException) -> None:
        SEEN.append(("failed", type(exc).__name__, self.author))


class CountBooks(SyncTask):
    config = {"max_attempts": 1}

    def __init__(self, author: Author) -> None:
        super().__init__(author=author)

    def execute(self) -> None:
        SEEN.append(len(self.author.books))


class SendReceipt(AsyncTask):
    """As docs/integrations.md shows it: stop retrying when the row is gone."""

    config = {"max_attempts": 5, "retry_delay": 0}

    def __init__(self, author: Author) -> None:
        super().__init__(author=author)

    async def execute(self) -> None:
        SEEN.append(self.author.name)

    def should_retry(self, exc: BaseException) -> bool:
        SEEN.append(("should_retry", type(exc).__name__, self.author))
        return not isinstance(exc, ModelNotFoundError)
