"""Mime bundles for every magic: inert Markdown, live streams, comparison grids, media.

Nothing here talks to the network.  Model text is made inert before it reaches a rich
mime type: ``<`` and ``&`` are escaped outside fenced code, inline code that holds markup
becomes an escaped ``<code>`` element, the words ``javascript``, ``vbscript`` and
``livescript`` are broken, and a link or link definition whose target (decoded the way a
renderer might) is not ``http(s)://``, ``mailto:`` or ``#`` loses its ``]`` to an entity,
so it stays readable text.  A reply's pictures are never fetched: ``![alt](url)`` becomes
the link ``[image: alt](url)`` and any other ``![`` loses its ``!`` to an entity (pictures
the gateway returns as results are shown as usual).  Frontends differ in how they
sanitise Markdown (JupyterLab does, nbconvert and others may not), so we never rely on
them.  Every text is redacted (`_redact.redact`) before it goes into a bundle.
Terminals get readable ``text/plain``.

Dollar signs are text unless they are maths.  JupyterLab typesets every ``$...$`` pair it
finds (its Markdown step hides them from the parser, then MathJax reads every text node
of Markdown and HTML outputs alike, and Markdown's ``\\$`` does not stop it), so prices
would turn into maths.  `_math.find_math` decides with pandoc's rule: an opening ``$``
has a non-space on its right, a closing ``$`` a non-space on its left and no digit or
letter after it, ``US$5``-style prefixes and amounts followed by words are text;
``$$...$$``, ``\\(...\\)``, ``\\[...\\]`` and ``\\begin...\\end`` blocks are maths.  A dollar
that is text is written as `DOLLAR` (``<span>&#36;</span>``): the entity hides it from
Jupyter's Markdown step and the element keeps MathJax from pairing it; its look and its
copied text are a plain ``$``.  Maths is written the way JupyterLab's finder takes it
(``\\\\(`` for ``\\(``), with ``<`` as ``\\lt`` and CSS ``url(`` broken so it fetches nothing.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import contextvars
import dataclasses
import datetime as _dt
import enum
import html
import itertools
import json
import math
import re
import string
import sys
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any, Literal

from IPython.core.displaypub import DisplayPublisher

from .._math import BACKSLASH, DOLLAR, Piece, find_math, html_text
from .._redact import redact, redact_tree
from .._svg import inert_svg
from .._types import Image, Usage

Bundle = dict[str, Any]
PROVENANCE = "tokenhot"
SIMULATED_BANNER = "answers are simulated"
AUDIO_EMBED_LIMIT = 8 * 1024 * 1024  # larger WAVs are linked by path, not inlined
SVG = "image/svg+xml"
PICTURE_LIMIT = 512  # px: the longest side a picture is shown at (its saved file keeps all)

# --- inert Markdown ---------------------------------------------------------------------

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
# Words that name a script scheme, and data: URLs other than pictures: broken wherever
# prose holds them (MathJax's \href, renderers' own link rules), not only before a colon.
_BAD_WORD = re.compile(
    r"(?i)javascript|vbscript|livescript|\bdata(?=\s*:(?!image/(?:png|jpe?g|gif|webp)[;,]))"
)
# A web address is left whole so that links to pages about JavaScript keep working; it
# stops at what math, HTML or an escape would need.
_WEB_ADDRESS = re.compile(r"(?i)(?<![\w.+-])https?://[\w\-.~:/?#\[\]@!&'()*+,;=%]*")
_LINK_END = re.compile(r"\][ \t]*[(:]")  # ](target) and [label]: target (lenient spacing)
_SAFE_TARGETS = ("http://", "https://", "mailto:", "#")
_TARGET_LIMIT = 2048  # longer targets that do not plainly start safe are not decoded
_PUNCT = set("\\`*_[]|~$^")  # what inline Markdown (and Jupyter's math) could act on
_LITERAL = {"<": "&lt;", "&": "&amp;", "$": DOLLAR, "\\": BACKSLASH}
# Maths as written for each renderer: Jupyter's Markdown finder takes \\( \\), MathJax in
# HTML \( \); environments carry their own \begin and \end.
_MD_DELIMITERS = {
    "$": ("$", "$"), "$$": ("$$", "$$"), "(": ("\\\\(", "\\\\)"), "[": ("\\\\[", "\\\\]"),
    "env": ("", ""),
}  # fmt: skip
_HTML_DELIMITERS = _MD_DELIMITERS | {"(": ("\\(", "\\)"), "[": ("\\[", "\\]")}
# Maths that would make the browser fetch: CSS inside \style or \bbox, an image in Markdown.
_MATH_FETCH = re.compile(r"(?i)(?:url|image-set|image|cross-fade)(?=\s*\()|!(?=\[)")
_ENTITY_LIKE = re.compile(r"&(?=#?\w+;)")
_ESCAPES = {"<": "&lt;", "&": "&amp;"}  # \x in prose: the entity shows x (\] stays: LaTeX)
_ESCAPABLE = frozenset(string.punctuation)  # what a backslash escapes in Markdown
# Code spans with these are written as <code> with entities: Jupyter's maths finder reads
# a $ or \\( inside a backtick span as maths.
_CODE_NEEDS_HTML = re.compile(r"[<&\]$\\]")


@dataclass
class _Fence:
    char: str
    length: int
    indent: int


def inert_markdown(text: str) -> str:
    """Markdown that renders the model's text but can never carry live HTML or script."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    rows: list[tuple[bool, str]] = []  # (prose?, line): prose is made inert, code kept
    state = _Classifier()
    for line in lines:
        rows.append(state.row(line))
    out: list[str] = []
    for prose, group in itertools.groupby(rows, key=lambda row: row[0]):
        block = [line for _, line in group]
        out += _prose_block(block) if prose else block
    if state.fence is not None and state.certain:
        out.append(state.fence.char * state.fence.length)
    return "\n".join(out)


