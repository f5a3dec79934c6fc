"""Added latency of a trivial cell while 20 ``%%video`` tasks poll in the background.

Anchor: the same trivial cell with no tasks polling.  The simulator's clock is manual, so
the tasks never finish; ``Tokenhot.video_poll_interval`` is set 20x faster than the real
default (0.5 s instead of 10 s) to make the load heavier than in practice.  Prints the
median and 95th percentile of each, and their ratios (target: no measurable slowdown).

    python benchmarks/bench_poll_latency.py [--cells 400] [--tasks 20] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _shell import magic_shell


def cell_times(ip: Any, n: int) -> list[float]:
    """Seconds each of ``n`` trivial cells took."""
    times = []
    for i in range(n):
        started = time.perf_counter()
        ip.run_cell(f"x = {i} + 1")
        times.append(time.perf_counter() - started)
        time.sleep(0.002)  # let the poller run between cells, as a person typing would
    return times


def p95(values: list[float]) -> float:
    """The 95th percentile."""
    return sorted(values)[int(len(values) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=400)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()

    from tokenhot_jupyter.simulator import Simulator

    with Simulator(speed=0, token_delay=0) as sim:
        ip = magic_shell(sim, video_poll_interval=args.interval)
        idle = cell_times(ip, args.cells)
        for i in range(args.tasks):
            ip.run_cell(
                f"%%video -m doubao-seedance-2.0-fast --new\nBenchmark task {i}"
            ).raise_error()
        polls_before = len(sim.requests)
        started = time.perf_counter()
        busy = cell_times(ip, args.cells)
        polls = (len(sim.requests) - polls_before) / (time.perf_counter() - started)
        ip.run_line_magic("unload_ext", "tokenhot_jupyter")
    report("trivial cell, idle", idle)
    report(f"trivial cell, {args.tasks} tasks polling ({polls:.0f} polls/s)", busy)
    ratio_median = statistics.median(busy) / statistics.median(idle)
    print(f"ratio busy/idle: median {ratio_median:.2f}, p95 {p95(busy) / p95(idle):.2f}")


def report(label: str, times: list[float]) -> None:
    """One line: median and p95 in microseconds."""
    median_us, p95_us = statistics.median(times) * 1e6, p95(times) * 1e6
    print(f"{label:<44}: median {median_us:6.0f} µs, p95 {p95_us:6.0f} µs")


if __name__ == "__main__":
    main()
