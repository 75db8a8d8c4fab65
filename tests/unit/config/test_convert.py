"""The converter's string hooks: strict, whitespace-tolerant, empty means unset upstream."""

from __future__ import annotations

import math
from typing import Any

import pytest

from asynctasq.config.convert import ConversionError, make_converter, type_name

CONVERTER = make_converter()
OPTIONAL_INT: Any = int | None
OPTIONAL_STR: Any = str | None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[(t, True) for t in ["1", "true", "TRUE", "True", "yes", "YES", "on", "On", "t", "T"]],
        *[(t, True) for t in ["y", "Y", " true ", "\ttrue\n"]],
        *[(t, False) for t in ["0", "false", "FALSE", "False", "no", "NO", "off", "OFF"]],
        *[(t, False) for t in ["f", "F", "n", "N", " false ", "  0  "]],
        (True, True),
        (False, False),
    ],
)
def test_bool_accepts_the_documented_words_in_any_case(text: Any, expected: bool) -> None:
    assert CONVERTER.structure(text, bool) is expected


@pytest.mark.parametrize(("value", "expected"), [(1, True), (0, False)])
def test_bool_accepts_the_ints_one_and_zero(value: int, expected: bool) -> None:
    assert CONVERTER.structure(value, bool) is expected


@pytest.mark.parametrize(
    "text", ["None", "maybe", "2", "-1", "truee", "ja", 2, -1, None, 1.0, 0.0, "1.0"]
)
def test_bool_rejects_everything_else(text: Any) -> None:
    with pytest.raises(ConversionError, match="must be a boolean"):
        CONVERTER.structure(text, bool)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", 5), (" 5 ", 5), ("+5", 5), ("-1", -1), ("007", 7), (5, 5), ("\t12\n", 12)],
)
def test_int_accepts_digits_with_surrounding_whitespace(text: Any, expected: int) -> None:
    assert CONVERTER.structure(text, int) == expected


@pytest.mark.parametrize("text", ["5.0", "abc", "five", "5 5", "1e3", "0x10", 5.0, True, None])
def test_int_rejects_anything_but_a_whole_number(text: Any) -> None:
    with pytest.raises(ConversionError, match="must be a whole number"):
        CONVERTER.structure(text, int)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.5", 1.5), (" 2 ", 2.0), ("1e-1", 0.1), (3, 3.0), (0.25, 0.25), ("-0.5", -0.5)],
)
def test_float_accepts_numbers(text: Any, expected: float) -> None:
    assert CONVERTER.structure(text, float) == expected


@pytest.mark.parametrize("text", ["abc", "1,5", "", True, None])
def test_float_rejects_non_numbers(text: Any) -> None:
    with pytest.raises(ConversionError, match=r"^must be a number$"):
        CONVERTER.structure(text, float)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", " NaN ", "Infinity", math.inf, math.nan])
def test_float_rejects_nan_and_infinity_as_not_finite(value: Any) -> None:
    with pytest.raises(ConversionError, match=r"^must be a finite number$"):
        CONVERTER.structure(value, float)


def test_str_keeps_text_exactly() -> None:
    assert CONVERTER.structure(" a b ", str) == " a b "


@pytest.mark.parametrize("value", [5, 1.5, True, None, b"x"])
def test_str_rejects_non_strings_instead_of_stringifying(value: Any) -> None:
    with pytest.raises(ConversionError, match="must be a string"):
        CONVERTER.structure(value, str)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("none", None), ("None", None), ("NULL", None), (" null ", None), (None, None)],
)
def test_optional_int_reads_none_words_as_none(text: Any, expected: int | None) -> None:
    assert CONVERTER.structure(text, OPTIONAL_INT) is expected


@pytest.mark.parametrize(("text", "expected"), [("4", 4), (" 4 ", 4), (4, 4)])
def test_optional_int_reads_numbers(text: Any, expected: int) -> None:
    assert CONVERTER.structure(text, OPTIONAL_INT) == expected


def test_optional_int_rejects_other_text() -> None:
    with pytest.raises(ConversionError, match="must be a whole number"):
        CONVERTER.structure("four", OPTIONAL_INT)


def test_optional_str_keeps_the_word_none_as_text() -> None:
    assert CONVERTER.structure("None", OPTIONAL_STR) == "None"
    assert CONVERTER.structure(None, OPTIONAL_STR) is None


def test_each_factory_call_makes_a_new_converter() -> None:
    assert make_converter() is not make_converter()


@pytest.mark.parametrize(
    ("type_", "name"), [(int, "int"), (int | None, "int | None"), (dict[str, Any], "dict")]
)
def test_type_name_is_readable(type_: Any, name: str) -> None:
    assert type_name(type_) == name
