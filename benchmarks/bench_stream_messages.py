"""Frontend messages for a 2,000-token streamed answer, against one update per token.

A real InteractiveShell with a capturing display publisher (what a kernel would send on
IOPub) runs ``%%chat`` against the in-process simulator, paced at ``--token-delay``
seconds per token; the simulator's answer is stretched to ``--tokens`` word pieces.

    python benchmarks/bench_stream_messages.py [--tokens 2000] [--token-delay 0.005]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _shell import magic_shell


def long_answer(tokens: int) -> Any:
    """A replacement for the simulator's answer text: ``tokens`` word pieces."""

    def answer(model: str, prompt: Any) -> str:
        return " ".join(f"word{i}" for i in range(tokens))

    return answer


def run(tokens: int, delay: float, interval: float) -> tuple[int, int, float]:
    """(display messages, streamed pieces, seconds) for one streamed answer."""

    from tokenhot_jupyter.simulator import Simulator, _turn

    _turn.answer = long_answer(tokens)  # type: ignore[attr-defined]
    with Simulator(speed=0, token_delay=delay) as sim:
        ip = magic_shell(sim)
        ip.run_line_magic("config", f"Tokenhot.stream_interval = {interval}")
        started = time.perf_counter()
        result = ip.run_cell("%%chat --max-tokens 100000\nStream a long answer")
        elapsed = time.perf_counter() - started
        result.raise_error()
        outputs = ip.display_pub.outputs
        pieces = len(outputs[-1]["data"]["text/plain"].split()) - 1
        return len(outputs), pieces, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--token-delay", type=float, default=0.005)
    parser.add_argument("--interval", type=float, default=0.25)
    args = parser.parse_args()
    messages, pieces, elapsed = run(args.tokens, args.token_delay, args.interval)
    per_token = pieces + 1  # one display plus one update per token
    print(
        f"streamed {pieces} tokens in {elapsed:.2f} s (token delay {args.token_delay * 1000:g} ms)"
    )
    print(f"display messages sent      : {messages}")
    print(f"one update per token would : {per_token}")
    fewer = per_token / messages
    print(f"ratio                      : {messages / per_token:.4f} ({fewer:.0f}x fewer)")
    print(f"updates per second         : {messages / elapsed:.1f} (throttle {args.interval:g} s)")


if __name__ == "__main__":
    main()
