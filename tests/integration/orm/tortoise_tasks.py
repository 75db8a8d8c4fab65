"""Tasks taking Tortoise models; each records what it saw in ``SEEN``."""

from __future__ import annotations

from typing import Any

from asynctasq import task
from tests.integration.orm.tortoise_models import Author

SEEN: list[Any] = []


@task(max_attempts=2, retry_delay=0)
async def titles(author: Author) -> None:
    books = await author.books.all().order_by("id")  # a relation loaded inside the task
    SEEN.append((author.name, [book.title for book in books]))


@task
async def names(authors: list[Author], lead: Author) -> None:
    SEEN.append(([a.name for a in authors], lead.name))
