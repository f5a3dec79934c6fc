"""`interpolate`: one pass, only known names, every other brace untouched."""

from __future__ import annotations

import types

import pytest

from tokenhot_jupyter._exceptions import InvalidInputError
from tokenhot_jupyter._notebook._interpolate import interpolate, lookup

NS = {
    "name": "Ada",
    "n": 3,
    "a": "AAA",
    "b": "BBB",
    "x": "XX",
    "obj": types.SimpleNamespace(inner=types.SimpleNamespace(value=42)),
    "tricky": "{name}",
    "_": "last",
}


def test_replaces_known_names() -> None:
    out = interpolate("Hello {name}, you have {n} items.", NS)
    assert out.text == "Hello Ada, you have 3 items."
    assert out.used == ["name", "n"]
    assert out.unknown == []


def test_unknown_names_are_left_as_written() -> None:
    out = interpolate("Hi {nobody} and {name}", NS)
    assert out.text == "Hi {nobody} and Ada"
    assert out.unknown == ["nobody"]


def test_double_braces_are_the_escape() -> None:
    assert interpolate("literal {{name}} vs {name}", NS).text == "literal {name} vs Ada"
    assert interpolate("{{undefined_thing}}", NS).text == "{undefined_thing}"


def test_one_pass_only() -> None:
    assert interpolate("{tricky}", NS).text == "{name}"


def test_dotted_attributes() -> None:
    assert interpolate("v={obj.inner.value}", NS).text == "v=42"
    assert interpolate("{obj.missing}", NS).text == "{obj.missing}"


def test_dunder_attributes_are_refused() -> None:
    assert interpolate("{obj.__class__}", NS).text == "{obj.__class__}"


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "x", "n": {"a": 1}}',
        "def f(x): return {x: 1}[ x ]",
        "d = { name }",
        "echo ${name} ${x}",
        r"$\frac{a}{b}$ and $x^{n}$ and $x_{n}$",
        r"\textbf{name} \mathrm{x} \section*{name}",
        r"\{name\}",
        "{}",
        "{ }",
        "{1}",
        "{name!r}",
        "{name:>10}",
        "{{",
        "}}",
        "{0.5}",
    ],
)
def test_other_braces_survive(text: str) -> None:
    assert interpolate(text, NS).text == text


def test_latex_next_to_a_real_variable() -> None:
    out = interpolate(r"Simplify $\frac{a}{b}$ for {name}", NS)
    assert out.text == r"Simplify $\frac{a}{b}$ for Ada"


def test_underscore_name() -> None:
    assert interpolate("prev: {_}", NS).text == "prev: last"


def test_property_that_raises_counts_as_missing() -> None:
    class Boom:
        @property
        def bad(self) -> str:
            raise RuntimeError("no")

    assert interpolate("{o.bad}", {"o": Boom()}).text == "{o.bad}"


def test_lookup_direct() -> None:
    assert lookup("obj.inner.value", NS) == 42


def test_a_lone_surrogate_in_a_variable_is_one_clear_error() -> None:
    with pytest.raises(InvalidInputError, match=r"\{title\} has a lone surrogate") as info:
        interpolate("Summarise {title}", {"title": "caf\udce9 menu"})
    assert "\n" not in str(info.value) and "character 3" in str(info.value)


def test_a_variable_whose_str_fails_is_one_clear_error() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    with pytest.raises(InvalidInputError, match=r"\{thing\} cannot go into the prompt"):
        interpolate("About {thing}", {"thing": Broken()})
