"""``python -m tokenhot_jupyter``: open JupyterLab with the magics ready.

With no key anywhere (neither ``TOKENHOT_API_KEY`` nor a key stored from the Tokenhot
panel) the local gateway simulator serves every answer, and the magics show a banner saying
so, until a key is stored from the panel: kernels then use the real gateway at their next
request.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._config import ENV_API_KEY, ENV_BASE_URL, ENV_SIMULATED
from ._exceptions import TokenhotError
from ._store._credentials import find_key

DEMO_SPEED = 10.0  # a 5 s video (about 90 simulated seconds) is ready in about 9 s


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
    lab.add_argument(
        "--simulator-speed",
        type=_speed,
        default=DEMO_SPEED,
        metavar="X",
        help="the simulator's clock: simulated seconds per real second (default: "
        f"{DEMO_SPEED:g}, so a demo video takes seconds, not minutes)",
    )
    lab.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="passed on to jupyter lab")
    sim = sub.add_parser("simulator", help="run the gateway simulator only")
    sim.add_argument("sim_args", nargs=argparse.REMAINDER)
    return parser


def _speed(text: str) -> float:
    """A positive, finite clock speed (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:  # 0 is the simulator's manual clock: tasks would never finish
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def simulator_args(args: argparse.Namespace) -> list[str]:
    """The simulator's command-line options chosen on the launcher's command line."""
    return ["--speed", f"{args.simulator_speed:g}"]


def start_simulator(extra: Sequence[str] = ()) -> tuple[subprocess.Popen[str], str]:
    """Start the simulator in a child process; return it and its base URL."""
    cmd = [sys.executable, "-m", "tokenhot_jupyter.simulator", "--port", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        base_url = proc.stdout.readline().strip()
    except BaseException:  # Ctrl-C while it starts: do not leave it running
        _shut_down([proc])
        raise
    if not base_url.startswith("http"):
        _shut_down([proc])
        raise SystemExit("The gateway simulator did not start; run it alone to see why: "
                         "python -m tokenhot_jupyter.simulator")  # fmt: skip
    return proc, base_url


def kernel_env(env: dict[str, str]) -> dict[str, str]:
    """An environment whose IPython kernels load the magics at start (via PYTHONSTARTUP)."""
    env = dict(env)
    if env.get("PYTHONSTARTUP") and "TOKENHOT_USER_PYTHONSTARTUP" not in env:
        env["TOKENHOT_USER_PYTHONSTARTUP"] = env["PYTHONSTARTUP"]
    env["PYTHONSTARTUP"] = str(Path(__file__).parent / "_notebook" / "_startup.py")
    return env


def simulated_env(env: dict[str, str], base_url: str, *, force: bool = False) -> dict[str, str]:
    """Point kernels and the server at a simulator while no key is in force (always: ``force``).

    No key is put in the environment: kernels send the simulator's stand-in themselves, and
    a key stored from the panel (or a login) takes over at the next request unless forced.
    """
    env = {**env, ENV_BASE_URL: base_url, ENV_SIMULATED: "always" if force else "1"}
    if force:
        env.pop(ENV_API_KEY, None)  # --simulate: the real key stays out of this session
    return env


def lab(args: argparse.Namespace) -> int:
    """Open JupyterLab; start the simulator first when there is no key."""
    if not _has_module("jupyterlab"):
        print('JupyterLab is not installed: pip install "tokenhot-jupyter[lab]"', file=sys.stderr)
        return 2
    try:
        key, _ = find_key()
    except TokenhotError as exc:  # e.g. a stored key other users can read
        print(exc, file=sys.stderr)
        return 2
    children: list[subprocess.Popen[Any]] = []
    previous = {sig: signal.signal(sig, _first_stop(children)) for sig in _STOP_SIGNALS}
    try:
        return _serve(args, key, children)
    except KeyboardInterrupt:
        print(_STOPPING, file=sys.stderr, flush=True)
        return 0
    except _Terminated:
        return 0
    finally:
        _shut_down(children)
        for sig, handler in previous.items():  # a caller's Ctrl-C works as before afterwards
            signal.signal(sig, handler)


_STOPPING = "Stopping JupyterLab and the simulator (Ctrl-C again stops them at once)."
STOP_TIMEOUT = 10.0  # seconds JupyterLab gets to shut its kernels down before it is killed


def _serve(args: argparse.Namespace, key: str | None, children: list[subprocess.Popen[Any]]) -> int:
    env = dict(os.environ)
    if args.simulate or key is None:
        sim, base_url = start_simulator(simulator_args(args))
        children.append(sim)
        env = simulated_env(env, base_url, force=args.simulate)
        why = "--simulate" if args.simulate else "No API key is set"
        print(f"{why}: answers come from the local gateway simulator at {base_url}.")
        if not args.simulate:
            print(
                "Set a key with 'Tokenhot: Set API key…' in JupyterLab (or set "
                f"{ENV_API_KEY}) to use the real gateway."
            )
    folder = args.dir or ("notebooks" if Path("notebooks").is_dir() else ".")
    extra = [a for a in args.jupyter_args if a != "--"]
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}", *extra]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI often run as root
        cmd.append("--ServerApp.allow_root=True")
    children.insert(0, subprocess.Popen(cmd, env=kernel_env(env)))  # stopped first
    return children[0].wait()


class _Terminated(Exception):
    """SIGTERM arrived (a service manager, a test): stop like Ctrl-C, quietly."""


def _first_stop(children: list[subprocess.Popen[Any]]) -> Callable[[int, object], None]:
    """The handler of the first Ctrl-C or SIGTERM: it arms the next one to kill ``children``."""

    def stop(signum: int, frame: object) -> None:
        for sig in _STOP_SIGNALS:  # before raising, so a quick second Ctrl-C finds it armed
            signal.signal(sig, lambda *_: _kill(children))
        raise KeyboardInterrupt if signum == signal.SIGINT else _Terminated

    return stop


def _shut_down(children: Sequence[subprocess.Popen[Any]]) -> None:
    """Stop ``children`` and wait for them; a further Ctrl-C or SIGTERM kills them at once.

    The signal handlers only kill, never raise: a second Ctrl-C cannot interrupt this
    with a traceback or leave a child (the simulator) running.
    """
    live = [child for child in children if child.poll() is None]
    main = threading.current_thread() is threading.main_thread()  # where handlers can be set
    previous = {sig: signal.signal(sig, lambda *_: _kill(live)) for sig in _STOP_SIGNALS if main}
    try:
        for child in live:
            child.terminate()
        for child in live:
            try:
                child.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill([child])
                child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _kill(children: Sequence[subprocess.Popen[Any]]) -> None:
    for child in children:
        if child.poll() is None:
            child.kill()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tokenhot_jupyter`` and the ``tokenhot-jupyter`` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulator"]:  # its own options, passed on untouched
        from .simulator.__main__ import main as simulator_main

        return simulator_main(argv[1:])
    if not argv or argv[0] not in ("lab", "-h", "--help"):
        argv = ["lab", *argv]
    args, extra = _parser().parse_known_args(argv)
    args.jupyter_args = [*args.jupyter_args, *extra]
    return lab(args)


if __name__ == "__main__":
    sys.exit(main())