class _Classifier:
    """Walks the lines of a reply: which are prose (made inert) and which are fenced code."""

    def __init__(self) -> None:
        self.fence: _Fence | None = None
        self.certain = True  # False once we cannot tell whether a renderer is inside a fence

    def row(self, line: str) -> tuple[bool, str]:
        """(prose?, the line as written) for the next line."""
        if not self.certain:
            return True, line
        if self.fence is None:
            self.fence = _open_fence(line)
            return (False, _fence_line(line)) if self.fence else (True, line)
        verdict = _inside(self.fence, line)
        self.certain = verdict != "unknown"
        self.fence = self.fence if verdict == "code" else None
        return not self.certain, line

    @property
    def settled(self) -> bool:
        """Outside any fence, and sure of it: what follows renders as if it began the text."""
        return self.fence is None and self.certain


_BLANK = re.compile(r"[ \t]*")  # a line that ends a paragraph (and any maths, see `_math`)


def settled_prefix(text: str) -> int:
    """How much of ``text`` (normalised newlines) renders the same whatever follows it.

    The text up to just after its last blank line outside any fence: lines are made inert
    one by one, except that maths may run over the lines of one paragraph, never past a
    blank line.  So ``inert_markdown(text)`` is ``inert_markdown(text[: n - 1])``, a newline
    and ``inert_markdown(text[n:])`` for ``n = settled_prefix(text)`` (when ``n > 0``).
    """
    state, end, at = _Classifier(), 0, 0
    lines = text.split("\n")
    for line in lines[:-1]:  # the last one may still grow
        state.row(line)
        at += len(line) + 1
        if state.settled and _BLANK.fullmatch(line):
            end = at
    return end


class StreamMarkdown:
    """`inert_markdown` of a growing text, rendering again only what follows its last
    paragraph break (see `settled_prefix`); the result equals the one-shot rendering."""

    def __init__(self) -> None:
        self._source = ""  # a settled prefix of the text seen so far ...
        self._markdown = ""  # ... and its rendering (without the newline that follows)

    def __call__(self, text: str) -> str:
        """``inert_markdown(text)``, from the cache where ``text`` extends what came before."""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not text.startswith(self._source):  # redaction rewrote the past: start again
            self._source = self._markdown = ""
        rest = text[len(self._source) :]
        cut = settled_prefix(rest)
        if cut:
            settled = inert_markdown(rest[: cut - 1])
            self._markdown = f"{self._markdown}\n{settled}" if self._source else settled
            self._source += rest[:cut]
            rest = rest[cut:]
        tail = inert_markdown(rest)
        return f"{self._markdown}\n{tail}" if self._source else tail


def _open_fence(line: str) -> _Fence | None:
    match = _FENCE.match(line)
    if not match or (match.group(2)[0] == "`" and "`" in match.group(3)):
        return None
    return _Fence(match.group(2)[0], len(match.group(2)), len(match.group(1)))


def _fence_line(line: str) -> str:
    match = _FENCE.match(line)
    assert match is not None
    info = re.match(r"\s*([\w+#.-]*)", match.group(3))
    return match.group(1) + match.group(2) + (info.group(1) if info else "")


def _inside(fence: _Fence, line: str) -> str:
    """'code', 'close' or 'unknown' for a line after an opening fence."""
    stripped = line.lstrip(" ")
    indent = len(line) - len(stripped)
    closes = re.fullmatch(re.escape(fence.char) + f"{{{fence.length},}}[ \t]*", stripped)
    if fence.indent == 0:
        return "close" if closes and indent <= 3 else "code"
    # An indented fence may sit in a list item whose indent we cannot know for sure.
    if closes:
        return (
            "close"
            if fence.indent <= indent <= 3
            else "code"
            if indent > fence.indent + 3
            else "unknown"
        )
    if stripped and indent < fence.indent:
        return "unknown"
    return "code"


def _prose_block(lines: list[str]) -> list[str]:
    """Consecutive prose lines made inert; maths is found across them (it may span lines)."""
    starts = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
    code = {
        starts[n] + a: starts[n] + b for n, line in enumerate(lines) for a, b in _code_ranges(line)
    }
    text = "\n".join(lines)
    marks: list[dict[int, tuple[int, str]]] = [{} for _ in lines]
    for piece in find_math(text, code):
        first = bisect.bisect_right(starts, piece.start) - 1
        written = _math_markdown(text, piece).split("\n")
        for n, part in enumerate(written, first):  # a piece keeps its line breaks
            begin = max(piece.start - starts[n], 0)
            marks[n][begin] = (min(piece.end - starts[n], len(lines[n])), part)
    return [_prose(line, found) for line, found in zip(lines, marks, strict=True)]


def _code_ranges(line: str) -> list[tuple[int, int]]:
    """Where `_prose` will see code spans in ``line`` (it walks the line the same way)."""
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(line):
        if line[i] == "\\" and line[i + 1 : i + 2] in _ESCAPABLE:
            i += 2
        elif line[i] == "`":
            run, close = _code_close(line, i)
            if close is not None:
                ranges.append((i, close + run))
            i = i + run if close is None else close + run
        else:
            i += 1
    return ranges


def _prose(line: str, marks: Mapping[int, tuple[int, str]] | None = None) -> str:
    """One line of prose made inert; ``marks`` replace maths and dollar signs found earlier."""
    marks = marks or {}
    out: list[str] = []
    words: list[str] = []  # prose since the last code span
    brackets: dict[int, int] | None = None  # found once, at the line's first "!["
    i = 0
    while i < len(line):
        char, following = line[i], line[i + 1 : i + 2]
        if i in marks:
            out.append(_inert_words("".join(words)))
            words = []
            i, piece = marks[i]
            out.append(piece)
        elif char == "\\" and following in _ESCAPES:
            words.append(_ESCAPES[following])
            i += 2
        elif char == "\\" and following and following in _ESCAPABLE:
            words.append(char + following)  # an escaped backtick opens no code span
            i += 2
        elif char == "`":
            out.append(_inert_words("".join(words)))
            words = []
            piece, i = _code_span(line, i)
            out.append(piece)
        elif char == "!" and following == "[":
            brackets = _bracket_pairs(line) if brackets is None else brackets
            words.append(_image_start(line, i, brackets))
            i += 2
        else:
            words.append(_escape_char(char))
            i += 1
    out.append(_inert_words("".join(words)))
    return _inert_links("".join(out))


