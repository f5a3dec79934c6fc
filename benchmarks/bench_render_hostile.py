"""Seconds to make replies inert, for hostile shapes at two sizes: the time must grow linearly.

A streamed answer is rendered again at every update, so a reply built to make the maths,
picture or link finders rescan the rest of the text would freeze the kernel.  Each shape
is rendered at ``--size`` characters and at twice that, as single-answer Markdown and as a
comparison column; the last column is the ratio (about 2 when linear, 4 when quadratic).

    python benchmarks/bench_render_hostile.py [--size 60000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from tokenhot_jupyter._notebook import _display as D

SHAPES: dict[str, str] = {
    "unclosed \\(": "\\( ",
    "unbalanced \\( {": "\\( { ",
    "lone $$": "$$ a ",
    "lone $a": "$a ",
    "unbalanced ${": "${ ",
    "unclosed \\begin": "\\begin{x} ",
    "nested ![": "![",
    "unsafe links [a](:": "[a](:",
    "backticks": "`a ",
    "prices and maths": "It costs $0.05, so $x + (x + 1) = 1.10$ gives $x = 0.05$. ",
}


def seconds(render: Callable[[str], str], text: str) -> float:
    """The best of three timings of ``render(text)``."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        render(text)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=60_000)
    args = parser.parse_args()
    print(f"{'shape':22} {'renderer':9} {args.size:>9,} ch {2 * args.size:>9,} ch  ratio")
    for name, unit in SHAPES.items():
        text = unit * (args.size // len(unit))
        for label, render in (("markdown", D.inert_markdown), ("column", D.markdown_html)):
            one, two = seconds(render, text), seconds(render, text * 2)
            print(f"{name:22} {label:9} {one:10.3f} s {two:10.3f} s  {two / one:5.1f}")


if __name__ == "__main__":
    main()
