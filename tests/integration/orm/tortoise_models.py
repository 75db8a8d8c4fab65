"""Tortoise models on PostgreSQL; table names unique to this test process (xdist-safe)."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

SUFFIX = uuid.uuid4().hex[:10]


class Author(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=50)
    books: fields.ReverseRelation[Book]

    class Meta:
        table = f"h18_tt_author_{SUFFIX}"


class Book(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=50)
    author: fields.ForeignKeyRelation[Author] = fields.ForeignKeyField(
        "models.Author", related_name="books"
    )

    class Meta:
        table = f"h18_tt_book_{SUFFIX}"