def _image_start(line: str, start: int, brackets: dict[int, int]) -> str:
    """What replaces the ``![`` of a Markdown image: a picture in a reply would be fetched.

    ``![alt](url)`` and ``![alt][ref]`` become the link ``[image: alt](url)``; any other
    ``![`` keeps its ``!`` as an entity, which no renderer reads as the start of an image.
    """
    close = brackets.get(start + 1)
    if close is not None and line[close + 1 : close + 2] in ("(", "["):
        return "[image: " if close > start + 2 else "[image"
    return "&#33;["


def _bracket_pairs(line: str) -> dict[int, int]:
    """Each ``[`` of the line and the ``]`` that closes it (escaped ones do not count)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for match in re.finditer(r"\\.|[\[\]]", line):
        if match.group(0) == "[":
            stack.append(match.start())
        elif match.group(0) == "]" and stack:
            pairs[stack.pop()] = match.start()
    return pairs


def _escape_char(char: str) -> str:
    return "&lt;" if char == "<" else "&amp;" if char == "&" else char


def _inert_words(prose: str) -> str:
    """Prose with a zero-width space inside every script-scheme word, web addresses aside."""
    out: list[str] = []
    last = 0
    for match in _WEB_ADDRESS.finditer(prose):
        out += [_break_words(prose[last : match.start()]), match.group(0)]
        last = match.end()
    return "".join(out) + _break_words(prose[last:])


def _break_words(text: str) -> str:
    return _BAD_WORD.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)


def _inert_links(line: str) -> str:
    """Write ``]`` as ``&#93;`` wherever it would open a link to an unsafe target."""
    out: list[str] = []
    last = 0
    for match in _LINK_END.finditer(line):
        # A target past this length is unsafe anyway: reading no further keeps this linear.
        if not safe_target(line[match.end() : match.end() + 2 * _TARGET_LIMIT]):
            start = match.start()
            escaped = _backslashes_before(line, start) % 2  # \] shows ] as &#93; does
            out.append(line[last : start - escaped] + "&#93;")
            last = start + 1
    return "".join(out) + line[last:]


def _backslashes_before(line: str, index: int) -> int:
    count = 0
    while count < index and line[index - count - 1] == "\\":
        count += 1
    return count


def safe_target(text: str) -> bool:
    """True when a link target (the text after ``](`` or ``]:``) is http(s), mailto or #.

    The target is decoded as generously as any renderer or browser might: entities until
    nothing changes, then backslashes, whitespace, control and zero-width characters go.
    A missing target (it may follow on the next line) is not safe.
    """
    token = text.lstrip().split(None, 1)[0] if text.strip() else ""
    if token[:8].lower().startswith(_SAFE_TARGETS):
        return True
    if len(token) > _TARGET_LIMIT:
        return False
    return _decoded(token).startswith(_SAFE_TARGETS)


def _decoded(target: str) -> str:
    previous = None
    while previous != target:  # each round shortens the text until it is stable
        previous, target = target, html.unescape(target)
    return "".join(c for c in target if c != "\\" and not _invisible(c)).lower()


def _invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def _code_span(line: str, start: int) -> tuple[str, int]:
    run, close = _code_close(line, start)
    if close is None:
        return line[start : start + run], start + run
    content = line[start + run : close]
    if not _CODE_NEEDS_HTML.search(content) and not _BAD_WORD.search(content):
        return line[start : close + run], close + run
    if content.startswith(" ") and content.endswith(" ") and content.strip():
        content = content[1:-1]
    return "<code>" + _code_literal(content) + "</code>", close + run


def _code_close(line: str, start: int) -> tuple[int, int | None]:
    """The length of the backtick run at ``start`` and where its closing run starts."""
    end = start
    while end < len(line) and line[end] == "`":
        end += 1
    return end - start, _closing_run(line, end, end - start)


def _code_literal(content: str) -> str:
    # A renderer may not see the span we see (one opened on an earlier line), so even here
    # no ] and no script word appears literally; the entities read the same.
    return _BAD_WORD.sub(lambda m: f"&#{ord(m.group(0)[0])};" + m.group(0)[1:], md_literal(content))


def _closing_run(line: str, start: int, run: int) -> int | None:
    for match in re.finditer(r"`+", line[start:]):
        if len(match.group(0)) == run:
            return start + match.start()
    return None


def md_literal(text: str) -> str:
    """Text that Markdown shows verbatim: HTML-escaped, punctuation as numeric entities."""
    return "".join(_LITERAL.get(c) or (f"&#{ord(c)};" if c in _PUNCT else c) for c in text)


# --- maths and dollar signs (the rule is in `_math`) -------------------------------------------


def _math_markdown(text: str, piece: Piece) -> str:
    """A piece found by `find_math`, written for a Markdown renderer and Jupyter's finder."""
    if piece.kind == "text":
        return "%24" if _in_address(text, piece.start) else DOLLAR
    if piece.kind == "defuse":
        return BACKSLASH
    opener, closer = _MD_DELIMITERS[piece.kind]
    body = _defused_math(piece.content(text)).replace("<", "\\lt ")  # never an HTML tag
    return opener + _break_words(_ENTITY_LIKE.sub("&amp;", body)) + closer


def _math_html(text: str, piece: Piece) -> str:
    """The same piece for an HTML output, where MathJax reads the text itself."""
    if piece.kind in ("text", "defuse"):
        return DOLLAR if piece.kind == "text" else BACKSLASH
    opener, closer = _HTML_DELIMITERS[piece.kind]
    body = _break_words(_defused_math(piece.content(text)))
    return opener + html.escape(body, quote=False) + closer


def _defused_math(body: str) -> str:
    """Maths that cannot fetch: CSS functions get a thin space, ``![`` an empty group."""
    return _MATH_FETCH.sub(lambda m: "!{}" if m.group(0) == "!" else m.group(0) + "\\,", body)


def _in_address(text: str, index: int) -> bool:
    """True when ``index`` is inside a web address or link target (a $ there stays in it)."""
    token = text[max(text.rfind(c, 0, index) for c in " \t\n") + 1 : index]
    return "://" in token or "](" in token


