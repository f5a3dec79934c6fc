"""Wall time of a 4-model ``%%chat -m a,b,c,d`` comparison against the slowest single model.

The models stream concurrently from the in-process simulator (paced at ``--token-delay``
seconds per token), so the comparison should take about as long as the slowest one alone
(target: ≤ 1.15×).  Medians over ``--runs``.

    python benchmarks/bench_compare.py [--runs 3] [--token-delay 0.01]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _shell import magic_shell

MODELS = ("gpt-5.4-mini", "claude-opus-4-6", "gemini-2.5-flash", "gpt-5")
PROMPT = "Compare these models on one short question"


def timed(ip: Any, line: str) -> float:
    """Seconds one ``%%chat`` cell took."""
    started = time.perf_counter()
    result = ip.run_cell(f"%%chat --thread bench --new {line}\n{PROMPT}")
    elapsed = time.perf_counter() - started
    result.raise_error()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--token-delay", type=float, default=0.01)
    args = parser.parse_args()

    from tokenhot_jupyter.simulator import Simulator

    with Simulator(speed=0, token_delay=args.token_delay) as sim:
        ip = magic_shell(sim)
        timed(ip, f"-m {MODELS[0]}")  # warm the connection pool and the live model list
        singles = {
            m: statistics.median(timed(ip, f"-m {m}") for _ in range(args.runs)) for m in MODELS
        }
        both = statistics.median(timed(ip, f"-m {','.join(MODELS)}") for _ in range(args.runs))
    for model, seconds in singles.items():
        print(f"{model:<20} alone      : {seconds:6.3f} s")
    slowest = max(singles.values())
    print(f"{len(MODELS)} models compared      : {both:6.3f} s")
    print(f"ratio compare / slowest   : {both / slowest:.3f}  (target <= 1.15)")
    print(
        f"ratio compare / sum       : {both / sum(singles.values()):.3f}  (sequential would be 1.0)"
    )


if __name__ == "__main__":
    main()
