"""``python -m tokenhot_jupyter``: open JupyterLab with the magics ready.

Without ``TOKENHOT_API_KEY`` the local gateway simulator serves every answer, and the
magics show a banner saying so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ._config import ENV_API_KEY, ENV_BASE_URL

SIMULATED_FLAG = "TOKENHOT_SIMULATED"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tokenhot_jupyter", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    lab = sub.add_parser(
        "lab", help="open JupyterLab on notebooks/ with the magics loaded (default)"
    )
    lab.add_argument(
        "--simulate", action="store_true", help="use the simulator even if a key is set"
    )
    lab.add_argument("--dir", default=None, help="folder to open (default: ./notebooks if present)")
    lab.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="passed on to jupyter lab")
    sim = sub.add_parser("simulator", help="run the gateway simulator only")
    sim.add_argument("sim_args", nargs=argparse.REMAINDER)
    return parser


def start_simulator(extra: Sequence[str] = ()) -> tuple[subprocess.Popen[str], str]:
    """Start the simulator in a child process; return it and its base URL."""
    cmd = [sys.executable, "-m", "tokenhot_jupyter.simulator", "--port", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    if not base_url.startswith("http"):
        proc.kill()
        raise SystemExit("The gateway simulator did not start; run it alone to see why: "
                         "python -m tokenhot_jupyter.simulator")  # fmt: skip
    return proc, base_url


def lab(args: argparse.Namespace) -> int:
    """Open JupyterLab; start the simulator first when there is no key."""
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        print('JupyterLab is not installed: pip install "tokenhot-jupyter[lab]"', file=sys.stderr)
        return 2
    env = dict(os.environ)
    sim = None
    if args.simulate or not env.get(ENV_API_KEY, "").strip():
        sim, base_url = start_simulator()
        env.update({ENV_BASE_URL: base_url, ENV_API_KEY: "sk-simulator", SIMULATED_FLAG: "1"})
        print(f"No {ENV_API_KEY} set: answers come from the local gateway simulator at {base_url}.")
        print(f"Set {ENV_API_KEY} (or run %tokenhot login in a notebook) to use the real gateway.")
    if env.get("PYTHONSTARTUP"):
        env["TOKENHOT_USER_PYTHONSTARTUP"] = env["PYTHONSTARTUP"]
    env["PYTHONSTARTUP"] = str(Path(__file__).with_name("_startup.py"))
    folder = args.dir or ("notebooks" if Path("notebooks").is_dir() else ".")
    extra = [a for a in args.jupyter_args if a != "--"]
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}", *extra]
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(timeout=5)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tokenhot_jupyter`` and the ``tokenhot-jupyter`` script."""
    args = _parser().parse_args(argv)
    if args.command == "simulator":
        from .simulator.__main__ import main as simulator_main

        return int(simulator_main(list(args.sim_args)) or 0)
    if args.command is None:
        args = _parser().parse_args(["lab", *(argv or [])])
    return lab(args)


if __name__ == "__main__":
    sys.exit(main())