# --- small formatting helpers --------------------------------------------------------------


def money(usd: float | None) -> str:
    """An estimated price, e.g. ``≈$0.0031 est.``."""
    return "" if usd is None else f"≈{dollars(usd)} est."


def dollars(usd: float) -> str:
    """A sum in USD: cents from $0.01 up (``$4.20``), else two significant digits (``$0.0031``)."""
    if usd <= 0:
        return "$0"
    digits = 2 if usd >= 0.01 else min(8, 1 - math.floor(math.log10(usd)))
    return f"${usd:.{digits}f}"


def seconds(value: float | None) -> str:
    """``1.23 s`` or ``4 min 05 s``."""
    if value is None:
        return ""
    if value < 60:
        return f"{value:.2f} s"
    return f"{int(value // 60)} min {int(value % 60):02d} s"


def tokens(usage: Usage | None) -> str:
    """``12 in / 40 out tokens``."""
    if usage is None:
        return ""
    text = f"{usage.input_tokens} in / {usage.output_tokens} out tokens"
    return text + (f" ({usage.reasoning_tokens} reasoning)" if usage.reasoning_tokens else "")


def _replayed_from() -> str | None:
    from .._cassette import replayed_from  # here, not at import: loading the magics stays cheap

    return replayed_from()


@dataclass
class Stats:
    """What one call cost: shown in footers and column headers, kept in metadata."""

    model: str
    _: KW_ONLY
    latency: float | None = None
    usage: Usage | None = None
    cost: float | None = None
    turns_sent: int | None = None
    extra: list[str] = field(default_factory=list)
    # Read where the call was made, so every footer of a replayed answer says so.
    replayed: str | None = field(default_factory=_replayed_from)

    def line(self) -> str:
        """One short line such as ``gpt-5 · 1.20 s · 10 in / 20 out tokens · ≈$0.001 est.``."""
        parts = [self.model, seconds(self.latency), tokens(self.usage), money(self.cost)]
        if self.turns_sent is not None:
            parts.insert(1, _turns(self.turns_sent))
        mark = ["replayed"] if self.replayed else []
        return " · ".join(p for p in [*parts, *self.extra, *mark] if p)


def _turns(n: int) -> str:
    return "no earlier turns sent" if n == 0 else f"{n} earlier turn{'s' * (n != 1)} sent"


