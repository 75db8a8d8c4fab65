"""Walking task arguments: models out at dispatch, references back in at the worker.

Both walks descend into ``list``, ``tuple``, ``set``, ``frozenset`` and ``dict`` values
(exactly those types; dict keys are left as they are, and at dispatch each one that is
not a plain value is given to a ``check``) and name what they visit the way the codec
does: ``args[0]``, ``kwargs['users'][2]``. A container is copied only when
something inside it changed, and arguments made only of plain values are returned as
given after one pass over their types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from asynctasq.codec.encoders import NATIVE
from asynctasq.codec.refs import ModelRef

CONTAINERS: Final = frozenset({list, tuple, set, frozenset, dict})

Swap = Callable[[Any, str], Any]
"""``swap(value, where)``: the replacement of a leaf value, or the value itself."""

Load = Callable[[ModelRef, str], Awaitable[Any]]
"""``await load(ref, where)``: the model a reference names."""

Check = Callable[[Any, str], None]
"""``check(key, where)``: raise if a dict key may not travel (``where`` names the dict)."""


def plain(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """Return whether every argument is a plain value (nothing inside to walk)."""
    return set(map(type, args)) <= NATIVE and set(map(type, kwargs.values())) <= NATIVE


def swap_arguments(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], swap: Swap, check: Check | None = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Return ``args`` and ``kwargs`` with every non-container leaf replaced by ``swap``.

    ``check``, if given, sees every dict key that is not a plain value (``str``, ``int``
    ...) first, with the dict's path.

    Raises:
        Whatever ``swap`` or ``check`` raises.
    """
    new_args = tuple(_swap(value, f"args[{i}]", swap, check) for i, value in enumerate(args))
    new_kwargs = {
        key: _swap(value, f"kwargs[{key!r}]", swap, check) for key, value in kwargs.items()
    }
    return new_args, new_kwargs


def _swap(value: Any, where: str, swap: Swap, check: Check | None) -> Any:
    kind = type(value)
    if kind in NATIVE:
        return value
    if kind is dict:
        if check is not None:
            for key in value:
                if type(key) not in NATIVE:
                    check(key, where)
        items = {k: _swap(v, f"{where}[{k!r}]", swap, check) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return items if changed else value
    if kind in CONTAINERS:
        found = [_swap(v, f"{where}[{i}]", swap, check) for i, v in enumerate(value)]
        changed = any(new is not old for new, old in zip(found, value, strict=True))
        return kind(found) if changed else value
    return swap(value, where)


def holds_references(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """Return whether a :class:`ModelRef` is among the arguments (at any depth)."""
    return any(map(_holds, args)) or any(map(_holds, kwargs.values()))


def _holds(value: Any) -> bool:
    kind = type(value)
    if kind in NATIVE:
        return False
    if kind is ModelRef:
        return True
    if kind is dict:
        return any(map(_holds, value.values()))
    return kind in CONTAINERS and any(map(_holds, value))


async def load_arguments(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], load: Load
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Return ``args`` and ``kwargs`` with every :class:`ModelRef` replaced by ``await load``.

    References are loaded one after another, in argument order.

    Raises:
        Whatever ``load`` raises (``ModelNotFoundError`` for a deleted row).
    """
    new_args = tuple([await _load(value, f"args[{i}]", load) for i, value in enumerate(args)])
    new_kwargs = {k: await _load(v, f"kwargs[{k!r}]", load) for k, v in kwargs.items()}
    return new_args, new_kwargs


async def _load(value: Any, where: str, load: Load) -> Any:
    kind = type(value)
    if kind is ModelRef:
        return await load(value, where)
    if kind is dict:
        return {k: await _load(v, f"{where}[{k!r}]", load) for k, v in value.items()}
    if kind in CONTAINERS:
        return kind([await _load(v, f"{where}[{i}]", load) for i, v in enumerate(value)])
    return value
