"""What JupyterLab would typeset as maths in an output, without a browser.

JupyterLab renders ``text/markdown`` in three steps: ``removeMath`` (a port of
@jupyterlab/rendermime's ``latex.ts``) hides ``$...$`` and friends from the Markdown
parser, the parser renders, ``replaceMath`` puts the maths back; then MathJax typesets
the page, finding its delimiters inside each text node (element boundaries other than
``<br>`` end a string).  ``text/html`` goes to MathJax directly.  `typeset` runs those
steps around any Markdown renderer and returns the maths MathJax would find and the text
a reader sees, so tests can say which dollar signs stay text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

Renderer = Callable[[str], str]

_MATHSPLIT = re.compile(
    r"(\$\$?|\\(?:begin|end)\{[a-z]*\*?\}|\\[{}$]|[{}]|(?:\n\s*)+|@@\d+@@|\\\\[()[\]])", re.I
)


def remove_math(text: str) -> tuple[str, list[str]]:
    """JupyterLab's ``removeMath``: the text with maths as ``@@n@@``, and the maths."""
    math: list[str] = []
    detilde: Callable[[str], str] = lambda t: t  # noqa: E731
    if "`" in text or "~~~" in text:
        text = text.replace("~", "~T")
        hide = lambda m: m.group(0).replace("$", "~D")  # noqa: E731
        text = re.sub(
            r"^(?P<fence>`{3,}|(~T){3,})[^`\n]*\n([\s\S]*?)^(?P=fence)`*$", hide, text, flags=re.M
        )
        text = re.sub(r"(^|[^\\])(`+)([^\n]*?[^`\n])\2(?!`)", hide, text, flags=re.M)
        detilde = lambda t: re.sub(r"~([TD])", lambda m: "~" if m[1] == "T" else "$", t)  # noqa: E731
    blocks = _MATHSPLIT.split(re.sub(r"\r\n?", "\n", text))
    start: int | None = None
    end: str | None = None
    last: int | None = None
    braces = 0
    i = 1
    while i < len(blocks):
        block = blocks[i]
        if block[:1] == "@":
            blocks[i] = f"@@{len(math)}@@"
            math.append(block)
        elif start is not None:
            if block == end:
                if braces:
                    last = i
                else:
                    blocks = _process(start, i, detilde, math, blocks)
                    start, end, last = None, None, None
            elif re.search(r"\n.*\n", block):
                if last is not None:
                    i = last
                    blocks = _process(start, i, detilde, math, blocks)
                start, end, last, braces = None, None, None, 0
            elif block == "{":
                braces += 1
            elif block == "}" and braces:
                braces -= 1
        elif block in ("$", "$$"):
            start, end, braces = i, block, 0
        elif block in ("\\\\(", "\\\\["):
            start, end, braces = i, "\\\\)" if block[-1] == "(" else "\\\\]", 0
        elif block[1:6] == "begin":
            start, end, braces = i, "\\end" + block[6:], 0
        i += 2
    if start is not None and last is not None:
        blocks = _process(start, last, detilde, math, blocks)
    return detilde("".join(blocks)), math


def _process(
    start: int, end: int, detilde: Callable[[str], str], math: list[str], blocks: list[str]
) -> list[str]:
    piece = "".join(blocks[start : end + 1])
    piece = piece.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for k in range(start + 1, end + 1):
        blocks[k] = ""
    blocks[start] = f"@@{len(math)}@@"
    math.append(detilde(piece))
    return blocks


def replace_math(rendered: str, math: list[str]) -> str:
    """JupyterLab's ``replaceMath``: the maths back in the rendered HTML."""

    def back(match: re.Match[str]) -> str:
        piece = math[int(match.group(1))]
        for open_, close in (("\\\\(", "\\\\)"), ("\\\\[", "\\\\]")):
            if piece.startswith(open_) and piece.endswith(close):
                piece = open_[1:] + piece[3:-3] + close[1:]
        return piece

    return re.sub(r"@@(\d+)@@", back, rendered)


# --- MathJax's view of the page -----------------------------------------------------------------

_SKIP = {"script", "noscript", "style", "textarea", "pre", "code", "annotation", "annotation-xml"}
_START = re.compile(r"\$\$|\$|\\\(|\\\[|\\begin\{([^}]*)\}|\\([\\$])")
_CLOSE = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}


class _Strings(HTMLParser):
    """The page's text in order, as (typeset?, text): element boundaries (but <br>) split it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[bool, str]] = [(True, "")]
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "wbr"):
            self.handle_data("\n" if tag == "br" else "")
            return
        self.parts.append((True, ""))
        self._skipping += tag in _SKIP

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("br", "wbr"):
            self.parts.append((True, ""))
            if tag in _SKIP and self._skipping:
                self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if self._skipping:  # text in code is shown as it is, never typeset
            self.parts += [(False, data), (True, "")]
        else:
            self.parts[-1] = (True, self.parts[-1][1] + data)


@dataclass
class Typeset:
    """What a reader sees: maths MathJax would typeset, and the text with maths as ⟦…⟧."""

    maths: list[str] = field(default_factory=list)
    text: str = ""

    @property
    def dollars(self) -> int:
        """Dollar signs shown as text."""
        return self.text.count("$")


def mathjax(rendered: str) -> Typeset:
    """The maths MathJax (with JupyterLab's settings) finds in an HTML output, and the rest."""
    parser = _Strings()
    parser.feed(rendered)
    parser.close()
    result = Typeset()
    for searched, text in parser.parts:
        result.text += _typeset_string(text, result.maths) if searched else text
    return result


def _typeset_string(text: str, maths: list[str]) -> str:
    """One text string with each maths found replaced by ⟦…⟧ (as MathJax's FindTeX does)."""
    out: list[str] = []
    i = 0
    while True:
        start = _START.search(text, i)
        if start is None:
            return "".join(out) + text[i:]
        out.append(text[i : start.start()])
        if start.group(2):  # \$ or \\: an escape shows the character
            out.append(start.group(2))
            i = start.end()
            continue
        close = f"\\end{{{start.group(1)}}}" if start.group(1) is not None else _CLOSE[start[0]]
        end = _find_end(text, start.end(), close)
        if end is None:
            out.append(start[0])
            i = start.end()
            continue
        body = text[start.end() : end] if start.group(1) is None else text[start.start() : end]
        maths.append(body.strip() if start.group(1) is None else body + close)
        out.append("⟦…⟧")
        i = end + len(close)


def _find_end(text: str, i: int, close: str) -> int | None:
    braces = 0
    pattern = re.compile(re.escape(close) + r"|\\[\\{}$ ]|[{}]")
    for match in pattern.finditer(text, i):
        if match[0] == close and braces == 0:
            return match.start()
        if match[0] == "{":
            braces += 1
        elif match[0] == "}" and braces:
            braces -= 1
    return None


def typeset(markdown: str, render: Renderer) -> Typeset:
    """A ``text/markdown`` output as JupyterLab shows it, with ``render`` as its parser."""
    text, math = remove_math(markdown)
    return mathjax(replace_math(render(text), math))