def provenance(**fields: Any) -> dict[str, Any]:
    """Output metadata: model, parameters, usage, latency, task id, time; never the key."""
    fields.setdefault("time", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    return {PROVENANCE: redact_tree({k: v for k, v in fields.items() if v is not None})}


# --- bundles --------------------------------------------------------------------------------


def chat_bundle(
    text: str,
    footer: str = "",
    *,
    pending: str = "",
    render: Callable[[str], str] = inert_markdown,
) -> Bundle:
    """An answer as inert ``text/markdown`` with a small footer, plus ``text/plain``.

    ``render`` makes the Markdown (a stream's `StreamMarkdown` renders only its new part).
    """
    text, footer, pending = redact(text), redact(footer), redact(pending)
    markdown = render(text) if text else ""
    plain = text
    if pending:
        markdown += ("\n\n" if markdown else "") + f"*{md_literal(pending)}*"
        plain += ("\n\n" if plain else "") + pending
    if footer:
        markdown += ("\n\n" if markdown else "") + f"<sub>{md_literal(footer)}</sub>"
        plain += ("\n\n" if plain else "") + f"[{footer}]"
    return {"text/markdown": markdown or " ", "text/plain": plain}


def note_bundle(text: str, *, strong: bool = False) -> Bundle:
    """A short message (inert Markdown and plain text)."""
    text = redact(text)
    body = md_literal(text)
    return {"text/markdown": f"**{body}**" if strong else body, "text/plain": text}


def banner_bundle(detail: str) -> Bundle:
    """The visible "answers are simulated" banner."""
    detail = redact(detail)
    plain = f"⚠ {SIMULATED_BANNER.capitalize()}: {detail}"
    markdown = f"> ⚠️ **{SIMULATED_BANNER.capitalize()}** — {md_literal(detail)}"
    return {"text/markdown": markdown, "text/plain": plain}


def table_bundle(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> Bundle:
    """A small escaped HTML table with an aligned plain-text twin."""
    headers, title = [redact(str(h)) for h in headers], redact(title)
    cells = [[redact(str(c)) for c in row] for row in rows]
    return {
        "text/html": _html_table(headers, cells, title),
        "text/plain": _plain_table(headers, cells, title),
    }


def _html_table(headers: Sequence[str], cells: list[list[str]], title: str = "") -> str:
    """The HTML of `table_bundle` (texts already redacted; every one is escaped here)."""
    head = "".join(f"<th style='text-align:left'>{html_text(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{html_text(c)}</td>" for c in row) + "</tr>"
        for row in cells
    )
    caption = (
        f"<caption style='text-align:left'><b>{html_text(title)}</b></caption>" if title else ""
    )
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plain_table(headers: Sequence[str], rows: list[list[str]], title: str) -> str:
    widths = [
        max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(h)
        for i, h in enumerate(headers)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(([title] if title else []) + [line.rstrip() for line in lines])


# --- structured answers -----------------------------------------------------------------


def plain_data(value: Any) -> Any:
    """A parsed answer as dicts, lists and scalars (dataclass and pydantic instances opened)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):  # a pydantic model instance
        return plain_data(dump(mode="json"))
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain_data(v) for v in value]
    return value


def data_table(value: Any) -> tuple[list[str], list[list[str]]]:
    """Headers and rows showing a parsed answer: an object as field and value, a list of
    objects as one row each (a column per key), anything else as one column of values."""
    data = plain_data(value)
    if isinstance(data, dict):
        return ["field", "value"], [[key, _cell(v)] for key, v in data.items()]
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        headers = list(dict.fromkeys(key for row in data for key in row))
        return headers, [[_cell(row.get(h, "")) for h in headers] for row in data]
    return ["value"], [[_cell(v)] for v in (data if isinstance(data, list) else [data])]


def _cell(value: Any) -> str:
    """One table cell: text as it is, nested parts as compact JSON, other values as Python."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def data_bundle(value: Any, footer: str = "", title: str = "") -> Bundle:
    """A structured answer as an escaped table with the answer's footer (HTML and plain)."""
    headers, rows = data_table(value)
    bundle = table_bundle(headers, rows, title)
    if footer:
        footer = redact(footer)
        bundle["text/html"] += f"<sub>{html_text(footer)}</sub>"
        bundle["text/plain"] += f"\n\n[{footer}]"
    return bundle


def _data_parts(value: Any) -> tuple[list[str], list[list[str]]]:
    """`data_table`, redacted (for comparison columns)."""
    headers, rows = data_table(value)
    return [redact(h) for h in headers], [[redact(c) for c in row] for row in rows]


# --- comparison grids ----------------------------------------------------------------------


@dataclass
class Column:
    """One model's cell in a comparison: streamed text, then stats or an error."""

    model: str
    text: str = ""
    stats: Stats | None = None
    error: str | None = None
    images: list[tuple[Image, str]] = field(default_factory=list)  # (image, saved path)
    stopped: str | None = None  # why a running column will not finish (e.g. "interrupted")
    data: Any = None  # a structured answer's object, shown as a table instead of the text

    @property
    def status(self) -> str:
        """``error``, ``done``, ``stopped`` or ``running``."""
        if self.error or self.stats:
            return "error" if self.error else "done"
        return "stopped" if self.stopped else "running"

    def stop(self, reason: str) -> None:
        """Mark a column that is still running as cut short (finished ones stay as they are)."""
        if self.status == "running":
            self.stopped = reason

    def provenance(self) -> dict[str, Any]:
        """This column's part of the comparison's output metadata."""
        stats = self.stats or Stats(self.model)
        record: dict[str, Any] = {"model": self.model, "latency": stats.latency}
        record["usage"] = stats.usage
        record |= {"estimated_cost_usd": stats.cost, "error": self.error, "stopped": self.stopped}
        record["files"] = [p for _, p in self.images] or None
        return {k: v for k, v in record.items() if v is not None}

    def header(self) -> str:
        """The line under the model name."""
        if self.error:
            return "failed"
        if self.stats:
            return self.stats.line().removeprefix(self.model).lstrip(" ·")
        return f"stopped: {self.stopped}" if self.stopped else "running…"


_CELL = "vertical-align:top;text-align:left;padding:6px 10px;border:1px solid #8884"
_PRE = "white-space:pre-wrap;word-break:break-word;margin:0;font-size:0.92em;background:none"


def grid_bundle(columns: Sequence[Column]) -> Bundle:
    """Side-by-side columns as an escaped HTML table, plus a plain-text version."""
    plain = grid_plain(columns)
    columns = [_redacted(c) for c in columns]
    width = f"{100 // max(1, len(columns))}%"
    head = "".join(
        f"<th style='{_CELL};width:{width}'>{html_text(c.model)}<br>"
        f"<small style='font-weight:normal'>{html_text(redact(c.header()))}</small></th>"
        for c in columns
    )
    body = "".join(f"<td style='{_CELL}'>{_column_body(c)}</td>" for c in columns)
    style = "table-layout:fixed;width:100%;border-collapse:collapse"
    table = f"<table style='{style}'><tr>{head}</tr><tr>{body}</tr></table>"
    return {"text/html": table, "text/plain": plain}


def _whole_words(text: str) -> str:
    """``text`` up to its last whitespace: a secret (which has none) is either whole or absent."""
    return text[: max(text.rfind(c) for c in " \t\n") + 1]


def _redacted(column: Column) -> Column:
    """A copy whose texts are redacted (pictures are left as they are).

    Until a column is done its last word may be a key still arriving, so it is left out.
    """
    text = column.text if column.status == "done" else _whole_words(column.text)
    return replace(
        column,
        model=redact(column.model),
        text=redact(text),
        error=redact(column.error) if column.error else None,
        images=[(image, redact(path)) for image, path in column.images],
    )


_COLUMN = "font-size:0.92em;line-height:1.45;overflow-wrap:anywhere"
_CODE_SPAN = re.compile(r"`([^`]+)`")
_EMPHASIS = (  # emphasis must start and end on a character that is not space or "*"
    (re.compile(r"\*\*([^\s*](?:.*?[^\s*])?)\*\*"), r"<b>\1</b>"),
    (re.compile(r"(?<![\w*])\*([^\s*](?:.*?[^\s*])?)\*(?![\w*])"), r"<i>\1</i>"),
)
_HELD = re.compile("\ue000(\\d+)\ue001")  # a placeholder for markup set aside


def markdown_html(text: str) -> str:
    """A small, safe Markdown-to-HTML for comparison columns (no raw HTML, no links).

    Everything is escaped first; the only markup added is tags without attributes
    (paragraphs, headings, lists, code blocks, code, bold, italic) and the dollar-sign
    spans of `html_text`, so a reply can never bring its own HTML, script or link along.
    Maths follows the rule in `_math`, as in single answers.
    """
    blocks: list[str] = []
    lines = re.sub("[\ue000\ue001]", "\ufffd", text).split("\n")  # placeholders are ours
    i = 0
    while i < len(lines):
        i = _md_block(lines, i, blocks)
    return "".join(blocks)


def _md_block(lines: list[str], i: int, out: list[str]) -> int:
    """Render the block that starts at line ``i``; return the index after it."""
    line = lines[i]
    if line.lstrip().startswith(("```", "~~~")):
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip()[:3] in ("```", "~~~")),
            len(lines),
        )
        code = html.escape("\n".join(lines[i + 1 : end]))
        out.append(f"<pre style='{_PRE}'><code>{code}</code></pre>")
        return end + 1
    heading = re.match(r"^(#{1,6})\s+(.*)$", line)
    if heading:
        out.append(f"<b>{_md_inline(heading.group(2))}</b><br>")
        return i + 1
    if re.match(r"^\s*([-*+]|\d+[.)])\s+", line):
        items = []
        while i < len(lines) and re.match(r"^\s*([-*+]|\d+[.)])\s+", lines[i]):
            items.append(
                "<li>" + _md_inline(re.sub(r"^\s*([-*+]|\d+[.)])\s+", "", lines[i])) + "</li>"
            )
            i += 1
        tag = "ol" if re.match(r"^\s*\d", lines[i - len(items)]) else "ul"
        out.append(f"<{tag} style='margin:0.3em 0;padding-left:1.4em'>{''.join(items)}</{tag}>")
        return i
    para = []
    while i < len(lines) and lines[i].strip() and not _md_starts_block(lines[i]):
        para.append(lines[i])
        i += 1
    if para:  # one paragraph at a time, so that maths may run over its lines
        body = _md_inline("\n".join(para)).replace("\n", "<br>")
        out.append(f"<p style='margin:0.3em 0'>{body}</p>")
        return i
    return i + 1


