"""How long ``%load_ext tokenhot_jupyter`` takes, against ``%load_ext jupyter_ai_magics``.

Each load runs in a fresh interpreter (nothing cached in ``sys.modules``), several times;
we report medians and the ratio (target: ≤ 0.1).  Needs ``pip install jupyter-ai-magics``
for the comparison; without it only our own time is printed.

    python benchmarks/bench_load_ext.py [--runs 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys

CHILD = """
import time
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
config = Config()
config.HistoryManager.hist_file = ":memory:"
ip = InteractiveShell.instance(config=config)
started = time.perf_counter()
ip.run_line_magic("load_ext", {name!r})
print(time.perf_counter() - started)
"""


def load_time(extension: str) -> float:
    """Seconds ``%load_ext extension`` took in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(name=extension)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return float(out.stdout.strip().splitlines()[-1])


def median_time(extension: str, runs: int) -> float:
    """The median of ``runs`` fresh loads."""
    load_time(extension)  # warm the disk cache and bytecode
    return statistics.median(load_time(extension) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    ours = median_time("tokenhot_jupyter", runs)
    print(f"%load_ext tokenhot_jupyter : median {ours * 1000:8.1f} ms over {runs} fresh runs")
    if importlib.util.find_spec("jupyter_ai_magics") is None:
        print("jupyter_ai_magics is not installed: pip install jupyter-ai-magics to compare.")
        return
    theirs = median_time("jupyter_ai_magics", runs)
    print(f"%load_ext jupyter_ai_magics: median {theirs * 1000:8.1f} ms over {runs} fresh runs")
    print(f"ratio tokenhot / jupyter_ai : {ours / theirs:.3f}  (target <= 0.1)")


if __name__ == "__main__":
    main()
