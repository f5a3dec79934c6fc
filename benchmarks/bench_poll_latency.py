"""Background ``%%video`` tasks in a real kernel: its idle CPU, its display updates, cell latency.

Two kernels run side by side against one simulator (a process of its own, manual clock,
so tasks stay pending until we move it): the anchor has the magics loaded and no tasks; the
other follows 20, then 100 tasks, polled every ``--interval`` seconds (the real default,
``Tokenhot.video_poll_interval``, unless given).  For each task count:

* **idle**: over ``--windows`` spans of ``--window`` seconds without cells, each kernel's CPU
  (psutil) as a share of one core (median, min–max over the spans), the polls the simulator
  saw, and the card updates the kernel published;
* **clock moved on**: the simulated clock jumps 30 s; the card updates of the next poll round
  are checked against what each card showed before (an update must show a change);
* **latency**: ``--cells`` trivial cells alternate between the two kernels (interleaved, so
  load cancels out); medians, 95th percentiles and their ratios.

Targets: idle kernel CPU ≤ 1% with 100 tasks at the default interval; no update while
nothing changed.

    python benchmarks/bench_poll_latency.py [--tasks 20,100] [--interval 10] [--window 20]
                                            [--windows 3] [--cells 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from _kernel import BenchKernel
from _sim import SimProcess
from _targets import Targets, spread

from tokenhot_jupyter._config import DEFAULT_POLL_INTERVAL  # Tokenhot.video_poll_interval's default

MODEL = "doubao-seedance-2.0-fast"


def setup(interval: float | None) -> str:
    """The first cell of both kernels."""
    config = "" if interval is None else f"%config Tokenhot.video_poll_interval = {interval}\n"
    return "%load_ext tokenhot_jupyter\n" + config


Cards = dict[str, tuple[str, str, int]]  # display id -> (phase, status, progress) last shown


def add_tasks(kernel: BenchKernel, first: int, last: int, cards: Cards) -> None:
    """Create tasks ``first`` .. ``last - 1``, one ``%%video`` cell each; note their cards."""
    for i in range(first, last):
        stats = kernel.run(f"%%video -m {MODEL} --new\nBenchmark task {i}")
        content = json.loads(stats.last_display)
        cards[content["transient"]["display_id"]] = _state(content)


def _state(content: dict[str, Any]) -> tuple[str, str, int]:
    meta = content["metadata"]["tokenhot"]
    return meta["phase"], meta["status"], meta["progress"]


Idle = tuple[list[float], list[float], float, tuple[int, int]]


def idle_windows(
    busy: BenchKernel, anchor: BenchKernel, sim: SimProcess, seconds: float, windows: int,
    cards: Cards,
) -> Idle:  # fmt: skip
    """Per span of ``seconds`` with no cells: CPU % of each kernel; polls/s; card updates."""
    updates(busy, cards)
    polls, started = _polls(sim), time.perf_counter()
    shares: dict[BenchKernel, list[float]] = {busy: [], anchor: []}
    for _ in range(windows):
        before, began = {k: k.cpu() for k in shares}, time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - began
        for kernel, values in shares.items():
            values.append((kernel.cpu() - before[kernel]) / elapsed * 100)
    rate = (_polls(sim) - polls) / (time.perf_counter() - started)
    return shares[busy], shares[anchor], rate, updates(busy, cards)


def _polls(sim: SimProcess) -> int:
    return sum(n for route, n in sim.counts().items() if route.startswith("GET video"))


def updates(kernel: BenchKernel, cards: Cards) -> tuple[int, int]:
    """Card updates since the last call: (that showed a change, that showed none)."""
    changed = same = 0
    for _, msg_type, content in kernel.others():
        if msg_type != "update_display_data":
            continue
        card, state = content["transient"]["display_id"], _state(content)
        changed, same = (changed + 1, same) if cards.get(card) != state else (changed, same + 1)
        cards[card] = state
    return changed, same


def latency(busy: BenchKernel, anchor: BenchKernel, cells: int) -> tuple[list[float], list[float]]:
    """Seconds of ``cells`` trivial cells in each kernel, alternating."""
    times: dict[int, list[float]] = {0: [], 1: []}
    for i in range(cells * 2):
        kernel = (busy, anchor)[i % 2]
        times[i % 2].append(kernel.run(f"x = {i} + 1").seconds)
    return times[0], times[1]


def p95(values: list[float]) -> float:
    """The 95th percentile."""
    return sorted(values)[int(len(values) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="20,100")
    parser.add_argument("--interval", type=float, default=None)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--cells", type=int, default=200)
    args = parser.parse_args()
    counts = [int(n) for n in args.tasks.split(",")]
    interval = args.interval or DEFAULT_POLL_INTERVAL
    targets = Targets()

    with SimProcess(speed=0) as sim:
        env = {"TOKENHOT_BASE_URL": sim.base_url, "TOKENHOT_API_KEY": sim.api_key}
        with BenchKernel(env) as busy, BenchKernel(env) as anchor:
            for kernel in (busy, anchor):
                kernel.run(setup(args.interval))
            made, cards = 0, Cards()
            for count in counts:
                add_tasks(busy, made, count, cards)
                made = count
                time.sleep(interval + 1)  # past every task's first poll
                idle = idle_windows(busy, anchor, sim, args.window, args.windows, cards)
                judged = count == 100 and interval == DEFAULT_POLL_INTERVAL
                report_idle(count, interval, idle, targets, judged)
                sim.advance(30)  # the tasks move up their ladders
                time.sleep(interval * 1.5)
                changed, same = updates(busy, cards)
                print(f"  clock moved on: {changed} card updates with a change in the next round")
                label = f"{count:>3} tasks: card updates of that round that showed no change"
                targets.check(label, [same], 0, "{:.0f}")
                report_latency(*latency(busy, anchor, args.cells))
    targets.summary()


def report_idle(count: int, interval: float, idle: Idle, targets: Targets, judged: bool) -> None:
    """The idle spans' lines (their CPU is a target at 100 tasks and the default interval)."""
    busy, anchor, polls, sent = idle
    print(f"\n{count} tasks polled every {interval:g} s ({polls:.1f} polls/s), "
          f"{len(busy)} idle spans:")  # fmt: skip
    label = f"{count:>3} tasks: idle kernel CPU, % of a core"
    if judged:
        targets.check(label, busy, 1, "{:.2f}")
    else:
        print(f"  {label}: {spread(busy, '{:.2f}')}")
    print(f"  the kernel with no tasks: {spread(anchor, '{:.2f}')} % of a core")
    targets.check(
        f"{count:>3} tasks: card updates while the clock stood still", [sum(sent)], 0, "{:.0f}"
    )


def report_latency(busy: list[float], anchor: list[float]) -> None:
    """The trivial cells' lines."""
    for label, times in (("with tasks", busy), ("no tasks", anchor)):
        print(f"  trivial cell, {label:<10}: median {statistics.median(times) * 1e3:6.2f} ms,"
              f" p95 {p95(times) * 1e3:6.2f} ms")  # fmt: skip
    ratio = statistics.median(busy) / statistics.median(anchor)
    print(f"  ratio with/without tasks: median {ratio:.2f}, p95 {p95(busy) / p95(anchor):.2f}")


if __name__ == "__main__":
    main()
