"""Record a notebook's cassette from the simulator, replay it, and compare what it showed.

A notebook meant for replay has a ``%tokenhot replay PATH`` cell (and may end with
``%tokenhot replay --stop``); `recording` turns those into ``record``.  Re-record the shipped
cassette with ``python tests/cassette_support.py`` (it starts a simulator of its own).
"""

from __future__ import annotations

import copy
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SHIPPED = HERE.parent / "notebooks" / "07-record-and-replay.ipynb"
SHIPPED_CASSETTE = SHIPPED.parent / "cassettes" / "07-record-and-replay"
_CASSETTE_LINE = re.compile(r"^%tokenhot replay (?!--stop)\S+.*$", re.M)
# What legitimately differs between a recording and its replay: latency, saved file names
# (timestamps, output folders) and the replayed mark itself.
_VOLATILE = (
    (re.compile(r"\d+\.\d\d s\b"), "<seconds>"),
    (re.compile(r"[\w./\\-]+\.(mp4|png|jpg|webp|wav)\b"), "<file>"),
    (re.compile(r' ?(<span style="[^"]*">)?· replayed(</span>)?'), ""),
    (re.compile(r"\((\d+ h )?(\d+ min )?\d+ s\)"), "(<elapsed>)"),  # a video card's age
    (re.compile(r"made in (\d+ h )?(\d+ min )?\d+ s"), "made in <elapsed>"),  # how long it took
)

# Python-level sockets refuse to connect and names refuse to resolve; attempts are counted.
SOCKET_GUARD = """
import socket as _socket
_guard_attempts = []
def _guard(*args, **kwargs):
    _guard_attempts.append(repr(args)[:120])
    raise OSError("the socket guard refused a connection")
_socket.socket.connect = _guard
_socket.socket.connect_ex = _guard
_socket.create_connection = _guard
_socket.getaddrinfo = _guard
"""
GUARD_REPORT = "print('guarded connection attempts:', len(_guard_attempts))"


def load(path: Path = SHIPPED) -> Any:
    """A notebook as an nbformat node."""
    return nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]


def with_cassette(nb: Any, line: str, stop: str, *, first: str = "", last: str = "") -> Any:
    """A copy whose cassette cell says ``line`` and whose stop cell says ``stop``."""
    changed = copy.deepcopy(nb)
    for cell in changed.cells:
        if cell.cell_type == "code" and _CASSETTE_LINE.search(cell.source):
            cell.source = _CASSETTE_LINE.sub(line, cell.source)
        elif cell.cell_type == "code" and cell.source.strip() == "%tokenhot replay --stop":
            cell.source = stop
    extra = [nbformat.v4.new_code_cell(c) for c in (first, last) if c]  # type: ignore[no-untyped-call]
    if first:
        changed.cells.insert(0, extra.pop(0))
    changed.cells.extend(extra)
    return changed


def recording(nb: Any, cassette: Path, *, last: str = "") -> Any:
    """The notebook recording into ``cassette``."""
    return with_cassette(nb, f"%tokenhot record {cassette}", "%tokenhot record --stop", last=last)


def replaying(nb: Any, cassette: Path, *, speed: float = 0, last: str = "") -> Any:
    """The notebook replaying ``cassette`` behind the socket guard."""
    return with_cassette(
        nb, f"%tokenhot replay {cassette} --speed {speed:g}", "%tokenhot replay --stop",
        first=SOCKET_GUARD, last="\n".join(c for c in (last, GUARD_REPORT) if c),
    )  # fmt: skip


def execute(nb: Any, cwd: Path, timeout: float = 120) -> float:
    """Run every cell in a fresh kernel (it inherits os.environ); returns the wall time."""
    started = time.monotonic()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})  # fmt: skip
    client.execute()
    return time.monotonic() - started


def shown(nb: Any) -> list[list[dict[str, str]]]:
    """What each ``%%`` cell showed, in order, without what may differ between runs."""
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%")]
    return [[_essence(o) for o in c.outputs if "data" in o] for c in cells]


def _essence(output: Any) -> dict[str, str]:
    essence = {}
    for mime, value in output["data"].items():
        text = value if isinstance(value, str) else "".join(value)
        for pattern, replacement in _VOLATILE:
            text = pattern.sub(replacement, text)
        essence[mime] = text
    return essence


def size(folder: Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main() -> None:
    """Re-record the shipped notebook's cassette from a fresh simulator."""
    from tokenhot_jupyter.simulator import Simulator

    with Simulator(speed=200, token_delay=0.002) as sim, tempfile.TemporaryDirectory() as tmp:
        for name in [n for n in os.environ if n.startswith("TOKENHOT_")]:
            del os.environ[name]
        os.environ.update(TOKENHOT_BASE_URL=sim.base_url, TOKENHOT_API_KEY=sim.api_key,
                          TOKENHOT_HOME=tmp, TOKENHOT_OUTPUT_DIR=tmp)  # fmt: skip
        relative = SHIPPED_CASSETTE.relative_to(SHIPPED.parent)
        took = execute(recording(load(), relative), SHIPPED.parent)
    print(f"recorded {SHIPPED_CASSETTE} in {took:.1f} s: {size(SHIPPED_CASSETTE):,} bytes")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))  # this checkout's package, also when not installed
    main()