def _md_starts_block(line: str) -> bool:
    return bool(re.match(r"^\s*(```|~~~|#{1,6}\s|[-*+]\s|\d+[.)]\s)", line))


def _md_inline(text: str) -> str:
    """Code spans and maths set aside, the rest escaped, then bold and italic."""
    held: list[str] = []
    code = {m.start(): m.end() for m in _CODE_SPAN.finditer(text)}
    pieces = [(a, b, f"<code>{html.escape(text[a + 1 : b - 1])}</code>") for a, b in code.items()]
    pieces += [(p.start, p.end, _math_html(text, p)) for p in find_math(text, code)]
    out, last = [], 0
    for start, end, markup in sorted(pieces):
        held.append(markup)
        out += [html_text(text[last:start]), f"\ue000{len(held) - 1}\ue001"]
        last = end
    line = "".join(out) + html_text(text[last:])
    for pattern, replacement in _EMPHASIS:
        line = pattern.sub(replacement, line)
    return _HELD.sub(lambda m: held[int(m.group(1))], line)


def _column_body(column: Column) -> str:
    parts = [f"<div style='{_COLUMN}'>{markdown_html(column.text)}</div>"] if column.text else []
    if column.data is not None:
        parts = [f"<div style='{_COLUMN}'>{_html_table(*_data_parts(column.data))}</div>"]
    for image, path in column.images:
        parts.append(_column_image(image, path or column.model))
    if column.error:
        parts.append(f"<pre style='{_PRE};color:#c33'>⚠ {html.escape(column.error)}</pre>")
    if not parts:
        parts.append("<i>waiting…</i>")
    return "".join(parts)


def _column_image(image: Image, alt: str) -> str:
    data = image.data
    if image.mime == SVG:
        svg = inert_svg(data)
        if svg is None:
            return f"<i>{html_text(alt)}: not an SVG picture we can show safely</i>"
        data = svg.encode()
    alt = html.escape(alt, quote=True)
    width = display_width(image)
    size = f" width='{width}'" if width else ""
    return (
        f"<img src='data:{image.mime};base64,{_b64(data)}' alt='{alt}'{size} "
        "style='max-width:100%;height:auto'>"
    )


def grid_plain(columns: Sequence[Column]) -> str:
    """The comparison as plain text sections, one per model."""
    sections = []
    for c in map(_redacted, columns):
        text = c.text if c.data is None else _plain_table(*_data_parts(c.data), "")
        body = text + "".join(f"\n[image saved to {p}]" for _, p in c.images)
        if c.error:
            body += ("\n" if body else "") + f"⚠ {c.error}"
        sections.append(f"── {c.model} · {redact(c.header())} ──\n{body.strip() or '…'}")
    return "\n\n".join(sections)


# --- media ---------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_bundle(image: Image, path: str, caption: str = "") -> tuple[Bundle, dict[str, Any]]:
    """One picture as ``image/*`` data with a text fallback naming the saved file.

    A large picture is shown at most `PICTURE_LIMIT` pixels wide and tall (the ``width``
    the frontend reads from the metadata).  An SVG is sent as its text (frontends render
    ``image/svg+xml`` from text, not base64), rebuilt by `_svg.inert_svg` so that it runs
    and fetches nothing.
    """
    plain = f"[image {image.mime}, {len(image.data):,} bytes, saved to {redact(path)}]"
    if caption:
        plain = f"{redact(caption)}\n{plain}"
    if image.mime != SVG:
        width = display_width(image)
        shown = {"path": path} | ({"width": width} if width else {})
        return {image.mime: _b64(image.data), "text/plain": plain}, {image.mime: shown}
    svg = inert_svg(image.data)
    if svg is None:
        return {
            "text/plain": f"{plain}\n(not shown: it is not an SVG picture we can show safely)"
        }, {}
    return {SVG: svg, "text/plain": plain}, {SVG: {"path": path}}


def picture_notes(pictures: Sequence[tuple[Image, str]], *, paths: bool = True) -> list[str]:
    """Footer facts about saved pictures: their sizes, and where they were saved."""
    sizes = dict.fromkeys(
        f"{w}×{h}" for w, h in filter(None, (pixel_size(i.data) for i, _ in pictures))
    )
    saved = [f"saved to {', '.join(p for _, p in pictures)}"] if paths and pictures else []
    return [", ".join(sizes), *saved]


def display_width(image: Image) -> int | None:
    """The width to show ``image`` at so no side exceeds `PICTURE_LIMIT` (None: as it is)."""
    size = pixel_size(image.data)
    if size is None or max(size) <= PICTURE_LIMIT:
        return None
    return max(1, round(size[0] * PICTURE_LIMIT / max(size)))


