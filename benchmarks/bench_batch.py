"""Wall time of a 1,000-row ``chat_many`` against the simulator's rate limit, and the ideal.

The simulator runs in a process of its own, on a real-time clock, with a limit of ``--rate``
billable requests per second (a token bucket of ``--burst``; over it the gateway's
empty-body 429).  The ideal is rows ÷ rate: the batch never knows the rate, it has to
find it from the 429s (and keep finding it: the limiter probes above it now and then).
Each run is a fresh batch (new prompts, a fresh resume store, the bucket refilled first),
as a plain script makes it with the blocking `Client`; runs alternate between
``resume=True`` (every row kept on disk as it finishes) and ``resume=False``.  Figures are
medians (min–max) over ``--runs``, printed as ratios to the ideal, with the 429s the batch
met per run.  Target: ≤ 1.1× the ideal.

``--naive`` adds one run of the anchor a script would write without a batch engine: the
same client's ``chat`` under an ``asyncio.Semaphore(concurrency)``, where each row sleeps
and retries its own 429s (1 s, 2 s, 4 s with jitter, three times) and gives up after that.

    python benchmarks/bench_batch.py [--rows 1000] [--rate 100] [--burst 10] [--runs 3]
                                     [--concurrency 8] [--naive]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from typing import Any

from _sim import SimProcess

MODEL = "gpt-5.4-mini"


def prompts(run: int, rows: int) -> list[str]:
    """Rows no earlier run asked (so nothing is reused, and nothing cached helps)."""
    return [f"Run {run}, row {i}: one word for a colour." for i in range(rows)]


def batch_run(sim: SimProcess, run: int, args: argparse.Namespace, resume: bool) -> dict[str, Any]:
    """One ``chat_many``: wall seconds, 429s met, rows that failed."""
    from tokenhot_jupyter import BatchProgress, Client

    os.environ["TOKENHOT_HOME"] = tempfile.mkdtemp()  # a fresh resume store
    client = Client(sim.api_key, sim.base_url, live_models=False)
    last: list[BatchProgress] = []
    started = time.perf_counter()
    rows = client.chat_many(
        prompts(run, args.rows), MODEL, concurrency=args.concurrency, resume=resume,
        on_progress=lambda p: last.__setitem__(slice(None), [p]),
    )  # fmt: skip
    wall = time.perf_counter() - started
    return {"wall": wall, "throttled": last[-1].throttled, "failed": sum(not r.ok for r in rows)}


def naive_run(sim: SimProcess, run: int, args: argparse.Namespace) -> dict[str, Any]:
    """The anchor: a semaphore over `AsyncClient.chat`, retrying 429s row by row."""
    from tokenhot_jupyter import AsyncClient, TokenhotError

    client = AsyncClient(sim.api_key, sim.base_url, live_models=False)
    gate = asyncio.Semaphore(args.concurrency)

    async def one(prompt: str) -> bool:
        async with gate:
            try:
                await client.chat(prompt, MODEL)
            except TokenhotError:
                return False
            return True

    async def every() -> list[bool]:
        return await asyncio.gather(*(one(p) for p in prompts(run, args.rows)))

    started = time.perf_counter()
    done = asyncio.run(every())
    return {"wall": time.perf_counter() - started, "failed": done.count(False)}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--burst", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--naive", action="store_true")
    args = parser.parse_args()
    ideal = args.rows / args.rate
    results: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    with SimProcess(speed=1.0, rate_limit=args.rate, rate_burst=args.burst) as sim:
        batch_run(sim, -1, argparse.Namespace(**{**vars(args), "rows": 50}), False)  # warm up
        for run in range(2 * args.runs):
            time.sleep(args.burst / args.rate + 0.2)  # the bucket full again
            resume = run % 2 == 0
            results[resume].append(batch_run(sim, run, args, resume))
        naive = naive_run(sim, 999, args) if args.naive else None
    print(f"{args.rows} rows at {args.rate:g} requests/s (burst {args.burst:g}), "
          f"concurrency {args.concurrency}: ideal {ideal:.2f} s")  # fmt: skip
    for resume, label in ((True, "chat_many, resume on "), (False, "chat_many, resume off")):
        runs = results[resume]
        walls = [r["wall"] for r in runs]
        print(f"{label}: {spread(walls)} s; ratio to ideal {spread([w / ideal for w in walls])}"
              f"  (target <= 1.1); 429s per run {[r['throttled'] for r in runs]}, "
              f"failed rows {[r['failed'] for r in runs]}")  # fmt: skip
    if naive is not None:
        print(f"naive semaphore + per-row retries: {naive['wall']:.2f} s, ratio to ideal "
              f"{naive['wall'] / ideal:.3f}, failed rows {naive['failed']}")  # fmt: skip


if __name__ == "__main__":
    main()
