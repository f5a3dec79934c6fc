"""Dollar signs are text, maths a model means renders: single answers, columns, notebooks.

Each answer goes through the output it would get (`chat_bundle`'s Markdown, a comparison
column's HTML) and then through what shows it: JupyterLab's maths finder around two
Markdown parsers (mistune, markdown-it), nbconvert's maths-aware mistune (HTML export,
nbviewer), and MathJax over the column's HTML (`jupyter_maths` reproduces those steps).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import pytest
from jupyter_maths import Typeset, mathjax, typeset

from tokenhot_jupyter._math import DOLLAR, find_math
from tokenhot_jupyter._notebook import _display as D


class Answer(NamedTuple):
    text: str
    maths: list[str]  # what MathJax typesets, in order
    dollars: int  # dollar signs a reader sees as text
    shown: str = ""  # a piece of the visible text


ANSWERS = [
    Answer(
        "A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. "
        "How much does the ball cost?", [], 2, "cost $1.10 in total. The bat costs $1.00 more",
    ),
    Answer("The ball costs $0.05 and the bat costs $1.05.", [], 2, "costs $0.05 and"),
    Answer("Expect to pay $5-$10 per person, or $20–$30 with drinks.", [], 4, "$5-$10 per"),
    Answer("Salaries range from $50,000 to $75,000 a year.", [], 2, "$50,000 to $75,000"),
    Answer("It costs $5 (or 5$ in Quebec).", [], 2, "$5 (or 5$ in"),
    Answer("Tickets cost US$12 for adults and A$8 for kids.", [], 2, "US$12"),
    Answer("Budget **$1.10** versus **$1.00**.", [], 2, "$1.10"),
    Answer("Escaped as Markdown allows: \\$5 and \\$6.", [], 2, "allows: $5 and $6."),
    Answer("Price tiers: $ / $$ / $$$", [], 6, "$ / $$ / $$$"),
    Answer("Add it to your path with `export PATH=$HOME/bin:$PATH`.", [], 2, "PATH=$HOME/bin"),
    Answer("Your home folder is $HOME, and $PATH lists where the shell looks.", [], 2),
    Answer("Prepend it: $PATH:$HOME/bin", [], 2, "$PATH:$HOME/bin"),
    Answer("`echo $HOME` prints it and `$?` is the exit status of echo $0.", [], 3),
    Answer("In Perl, $x and $y are scalars; PHP writes $total = $price * $qty;", [], 5),
    Answer("jQuery: $('#menu').hide() or $.ajax(url)", [], 2, "$('#menu')"),
    Answer("The regex `^a$` matches only a; ^a$|^b$ matches a or b.", [], 3, "^a$|^b$"),
    Answer("The area of a circle is $\\pi r^2$.", ["\\pi r^2"], 0),
    Answer("Let $f(x) = x^2$; then $f'(x) = 2x$.", ["f(x) = x^2", "f'(x) = 2x"], 0),
    Answer("So $2 + 2 = 4$, and the $n$th term is $a_n$.", ["2 + 2 = 4", "n", "a_n"], 0),
    Answer(
        "The sum is\n\n$$\n\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}\n$$\n\nfor every $n \\ge 1$.",
        ["\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}", "n \\ge 1"], 0,
    ),
    Answer("By Pythagoras, \\(a^2 + b^2 = c^2\\).", ["a^2 + b^2 = c^2"], 0),
    Answer("\\[\n\\int_0^1 x^2\\,dx = \\frac{1}{3}\n\\]", ["\\int_0^1 x^2\\,dx = \\frac{1}{3}"], 0),
    Answer(
        "One widget costs $3; buy $n$ of them and you pay $3n$, so four cost $12.",
        ["n", "3n"], 2, "costs $3; buy",
    ),
    Answer(
        "Revenue grew from $1.2M to $3.4M, a factor of $\\frac{3.4}{1.2} \\approx 2.8$.",
        ["\\frac{3.4}{1.2} \\approx 2.8"], 2, "from $1.2M to $3.4M",
    ),
    Answer(
        "```bash\necho \"$HOME and $PATH\"\n```\nIt costs $5 and takes $x$ hours.",
        ["x"], 3, "costs $5 and",
    ),
    Answer("| Plan | Price |\n|---|---|\n| Basic | $5/mo |\n| Pro | $15/mo |", [], 2),
]  # fmt: skip


def _mistune(markdown: str) -> str:
    mistune = pytest.importorskip("mistune")
    render = mistune.create_markdown(escape=False, plugins=["strikethrough", "table", "url"])
    return str(render(markdown))


def _markdown_it(markdown: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return str(markdown_it.MarkdownIt("commonmark").enable("table").render(markdown))


def _nbconvert(markdown: str) -> str:
    pytest.importorskip("nbconvert")
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return str(markdown2html_mistune(markdown))


VIEWS = {  # how each place shows an answer
    "jupyterlab+mistune": lambda text: typeset(D.chat_bundle(text)["text/markdown"], _mistune),
    "jupyterlab+markdown-it": lambda text: typeset(
        D.chat_bundle(text)["text/markdown"], _markdown_it
    ),
    "nbconvert": lambda text: mathjax(_nbconvert(D.chat_bundle(text)["text/markdown"])),
    "comparison column": lambda text: mathjax(D.markdown_html(text)),
}


def _normal(maths: list[str]) -> list[str]:
    return [re.sub(r"\s+", " ", m).strip() for m in maths]


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("answer", ANSWERS, ids=[a.text[:40] for a in ANSWERS])
def test_dollars_are_text_and_maths_renders(answer: Answer, view: str) -> None:
    seen: Typeset = VIEWS[view](answer.text)
    assert _normal(seen.maths) == _normal(answer.maths), seen
    assert seen.dollars == answer.dollars, seen
    assert answer.shown in seen.text, seen


@pytest.mark.parametrize("view", VIEWS)
def test_the_old_way_turned_prices_into_maths(view: str) -> None:
    """The check can fail: Markdown with plain dollars (the output before) typesets them."""
    price = "A bat and a ball cost $1.10. The bat costs $1.00 more."
    raw = {
        "jupyterlab+mistune": lambda: typeset(price, _mistune),
        "jupyterlab+markdown-it": lambda: typeset(price, _markdown_it),
        "nbconvert": lambda: mathjax(_nbconvert(price)),
        "comparison column": lambda: mathjax(price),
    }[view]()
    assert raw.maths == ["1.10. The bat costs"]


def test_less_than_in_maths_reaches_mathjax_as_a_relation() -> None:
    seen = typeset(D.inert_markdown("Is $a<b$ when $a = 1$?"), _markdown_it)
    assert seen.maths == ["a\\lt b", "a = 1"]
    assert mathjax(D.markdown_html("Is $a<b$?")).maths == ["a<b"]


def test_alignment_ampersands_stay_in_an_environment() -> None:
    source = "\\begin{aligned} a &= b \\\\ c &= d \\end{aligned}"
    seen = typeset(D.inert_markdown(source), _markdown_it)
    assert seen.maths == [source]


def test_maths_cannot_make_the_browser_fetch() -> None:
    # JupyterLab's MathJax loaded this cursor at once (seen in headless Chromium).
    source = "$\\style{cursor:url(https://evil.example/c.png),auto}{x}$ and $\\bbox[url(x)]{y}$"
    for markdown in (D.inert_markdown(source), D.markdown_html(source)):
        assert not re.search(r"(?i)url\s*\(", markdown.replace("url\\,", "")), markdown


def test_a_dollar_in_a_link_stays_in_the_address() -> None:
    markdown = D.inert_markdown("[pay](https://shop.example/?p=$5) now, $5 off")
    assert "(https://shop.example/?p=%245)" in markdown and "now, " + DOLLAR in markdown


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("$x$", ["$"]),
        ("$ x$", ["text", "text"]),  # a space after the opener
        ("$x $", ["text", "text"]),  # a space before the closer
        ("$x$5", ["text", "text"]),  # a digit after the closer
        ("$x$y", ["text", "text"]),  # a letter after the closer
        ("$k$s and $n$-th", ["$", "$"]),
        ("a$x$", ["text", "text"]),  # a letter before the opener
        ("$x{$", ["text", "text"]),  # braces must balance
        ("$$\n\n$$", ["text"] * 4),  # a blank line ends maths
        ("\\(x", ["defuse"]),
        ("\\begin{cases} no end", ["defuse"]),
        ("`$x$` $y$", ["$"]),
    ],
)
def test_the_rule(text: str, kinds: list[str]) -> None:
    code = {m.start(): m.end() for m in re.finditer(r"`[^`]*`", text)}
    assert [p.kind for p in find_math(text, code)] == kinds
