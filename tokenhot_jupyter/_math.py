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

import bisect
import html
import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass

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
_INTERESTING = re.compile(r"[\\$]")  # where maths or a dollar sign may start
_NON_SPACE = re.compile(r"\S")


@dataclass(frozen=True)
class Piece:
    """A maths span or a dollar sign that is text, as offsets into the paragraph."""

    start: int
    end: int
    kind: str  # maths: "$", "$$", "(", "[", "env"; "text": a dollar; "defuse": a lone opener
    _: KW_ONLY
    opener: int = 0  # length of the delimiters around the content (0 for text and env)
    closer: int = 0

    def content(self, text: str) -> str:
        """The maths between the delimiters (all of it for an environment)."""
        return text[self.start + self.opener : self.end - self.closer]


def find_math(text: str, code: Mapping[int, int] | None = None) -> list[Piece]:
    """Every maths span and every dollar that is text, left to right.

    ``code`` maps the start of each code span to its end: nothing inside one counts.
    Linear in the text (a reply may be long or hostile, and streams re-render it).
    """
    return _Finder(text, code or {}).pieces()


class _Finder:
    """One paragraph's search: each closer is looked for once per stretch of text."""

    def __init__(self, text: str, code: Mapping[int, int]) -> None:
        self.text, self.code = text, code
        self._code_starts = sorted(code)
        self._searched: dict[str, tuple[int, int, bool]] = {}  # closer: (from, to, found)
        self._open: list[int] | None = None  # innermost unclosed "{" before each index

    def pieces(self) -> list[Piece]:
        text, found = self.text, []
        i = 0
        while i < len(text):
            nxt = _INTERESTING.search(text, i)
            if nxt is None:
                break
            i = nxt.start()
            inside = self._code_around(i)
            if inside is not None:
                i = inside
                continue
            piece = self._at(i)
            found += piece
            i = _after(text, i, piece)
        return found

    def _at(self, i: int) -> list[Piece]:
        """What starts at ``i`` (a backslash, a dollar or a code span's start)."""
        text = self.text
        if text.startswith("\\$", i):
            return [Piece(i, i + 2, "text")]
        if text[i] == "\\":
            piece = self._bracketed(i)
            return [piece] if piece else []
        run = _run(text, i)
        end = self._inline_end(i) if run == 1 else self._closing(i + 2, "$$") if run == 2 else None
        if end is not None:
            return [Piece(i, end, "$" * run, opener=run, closer=run)]
        return [Piece(k, k + 1, "text") for k in range(i, i + run)]

    def _bracketed(self, i: int) -> Piece | None:
        """Maths in brackets or an environment at ``i``; "defuse" when the opener opens nothing."""
        opener = next((o for o in _BRACKETS if self.text.startswith(o, i)), None)
        env = _ENV.match(self.text, i)
        if opener:
            end = self._closing(i + len(opener), _BRACKETS[opener])
            closer = len(_BRACKETS[opener])
            piece = Piece(i, end or 0, opener[-1], opener=len(opener), closer=closer)
        elif env:
            end = self._closing(env.end(), f"\\end{{{env.group(1)}}}")
            piece = Piece(i, end or 0, "env")
        else:
            return None
        # An opener that opens nothing has its backslash written so that no maths finder sees it.
        return piece if end is not None else Piece(i, i + 1, "defuse")

    def _closing(self, start: int, closer: str) -> int | None:
        """The end of ``closer`` after ``start``, if it comes before a blank line around maths."""
        at = self._next(closer, start)
        if at is None or not _NON_SPACE.search(self.text, start, at):
            return None
        return at + len(closer) if self._balanced(start, at) else None

    def _next(self, closer: str, start: int) -> int | None:
        """Where ``closer`` next stands, outside code and escapes, before a blank line."""
        begun, stop, found = self._searched.get(closer, (-1, -1, False))
        if not begun <= start <= stop:
            stop, found = self._search(closer, start)
            self._searched[closer] = (start, stop, found)
        return stop if found else None

    def _search(self, closer: str, start: int) -> tuple[int, bool]:
        pattern = _SEARCH[closer] if closer in _SEARCH else _search_for(closer)
        i = start
        while (match := pattern.search(self.text, i)) is not None:
            at = match.start()
            inside = self._code_around(at)
            if inside is not None:
                i = inside
            elif match.group(0).startswith("\n"):
                return at, False  # a blank line
            elif match.group(0) == closer:
                return at, True
            else:
                i = match.end()  # an escape, or a run of dollars that is not "$$"
        return len(self.text), False

    def _code_around(self, index: int) -> int | None:
        """The end of the code span holding ``index``, if one does."""
        k = bisect.bisect_right(self._code_starts, index) - 1
        if k >= 0 and index < self.code[self._code_starts[k]]:
            return self.code[self._code_starts[k]]
        return None

    def _inline_end(self, i: int) -> int | None:
        if not _opens(self.text, i):
            return None
        j = self._next("$", i + 1)
        if j is None or not _closes(self.text, i, j):
            return None
        return j + 1 if self._balanced(i + 1, j) else None

    def _balanced(self, start: int, end: int) -> bool:
        """Braces in ``text[start:end]`` balance as Jupyter counts them (not escaped ones).

        A "{" in the stretch stays open exactly when it is still open at ``end`` in one pass
        over the whole paragraph, so that pass is made once and each question is O(1).
        """
        if "{" not in self.text:
            return True
        if self._open is None:
            self._open = _innermost_open(self.text)
        return self._open[end] < start


def _after(text: str, i: int, pieces: list[Piece]) -> int:
    if not pieces:
        return i + 2  # an escaped character
    last = pieces[-1]
    return i + 2 if last.kind == "defuse" else last.end


def _innermost_open(text: str) -> list[int]:
    """For each index, the position of the innermost "{" still open there (-1 if none)."""
    stack: list[int] = []
    innermost = [-1] * (len(text) + 1)
    last = 0
    for match in re.finditer(r"(?<!\\)[{}]", text):
        top = stack[-1] if stack else -1
        innermost[last : match.start() + 1] = [top] * (match.start() + 1 - last)
        last = match.start() + 1
        if match.group(0) == "{":
            stack.append(match.start())
        elif stack:
            stack.pop()
    innermost[last:] = [stack[-1] if stack else -1] * (len(text) + 1 - last)
    return innermost


def _search_for(closer: str) -> re.Pattern[str]:
    return re.compile(re.escape(closer) + r"|\\.|\n[ \t]*\n", re.S)


_SEARCH = {
    "$": re.compile(r"\$|\\.|\n[ \t]*\n", re.S),
    "$$": re.compile(r"\$+|\\.|\n[ \t]*\n", re.S),  # a run other than "$$" closes nothing
    **{c: _search_for(c) for c in ("\\)", "\\]", "\\\\)", "\\\\]")},
}


def _run(text: str, i: int) -> int:
    end = i
    while end < len(text) and text[end] == "$":
        end += 1
    return end - i


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
    return not _amount_in_words(text[i + 1 : j])


def _amount_in_words(content: str) -> bool:
    """``5 to 10``: a price followed by words, not a formula like ``2 + 2 = 4``."""
    if not _AMOUNT.match(content):
        return False
    while _GROUP.search(content):  # words inside \\text{...} and the like are maths
        content = _GROUP.sub("", content)
    return bool(_PLAIN_WORD.search(content))


def html_text(text: str) -> str:
    """Text for an HTML output: escaped, and no dollar sign or backslash MathJax could pair."""
    return html.escape(text, quote=True).replace("\\", BACKSLASH).replace("$", DOLLAR)
