"""Which dollar signs in a model's prose are maths, and which are text.

Jupyter typesets ``$...$`` wherever two dollar signs meet, so a price list turns into
italic maths.  `find_math` decides instead, by a rule close to pandoc's
``tex_math_dollars``; `_display` then writes every dollar that is text in a form no maths
finder can pair: `DOLLAR`, as `html_text` does for HTML outputs.  Pieces are found in one
paragraph at a time (a blank line ends any maths) and code spans are skipped.

Inline ``$...$`` is maths when:

- the opening ``$`` is a single ``$``, not escaped, followed by a non-space character and
  not preceded by a letter, a digit or one of ``)]}+`` (``US$5``, ``A$20``, regex ``a+$|``);
- the closing ``$`` is the next single unescaped ``$``; it follows a non-space character
  and is not followed by a digit (``$5-$10``) or a letter (``$PATH:$HOME``), except an
  ordinal ending (``$n$th``, ``$k$s``);
- its braces balance, and it is not an amount followed by words (``$5 to 10$``).

``$$...$$``, ``\\(...\\)``, ``\\[...\\]`` (also written with doubled backslashes, as Jupyter
does) and ``\\begin{name}...\\end{name}`` are maths when they close before a blank line
around something that is not blank, with balanced braces.  ``\\$`` is a dollar sign, as
in Markdown.  Any other ``$`` is text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

# A dollar sign or backslash that is text: an entity hides it from Jupyter's maths finder
# (it reads the Markdown source), its own element from MathJax (it pairs within one text node).
DOLLAR = "<span>&#36;</span>"
BACKSLASH = "<span>&#92;</span>"
_BRACKETS = {"\\\\(": "\\\\)", "\\\\[": "\\\\]", "\\(": "\\)", "\\[": "\\]"}  # longest first
_ENV = re.compile(r"\\begin\{([a-zA-Z]*\*?)\}")  # what Jupyter's own finder takes as one
_NOT_BEFORE_OPENER = re.compile(r"[\w)\]}+]")
_ORDINAL = re.compile(r"(?:st|nd|rd|th|s)\b")
_AMOUNT = re.compile(r"\d[\d,.]*")
_PLAIN_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")  # a word, not a \command
_GROUP = re.compile(r"\{[^{}]*\}")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class Piece:
    """A maths span or a dollar sign that is text, as offsets into the paragraph."""

    start: int
    end: int
    kind: str  # maths: "$", "$$", "(", "[", "env"; "text": a dollar; "defuse": a lone opener
    opener: int = 0  # length of the delimiters around the content (0 for text and env)
    closer: int = 0

    def content(self, text: str) -> str:
        """The maths between the delimiters (all of it for an environment)."""
        return text[self.start + self.opener : self.end - self.closer]


def find_math(text: str, code: Mapping[int, int] | None = None) -> list[Piece]:
    """Every maths span and every dollar that is text, left to right.

    ``code`` maps the start of each code span to its end: nothing inside one counts.
    """
    code = code or {}
    found: list[Piece] = []
    i = 0
    while i < len(text):
        if i in code:
            i = code[i]
        elif text[i] == "\\":
            i = _after_backslash(text, i, code, found)
        elif text[i] == "$":
            i = _after_dollars(text, i, code, found)
        else:
            i += 1
    return found


def _after_backslash(text: str, i: int, code: Mapping[int, int], found: list[Piece]) -> int:
    if text.startswith("\\$", i):
        found.append(Piece(i, i + 2, "text"))
        return i + 2
    piece = _bracketed(text, i, code)
    if piece is not None:
        found.append(piece)
        return piece.end if piece.kind != "defuse" else i + 2
    return i + 2


def _bracketed(text: str, i: int, code: Mapping[int, int]) -> Piece | None:
    """Maths in brackets or an environment at ``i``; "defuse" when the opener opens nothing."""
    opener = next((o for o in _BRACKETS if text.startswith(o, i)), None)
    env = _ENV.match(text, i)
    if opener:
        end = _closing(text, i + len(opener), _BRACKETS[opener], code)
        piece = Piece(i, end or 0, opener[-1], len(opener), len(_BRACKETS[opener]))
    elif env:
        end = _closing(text, env.end(), f"\\end{{{env.group(1)}}}", code)
        piece = Piece(i, end or 0, "env")
    else:
        return None
    # An opener that opens nothing has its backslash written so that no maths finder sees it.
    return piece if end is not None else Piece(i, i + 1, "defuse")


def _after_dollars(text: str, i: int, code: Mapping[int, int], found: list[Piece]) -> int:
    run = _run(text, i)
    end = (
        _inline_end(text, i, code) if run == 1 else _closing(text, i + 2, "$$", code)
        if run == 2 else None
    )  # fmt: skip
    if end is not None:
        found.append(Piece(i, end, "$" * run, run, run))
        return end
    found.extend(Piece(k, k + 1, "text") for k in range(i, i + run))
    return i + run


def _run(text: str, i: int) -> int:
    end = i
    while end < len(text) and text[end] == "$":
        end += 1
    return end - i


def _closing(text: str, start: int, closer: str, code: Mapping[int, int]) -> int | None:
    """The end of ``closer`` after ``start``, if it comes before a blank line around maths."""
    i = start
    while i < len(text):
        if i in code:
            i = code[i]
        elif closer == "$$" and text.startswith("$", i) and _run(text, i) != 2:
            i += _run(text, i)  # "$$$" closes nothing
        elif text.startswith(closer, i):
            content = text[start:i]
            return i + len(closer) if content.strip() and _balanced(content) else None
        elif _BLANK_LINE.match(text, i):
            return None
        else:
            i += 2 if text[i] == "\\" else 1
    return None


def _inline_end(text: str, i: int, code: Mapping[int, int]) -> int | None:
    if not _opens(text, i):
        return None
    j = i + 1
    while j < len(text):
        if j in code:
            j = code[j]
        elif text[j] == "\\":
            j += 2
        elif text[j] == "$":
            return j + 1 if _closes(text, i, j) else None
        elif _BLANK_LINE.match(text, j):
            return None
        else:
            j += 1
    return None


def _opens(text: str, i: int) -> bool:
    after = text[i + 1 : i + 2]
    before = text[i - 1 : i] if i else ""
    return bool(after) and not after.isspace() and not _NOT_BEFORE_OPENER.match(before)


def _closes(text: str, i: int, j: int) -> bool:
    after = text[j + 1 : j + 2]
    if text[j - 1].isspace() or after == "$" or after.isdigit():
        return False
    if after.isalpha() and not _ORDINAL.match(text, j + 1):
        return False
    content = text[i + 1 : j]
    return _balanced(content) and not _amount_in_words(content)


def _amount_in_words(content: str) -> bool:
    """``5 to 10``: a price followed by words, not a formula like ``2 + 2 = 4``."""
    if not _AMOUNT.match(content):
        return False
    while _GROUP.search(content):  # words inside \text{...} and the like are maths
        content = _GROUP.sub("", content)
    return bool(_PLAIN_WORD.search(content))


def _balanced(content: str) -> bool:
    """Braces balance as Jupyter counts them (an escaped brace does not count)."""
    depth = 0
    for index, char in enumerate(content):
        if index and content[index - 1] == "\\":
            continue
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
    return depth == 0


def html_text(text: str) -> str:
    """Text for an HTML output: escaped, and no dollar sign or backslash MathJax could pair."""
    return html.escape(text, quote=True).replace("\\", BACKSLASH).replace("$", DOLLAR)