def pixel_size(data: bytes) -> tuple[int, int] | None:
    """Width and height read from a PNG, GIF, JPEG or WebP header (None when unknown)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return _int(data, 16, 4), _int(data, 20, 4)
    if data[:4] == b"GIF8":
        return _int(data, 6, 2, "little"), _int(data, 8, 2, "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return _jpeg_size(data) if data[:2] == b"\xff\xd8" else None


def _int(data: bytes, at: int, length: int, order: Literal["big", "little"] = "big") -> int:
    return int.from_bytes(data[at : at + length], order)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        return _int(data, 26, 2, "little") & 0x3FFF, _int(data, 28, 2, "little") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = _int(data, 21, 4, "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return _int(data, 24, 3, "little") + 1, _int(data, 27, 3, "little") + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            return _int(data, i + 7, 2), _int(data, i + 5, 2)
        i += 2 + _int(data, i + 2, 2)
    return None


def audio_bundle(wav: bytes, path: str, relative_src: str, caption: str = "") -> Bundle:
    """An ``<audio controls>`` player (inline WAV when small, else the saved file)."""
    caption = redact(caption)
    src = f"data:audio/wav;base64,{_b64(wav)}" if len(wav) <= AUDIO_EMBED_LIMIT else relative_src
    label = f"<div><small>{html_text(caption)}</small></div>" if caption else ""
    player = f"<audio controls src='{html.escape(src, quote=True)}'></audio>{label}"
    plain = f"[audio {len(wav):,} bytes ({wav_seconds(wav):.1f} s), saved to {path}]"
    return {"text/html": player, "text/plain": plain + (f"\n{caption}" if caption else "")}


def wav_seconds(wav: bytes) -> float:
    """Duration of a PCM WAV from its header (0 when unknown)."""
    if len(wav) < 44 or wav[:4] != b"RIFF":
        return 0.0
    byte_rate = int.from_bytes(wav[28:32], "little")
    return (len(wav) - 44) / byte_rate if byte_rate else 0.0


def transcript_bundle(text: str, footer: str) -> Bundle:
    """A transcript, shown as an answer is: inert Markdown and plain text, with a footer."""
    return chat_bundle(text, footer)


# --- where bundles go ------------------------------------------------------------------------


class Screen:
    """Where outputs go: the shell's display publisher (a terminal prints their text).

    Every output of the package goes through one: the magics' `Screen`, the task cards,
    the picker's use log and (an `ipywidgets.Output` as its publisher) the widget panels.
    """

    def __init__(self, shell: Any) -> None:
        self._shell = shell

    @property
    def rich(self) -> bool:
        """True where outputs render as mime bundles and update in place (a kernel)."""
        publish = getattr(type(self._shell.display_pub), "publish", None)
        return publish is not DisplayPublisher.publish  # the base class only prints text

    def show(
        self,
        data: Bundle,
        metadata: Mapping[str, Any] | None = None,
        *,
        display_id: str | None = None,
    ) -> None:
        """Publish a bundle (a new output)."""
        self._publish(data, metadata, display_id, update=False)

    def update(self, data: Bundle, metadata: Mapping[str, Any] | None, display_id: str) -> None:
        """Rewrite the output published under ``display_id`` in place."""
        self._publish(data, metadata, display_id, update=True)

    def place(
        self, data: Bundle, metadata: Mapping[str, Any] | None = None, display_id: str = ""
    ) -> Shown:
        """Show a bundle that can be rewritten later, from any thread, in this cell."""
        shown = Shown(self, display_id or uuid.uuid4().hex)
        shown.show(data, metadata)
        return shown

    def _publish(
        self, data: Bundle, metadata: Mapping[str, Any] | None, display_id: str | None, update: bool
    ) -> None:
        transient = {"display_id": display_id} if display_id else None
        self._shell.display_pub.publish(
            data=data, metadata=dict(metadata or {}), transient=transient, update=update
        )

    def write(self, text: str) -> None:
        """Plain text straight to stdout (terminal streaming)."""
        sys.stdout.write(text)
        sys.stdout.flush()


class PlainScreen(Screen):
    """Plain Python, no IPython: every output prints its text."""

    def __init__(self) -> None:
        super().__init__(None)

    @property
    def rich(self) -> bool:
        """Never: a printed line cannot change."""
        return False

    def _publish(
        self, data: Bundle, metadata: Mapping[str, Any] | None, display_id: str | None, update: bool
    ) -> None:
        print(data["text/plain"], flush=True)


def screen_here() -> Screen:
    """The running IPython's screen (for outputs made outside a magic), else plain printing."""
    from IPython.core.interactiveshell import InteractiveShell

    if not InteractiveShell.initialized():
        return PlainScreen()
    return Screen(InteractiveShell.instance())


class Shown:
    """One output that can be rewritten: its screen, its display id and the cell it is in.

    ipykernel 7 reads an output's parent header from a ContextVar and falls back to the
    *latest* cell, so an update sent later (from the runtime loop, a widget callback, after
    other cells ran) runs in a copy of the showing cell's context and lands in that cell.
    """

    def __init__(self, screen: Screen, display_id: str) -> None:
        self.screen = screen
        self.display_id = display_id
        self.context = contextvars.copy_context()

    def show(self, data: Bundle, metadata: Mapping[str, Any] | None = None) -> None:
        """Publish the output (a new one, in the current cell)."""
        self.screen.show(data, metadata, display_id=self.display_id)

    def update(self, data: Bundle, metadata: Mapping[str, Any] | None = None) -> None:
        """Rewrite the output in place, in the cell it was shown in."""
        self.context.copy().run(self.screen.update, data, metadata, self.display_id)


class Live:
    """One output rewritten in place, at most once per ``interval`` (the last one always).

    With a ``budget``, updates also keep the bytes they send in proportion to what they
    show: one may go only while everything sent so far plus it stays within ``budget``
    times its own size (or once ``max_interval`` has passed).  A growing text is then sent
    ever less often, so its updates add up to a bounded multiple of the final text, however
    long it gets (a Jupyter update always carries the whole output again).
    """

    def __init__(
        self,
        screen: Screen,
        data: Bundle,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        budget: float | None = None,
        max_interval: float = math.inf,
    ) -> None:
        self.screen, self.interval, self._clock = screen, interval, clock
        self.budget, self.max_interval = budget, max(interval, max_interval)
        self.output = screen.place(data)
        self.display_id = self.output.display_id
        self.updates = 0
        self.sent = 0  # characters of every bundle sent so far
        self._last = clock()

    def due_in(self, size: int = 0) -> float:
        """Seconds until an update of about ``size`` characters may go (0: it may go now)."""
        waited = self._clock() - self._last
        if waited < self.interval:
            return self.interval - waited
        if self.budget is None or self.sent + size <= self.budget * max(size, _BUDGET_FLOOR):
            return 0.0
        # Over budget: only more text (or max_interval) makes it due; look again in a while.
        return max(0.0, min(self.interval, self.max_interval - waited))

    def update(
        self, data: Bundle, metadata: Mapping[str, Any] | None = None, *, final: bool = False
    ) -> bool:
        """Send ``data`` if it is due (or ``final``); True when sent."""
        if not final and self.due_in(bundle_size(data)) > 0:
            return False
        self.send(data, metadata)
        return True

    def send(self, data: Bundle, metadata: Mapping[str, Any] | None = None) -> None:
        """Send ``data`` now, due or not."""
        self.output.update(data, metadata)
        self._last = self._clock()
        self.sent += bundle_size(data)
        self.updates += 1


