"""A streamed ``%%chat`` answer in a real kernel, against two anchors measured in the same run.

One kernel, one simulator (in a process of its own, paced at ``--token-delay`` seconds per
piece, answering ``Stream N words`` with an N-word Markdown answer).  For each size the
three cells run in turn, in a rotating order, ``--runs`` times:

* **stream alone**: plain httpx reads the same stream in the kernel and discards it; its cell
  time is the simulator's own stream duration when nothing slows the reader.
* **openai + display per token**: the openai SDK streams and a ``display`` handle is updated
  with ``Markdown`` of the text so far after every token (the naive notebook loop).
* **%%chat**: ours.

Per cell: wall time (request sent to reply), kernel CPU (its process, psutil), IOPub
messages and bytes (every frame, read raw), and the first-text delay: when the first
answer word reached us over IOPub, after the simulator sent it.  Medians with min–max.

    python benchmarks/bench_stream_messages.py [--sizes 500,2000,8000] [--runs 3]
                                               [--token-delay 0.005]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Sequence

from _kernel import BenchKernel, CellStats
from _sim import SimProcess
from _targets import Targets, spread

MODEL = "gpt-5.4-mini"
FIRST_WORD = b"word0 "
SETUP = """\
%load_ext tokenhot_jupyter
import os, httpx, openai
from IPython.display import Markdown, display
_URL = os.environ["TOKENHOT_BASE_URL"] + "/v1"
_KEY = os.environ["TOKENHOT_API_KEY"]
_openai = openai.OpenAI(base_url=_URL, api_key=_KEY)
_http = httpx.Client(timeout=None, headers={"Authorization": "Bearer " + _KEY})
def _messages(n):
    return [{"role": "user", "content": f"Stream {n} words"}]
"""
CELLS: dict[str, str] = {
    "stream alone": """\
with _http.stream("POST", _URL + "/chat/completions",
                  json={"model": "%(model)s", "stream": True, "messages": _messages(%(n)d)}) as _r:
    for _line in _r.iter_lines():
        pass
""",
    "openai + display per token": """\
_text = ""
_handle = display(Markdown(""), display_id=True)
for _chunk in _openai.chat.completions.create(model="%(model)s", stream=True,
                                               messages=_messages(%(n)d)):
    if _chunk.choices and _chunk.choices[0].delta.content:
        _text += _chunk.choices[0].delta.content
        _handle.update(Markdown(_text))
""",
    "%%chat": "%%%%chat --new -m %(model)s --max-tokens 1000000\nStream %(n)d words",
}
OURS = "%%chat"


class Run:
    """One measured cell, with what the simulator saw of its stream."""

    def __init__(self, stats: CellStats, stream: tuple[float, float, int]) -> None:
        self.stats = stats
        self.first, self.last, self.pieces = stream

    @property
    def first_text_ms(self) -> float:
        """When the first word reached IOPub's reader, after the simulator sent it."""
        seen = self.stats.first_seen.get(FIRST_WORD)
        return float("nan") if seen is None else (seen - self.first) * 1000

    @property
    def cpu_per_token_us(self) -> float:
        """Kernel CPU of the cell per streamed piece."""
        return self.stats.cpu / self.pieces * 1e6


def measure(kernel: BenchKernel, sim: SimProcess, name: str, n: int) -> Run:
    """Run one cell of ``name`` for an ``n``-word answer."""
    sim.streams()
    stats = kernel.run(CELLS[name] % {"model": MODEL, "n": n})
    streams = sim.streams()
    assert len(streams) == 1, streams
    return Run(stats, streams[0])


