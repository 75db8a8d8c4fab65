"""``make_converter()``: the one cattrs converter that turns raw setting values into typed ones.

Raw values come as text from the environment, ``.env`` and CLI flags, or from code. One
rule for every source: a value of the field's own type is taken as it is; text is parsed
by the same rules wherever it comes from (so ``{"redis": {"db": "5"}}`` in code is 5, as
``ASYNCTASQ_REDIS_DB=5`` is). The hooks are strict, so that a typo is an error and never a
silently different value:

- ``bool``: a ``bool``; the ints ``0`` and ``1``; or the text ``1/0, true/false, yes/no,
  on/off, t/f, y/n`` in any case, whitespace trimmed. Anything else (``"None"``,
  ``"maybe"``, the number 2, ``1.0``) is an error.
- ``int``: an ``int`` (not a ``bool``), or text of an optional sign and digits, whitespace
  trimmed (``" 5 "`` is 5); ``"5.0"``, ``"five"`` and a ``float`` such as ``5.0`` are errors.
- ``float``: an ``int`` or ``float`` (not a ``bool``), or text ``float()`` reads, whitespace
  trimmed; NaN and infinity are errors ("must be a finite number").
- ``str``: only strings, kept exactly as given (a number from code is an error, not
  silently ``str()``-ed). The text sources trim their values before they get here.
- ``X | None`` where ``X`` is not ``str``: ``None``, or the text ``none``/``null`` in any
  case, means ``None``; anything else is structured as ``X``. For ``str | None`` fields the
  text is kept as written (a password may be "None").

Empty or whitespace-only text from the environment, ``.env`` or a flag never reaches the
converter: those sources drop it, so the field keeps the value of a lower layer (usually
its default). In code an empty string is a value like any other: ``""`` for an ``int``
field is an error, not "unset" (leave the key out instead).

Source: FIELD-CASES C27 (bool/number parsing); SPEC §2 ("Booleans accept ...").
"""

from __future__ import annotations

import math
import re
import types
from typing import Any, Union, get_args, get_origin

import cattrs

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "t", "y"})
"""Text accepted as ``True`` (compared after trimming and lower-casing)."""

FALSE_WORDS = frozenset({"0", "false", "no", "off", "f", "n"})
"""Text accepted as ``False`` (compared after trimming and lower-casing)."""

NONE_WORDS = frozenset({"none", "null"})
"""Text meaning ``None`` for an optional non-string field."""

_INT = re.compile(r"[+-]?[0-9]+")


class ConversionError(ValueError):
    """A raw value does not fit its field's type; the message is the rule, without the value."""


def structure_bool(value: Any, _type: Any = bool) -> bool:
    """Return ``value`` as a bool.

    Args:
        value: a ``bool``, the int ``0`` or ``1``, or text from :data:`TRUE_WORDS` /
            :data:`FALSE_WORDS`.

    Raises:
        ConversionError: any other value.

    """
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConversionError("must be a boolean: true/false, 1/0, yes/no, on/off, t/f or y/n")


def structure_int(value: Any, _type: Any = int) -> int:
    """Return ``value`` as an int.

    Args:
        value: an ``int`` (not a ``bool``), or text of an optional sign and digits.

    Raises:
        ConversionError: any other value, e.g. ``"5.0"``, ``"abc"``, ``5.0`` or ``True``.

    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value.strip())
    raise ConversionError("must be a whole number")


def structure_float(value: Any, _type: Any = float) -> float:
    """Return ``value`` as a finite float.

    Args:
        value: an ``int`` or ``float`` (not a ``bool``), or text ``float()`` reads.

    Raises:
        ConversionError: any other value ("must be a number"), or NaN / infinity ("must be
            a finite number").

    """
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise ConversionError("must be a number")
    if not math.isfinite(number):
        raise ConversionError("must be a finite number")
    return number


def structure_str(value: Any, _type: Any = str) -> str:
    """Return ``value`` unchanged when it is a string.

    Raises:
        ConversionError: ``value`` is not a string.

    """
    if isinstance(value, str):
        return value
    raise ConversionError("must be a string")


def optional_inner(type_: Any) -> Any | None:
    """Return ``X`` when ``type_`` is ``X | None`` (one other member), else ``None``."""
    if get_origin(type_) not in (Union, types.UnionType):
        return None
    members = [arg for arg in get_args(type_) if arg is not type(None)]
    if len(members) != 1 or len(members) == len(get_args(type_)):
        return None
    return members[0]


def _optional_hook_factory(type_: Any, converter: cattrs.Converter) -> Any:
    inner = optional_inner(type_)
    inner_hook = converter.get_structure_hook(inner)
    words = frozenset() if inner is str else NONE_WORDS

    def structure_optional(value: Any, _type: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str) and value.strip().lower() in words:
            return None
        return inner_hook(value, inner)

    return structure_optional


def make_converter() -> cattrs.Converter:
    """Return a new converter with asynctasq's strict hooks (never cattrs' global one).

    Returns:
        A ``cattrs.Converter`` structuring ``bool``, ``int``, ``float``, ``str`` and
        ``X | None`` as described in this module's docstring, and the configuration
        records from mappings of already-converted values.

    """
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(bool, structure_bool)
    converter.register_structure_hook(int, structure_int)
    converter.register_structure_hook(float, structure_float)
    converter.register_structure_hook(str, structure_str)
    converter.register_structure_hook_factory(
        lambda t: optional_inner(t) is not None, _optional_hook_factory
    )
    return converter


def type_name(type_: Any) -> str:
    """Return a short readable name for a field type: ``int``, ``int | None``, ``dict``."""
    inner = optional_inner(type_)
    if inner is not None:
        return f"{type_name(inner)} | None"
    origin = get_origin(type_) or type_
    return getattr(origin, "__name__", str(type_))