def bundle_size(data: Bundle) -> int:
    """Characters of a bundle's text (what an update sends, give or take its envelope)."""
    return sum(len(v) for v in data.values() if isinstance(v, str))


_BUDGET_FLOOR = 2048  # characters: a budget is never reckoned on a smaller bundle
STREAM_BUDGET = 7.0  # a streamed answer's updates send at most ~7x its final bundle ...
STREAM_MAX_INTERVAL = 5.0  # ... unless the answer would go this long without an update


class ChatView:
    """A streamed answer: live Markdown in a kernel, raw deltas in a terminal.

    Deltas are only collected as they come; the Markdown is rendered when an update is
    actually sent: at once for the first words (the placeholder's interval is not waited
    out), then at most every ``interval`` and within `STREAM_BUDGET`.
    """

    def __init__(
        self,
        screen: Screen,
        model: str,
        interval: float,
        *,
        stream: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.screen, self.model = screen, model
        self._parts: list[str] = []  # the text so far, joined only when it is needed
        self._size = 0
        self._thinking = 0
        self.shown = False  # whether any of the answer's words have been sent yet
        self._sent = (0, 0)  # (text, reasoning) characters when the last update went
        self._holding = False  # inside `batch`: deltas are gathered, not yet rendered
        self._markdown = StreamMarkdown()  # live updates; the final output renders in one go
        self.live: Live | None = None
        if screen.rich and stream:
            waiting = chat_bundle("", pending=f"{model} is thinking…")
            self.live = Live(
                screen, waiting, interval, clock,
                budget=STREAM_BUDGET, max_interval=STREAM_MAX_INTERVAL,
            )  # fmt: skip
        self._stream = stream
        self._written = 0  # how much of ``text`` a terminal has been sent

    @property
    def text(self) -> str:
        """The answer so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @text.setter
    def text(self, value: str) -> None:
        self._parts, self._size = [value], len(value)

    def _write_words(self, *, final: bool = False) -> None:
        """Terminal: send whole words only, redacted, so a key split across deltas is caught."""
        tail = self.text[self._written :]
        words = tail if final else _whole_words(tail)
        if words:
            self.screen.write(redact(words))
            self._written += len(words)

    def feed(self, text: str, reasoning: str = "") -> None:
        """Add a delta; the frontend gets it once an update is due (see the class doc)."""
        if text:
            self._parts.append(text)
            self._size += len(text)
        self._thinking += len(reasoning)
        if self.live is not None:
            if not self._holding:
                self.refresh()
        elif self._stream and text:
            self._write_words()

    @contextlib.contextmanager
    def batch(self, *, send: bool = True) -> Iterator[None]:
        """Deltas fed inside go out together, in one render (each alone when unthrottled).

        ``send=False``: the batch itself sends nothing (the final output follows at once).
        """
        self._holding = self.live is not None and self.live.interval > 0
        try:
            yield
        finally:
            self._holding = False
        if send:
            self.refresh()

    def due_in(self) -> float:
        """Seconds until the next live update may go (0 while it may go now)."""
        if self.live is None:
            return math.inf
        return self.live.due_in(2 * self._size)  # the text goes as Markdown and as plain text

    def wait(self) -> tuple[float | None, bool]:
        """How a reader should wait for more: (at most this long, wake at the next delta)."""
        if self.live is None or not self._unsent():
            return None, True  # a terminal shows every delta; with nothing held back, wait
        return self.due_in(), not self.shown

    def _unsent(self) -> bool:
        return (self._size, self._thinking) != self._sent

    def refresh(self) -> None:
        """Render and send what has arrived if an update is due; otherwise do nothing."""
        if self.live is None or not self._unsent():
            return
        first = not self.shown and _whole_words(self.text) != ""
        if not first and self.due_in() > 0:
            return
        words = _whole_words(self.text)  # a key still arriving is not shown in part
        self.live.send(chat_bundle(words, pending=self._pending(words), render=self._markdown))
        self.shown = self.shown or bool(words)
        self._sent = (self._size, self._thinking)

    def _pending(self, shown: str) -> str:
        if shown:
            return ""
        if self._thinking:
            return f"{self.model} is thinking… ({self._thinking:,} characters of reasoning)"
        return f"{self.model} is thinking…"

    def finish(
        self, text: str, footer: str, metadata: Mapping[str, Any], bundle: Bundle | None = None
    ) -> None:
        """The final output: whole text, footer and provenance (or ``bundle``, which shows
        a structured answer's object with its footer, in place of the text)."""
        self.text = text
        final = bundle or chat_bundle(text, footer)
        if self.live is not None:
            self.live.update(final, metadata, final=True)
        elif self._stream and self.screen.rich is False:
            self._write_words(final=True)
            ending = f"\n{final['text/plain']}\n" if bundle else f"[{redact(footer)}]\n"
            self.screen.write(("\n" if text and not bundle else "") + ending)
        else:
            self.screen.show(final, metadata)

    def fail(self, reason: str) -> None:
        """Keep what arrived, marked as cut short (the error itself is raised by the caller)."""
        words = _whole_words(self.text)  # a cut-off last word may be part of a key
        if self.live is not None:
            self.live.update(chat_bundle(words, pending=f"stopped: {reason}"), final=True)
        elif self._stream and self.text:
            self._write_words()
            self.screen.write("\n")
