"""A gateway simulator in a process of its own, for benchmarks that measure another process.

Its CPU never counts against the client (or kernel) being measured, and it answers
``Stream N words`` with an N-piece Markdown answer (paragraphs, a list, fenced code), so the
stream length is chosen per request.  It also reports, over its stdin/stdout, when each
chat stream sent its first and last piece (time.time(), the same clock in every process of
the machine) and how many requests each route saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

CHILD = r"""
import collections, json, re, sys, threading, time
from tokenhot_jupyter.simulator import Simulator, _turn, _routes_chat

def long_answer(model, prompt):
    match = re.search(r"Stream (\d+) words", prompt.text)
    if not match:
        return ORIGINAL_ANSWER(model, prompt)
    words = []
    for i in range(int(match.group(1))):
        if i % 400 == 200:
            words.append("\n\n```python\nword%d = %d  # code\n```\n\n" % (i, i))
        elif i % 50 == 49:
            words.append("word%d.\n\n" % i)
        elif i % 50 == 25:
            words.append("\n- word%d " % i)
        else:
            words.append("word%d " % i)
    return "".join(words).lstrip("\n")

ORIGINAL_ANSWER = _turn.answer
_turn.answer = long_answer
streams = []
counts = collections.Counter()
lock = threading.Lock()
original_paced = _routes_chat.paced

def paced(ctx, text):
    first, count = None, 0
    for piece in original_paced(ctx, text):
        if first is None:
            first = time.time()
        count += 1
        yield piece
    if first is not None:
        with lock:
            streams.append((first, time.time(), count))

_routes_chat.paced = paced

rate = float(sys.argv[3]) or None
sim = Simulator(speed=float(sys.argv[1]), token_delay=float(sys.argv[2]), rate_limit=rate,
                rate_burst=float(sys.argv[4]) or None)
original_state_record = sim._state.record

def record(entry):
    segments = entry.path.split("/")
    with lock:
        counts[entry.method + " " + segments[2 if segments[1] == "v1" else 1]] += 1
    original_state_record(entry)

sim._state.record = record
sim.start()
print(sim.base_url, sim.api_key, flush=True)
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    with lock:
        if command == "streams":
            reply, streams[:] = list(streams), []
        elif command == "counts":
            reply = dict(counts)
        elif command == "advance":
            sim.clock.advance(float(arg))
            reply = sim.clock.now()
        else:
            break
    print(json.dumps(reply), flush=True)
sim.stop()
"""


class SimProcess:
    """The simulator child: ``base_url``, ``api_key`` and a few commands."""

    def __init__(
        self,
        *,
        speed: float = 0.0,
        token_delay: float = 0.0,
        rate_limit: float = 0.0,
        rate_burst: float = 0.0,
    ) -> None:
        """``rate_limit``: billable requests per simulated second (0: none), with a bucket of
        ``rate_burst`` (0: one second's worth)."""
        args = [str(speed), str(token_delay), str(rate_limit), str(rate_burst)]
        self._proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.base_url, self.api_key = self._proc.stdout.readline().split()
        self._lock = threading.Lock()

    def _ask(self, command: str) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
            return json.loads(self._proc.stdout.readline())

    def streams(self) -> list[tuple[float, float, int]]:
        """(first piece sent, last piece sent, pieces) of each chat stream since the last call."""
        return [(float(a), float(b), int(n)) for a, b, n in self._ask("streams")]

    def counts(self) -> dict[str, int]:
        """Requests seen so far, by method and first path segment (``GET video``)."""
        return dict(self._ask("counts"))

    def advance(self, seconds: float) -> float:
        """Move the simulated clock on; returns its new time."""
        return float(self._ask(f"advance {seconds}"))

    def close(self) -> None:
        """Stop the child."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