def report(n: int, runs: dict[str, list[Run]], targets: Targets, largest: bool) -> None:
    """Print one size's table, its ratios and its targets (IOPub bytes at the largest size)."""
    print(f"\n{n:,} words ({runs[OURS][0].pieces:,} stream pieces), {len(runs[OURS])} runs each:")
    columns: list[tuple[str, Callable[[Run], float], str]] = [
        ("cell s", lambda r: r.stats.seconds, "{:.2f}"),
        ("sim stream s", lambda r: r.last - r.first, "{:.2f}"),
        ("CPU µs/token", lambda r: r.cpu_per_token_us, "{:.0f}"),
        ("messages", lambda r: r.stats.messages, "{:.0f}"),
        ("KB", lambda r: r.stats.size / 1024, "{:,.0f}"),
        ("first text ms", lambda r: r.first_text_ms, "{:.1f}"),
    ]
    for name, cells in runs.items():
        figures = [f"{label} {spread([get(r) for r in cells], fmt)}" for label, get, fmt in columns]
        print(f"  {name:<27} {'  '.join(figures)}")
    ours, alone, naive = runs[OURS], runs["stream alone"], runs["openai + display per token"]
    paired = list(zip(ours, alone, naive, strict=True))
    answer = answer_bytes(ours[-1].stats)
    targets.check(
        f"{n:>5,} words: %%chat cell time / its stream's duration at the simulator",
        [o.stats.seconds / (o.last - o.first) for o in ours],
        1.05,
    )
    ratio(
        "that stream's duration / stream alone's duration",
        [(o.last - o.first) / (a.last - a.first) for o, a, _ in paired],
        "(1 if reading is never slowed)",
    )
    ratio(
        "cell time %%chat / stream alone's cell time",
        [o.stats.seconds / a.stats.seconds for o, a, _ in paired],
    )
    iopub = [o.stats.size / answer for o in ours]
    if largest:
        label = f"{n:>5,} words: %%chat IOPub bytes / final answer ({answer:,} bytes)"
        targets.check(label, iopub, 20, "{:.1f}")
    else:
        ratio("IOPub bytes %%chat / final answer", iopub, f"(answer {answer:,} bytes)", "{:.1f}")
    targets.check(
        f"{n:>5,} words: %%chat first text after its token was sent, ms",
        [o.first_text_ms for o in ours],
        20,
        "{:.1f}",
    )
    ratio(
        "messages %%chat / per-token display",
        [o.stats.messages / n.stats.messages for o, _, n in paired],
        fmt="{:.4f}",
    )
    ratio(
        "bytes %%chat / per-token display",
        [o.stats.size / n.stats.size for o, _, n in paired],
        fmt="{:.4f}",
    )


def ratio(label: str, values: Sequence[float], note: str = "", fmt: str = "{:.3f}") -> None:
    """A figure line with no target: ``label: median (min–max) note``."""
    print(f"  {label:<57}: {spread(values, fmt)}  {note}".rstrip())


def answer_bytes(stats: CellStats) -> int:
    """The final answer's size: the last output's text/plain without its footer."""
    content = json.loads(stats.last_display)
    plain = content["data"]["text/plain"]
    return len(plain[: plain.rfind("\n\n[")].encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,2000,8000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--token-delay", type=float, default=0.005)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    with SimProcess(token_delay=args.token_delay) as sim:
        env = {"TOKENHOT_BASE_URL": sim.base_url, "TOKENHOT_API_KEY": sim.api_key}
        with BenchKernel(env, markers=[FIRST_WORD]) as kernel:
            kernel.run(SETUP)
            for name in CELLS:  # warm imports, the connection pools and the live model list
                measure(kernel, sim, name, 20)
            targets, per_token = Targets(), dict[int, list[float]]()
            for n in sizes:
                runs: dict[str, list[Run]] = {name: [] for name in CELLS}
                order = list(CELLS)
                for i in range(args.runs):
                    for name in order[i % 3 :] + order[: i % 3]:
                        runs[name].append(measure(kernel, sim, name, n))
                report(n, runs, targets, largest=n == max(sizes))
                per_token[n] = [r.cpu_per_token_us for r in runs[OURS]]
    if len(sizes) > 1:
        low, high = min(sizes), max(sizes)
        base = statistics.median(per_token[low])
        print()
        targets.check(
            f"kernel CPU per token, %%chat at {high:,} / at {low:,} (runs at {high:,} / median)",
            [cpu / base for cpu in per_token[high]],
            1.5,
            "{:.2f}",
        )
    targets.summary()


if __name__ == "__main__":
    main()
