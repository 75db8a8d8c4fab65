"""``ModelRef``: an ORM row named by its model class and primary key, as it travels.

A SQLAlchemy or Tortoise model instance passed to a task is replaced at dispatch by a
:class:`ModelRef` (:mod:`asynctasq.orm` does that); the codec carries it as its own
extension type, and a worker loads the row again before the task runs. The codec itself
knows no ORM: a ``ModelRef`` is plain data, and decoding one never looks a class up.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

ORMS: Final = ("sqlalchemy", "tortoise")
"""The ORMs a reference may name."""


@attrs.frozen
class ModelRef:
    """One row of an ORM model, by class path and primary key.

    Attributes:
        orm: ``"sqlalchemy"`` or ``"tortoise"``.
        model: the model class as ``module:qualname``.
        pk: the primary key values, in the mapper's column order (one item unless the key
            is composite); each a value the codec carries (int, str, UUID, datetime, ...).
    """

    orm: str
    model: str
    pk: tuple[Any, ...]

    def __str__(self) -> str:
        key = self.pk[0] if len(self.pk) == 1 else self.pk
        return f"{self.model} with primary key {key!r}"
