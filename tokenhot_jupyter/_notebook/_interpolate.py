"""Notebook variables in prompts, only on request (``%%chat --vars``), in one pass.

Rules (also in the ``%%chat?`` help):

* ``{name}`` or ``{name.attr}`` is replaced by ``str(value)`` when ``name`` exists in the
  notebook's namespace; an unknown name is left exactly as written.
* ``{{name}}`` is the escape: it becomes the literal text ``{name}``.
* Every other brace is left alone: JSON (``{"a": 1}``), code (``{ x }``, ``${HOME}``),
  and LaTeX groups (``\\frac{a}{b}``, ``x^{n}``, ``x_{i}``) are never touched.
* Substituted text is not scanned again, so a value that itself contains ``{x}`` stays
  as it is.
* A value whose text cannot be sent (a lone surrogate, or a ``str()`` that fails) is one
  InvalidInputError naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import InvalidInputError

_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z]\w*)*"
_PATTERN = re.compile(r"\{\{(" + _NAME + r")\}\}|\{(" + _NAME + r")\}")
# A brace right after one of these is a LaTeX group or a shell/JS template, not a variable.
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+\*?$")
_NOT_AFTER = ("}", "^", "_", "\\", "$")
MISSING: Any = object()  # what `lookup` returns for an absent name


@dataclass
class Interpolated:
    """The prompt after substitution, with the names used and the names left alone."""

    text: str
    used: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def interpolate(text: str, namespace: Mapping[str, Any]) -> Interpolated:
    """Replace ``{name}`` with values from ``namespace`` in one pass (see the module doc)."""
    result = Interpolated(text)

    def replace(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped is not None:
            return "{" + escaped + "}"
        if _is_latex_or_template(text, match.start()):
            return match.group(0)
        value = lookup(name, namespace)
        if value is MISSING:
            _add(result.unknown, name)
            return match.group(0)
        _add(result.used, name)
        return _text(value, name)

    result.text = _PATTERN.sub(replace, text)
    return result


def lookup(name: str, namespace: Mapping[str, Any]) -> Any:
    """``name`` or ``name.attr.attr`` from ``namespace``; `MISSING` when absent."""
    head, *attrs = name.split(".")
    if head not in namespace:
        return MISSING
    value = namespace[head]
    for attr in attrs:
        if attr.startswith("__"):
            return MISSING
        try:
            value = getattr(value, attr)
        except Exception:  # a property that raises counts as "not there"
            return MISSING
    return value


def _text(value: Any, name: str) -> str:
    """``str(value)``, which must be text the gateway can be sent (UTF-8)."""
    try:
        text = str(value)
    except Exception as exc:  # a broken __str__ is the variable's problem, said in one line
        raise InvalidInputError(
            f"{{{name}}} cannot go into the prompt: str() of it failed ({type(exc).__name__})."
        ) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{{{name}}} has a lone surrogate ({text[exc.start]!r} at character {exc.start}), "
            "which is not Unicode text, so the prompt cannot be sent.",
            hint="Fix the variable, e.g. value.encode('utf-8', 'replace').decode().",
        ) from None
    return text


def _is_latex_or_template(text: str, start: int) -> bool:
    before = text[max(0, start - 40) : start]
    if before.endswith(_NOT_AFTER):
        return True
    return _LATEX_COMMAND.search(before) is not None


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)
