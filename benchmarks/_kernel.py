"""A real ipykernel for benchmarks: cells sent over ZMQ, IOPub counted as raw bytes.

Like ``tests/kernel_support.py``, but IOPub is read by a thread of our own from a plain
SUB socket, so every frame's size on the wire is counted and nothing is dropped while a
cell floods it; the kernel's CPU time comes from its process (psutil).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psutil
import zmq
from jupyter_client.manager import KernelManager

DISPLAYS = ("display_data", "update_display_data")


@dataclass
class CellStats:
    """What one cell cost, seen from outside the kernel."""

    seconds: float = 0.0  # execute_request sent to execute_reply received
    cpu: float = 0.0  # kernel process CPU seconds (user + system) over the same span
    messages: int = 0  # IOPub messages of this cell
    displays: int = 0  # of which display_data / update_display_data
    updates: int = 0  # of which update_display_data
    size: int = 0  # IOPub bytes of this cell, every frame
    first_seen: dict[bytes, float] = field(default_factory=dict)  # marker -> time.time()
    last_display: bytes = b""  # the content of the last display message
    status: str = ""
    reply: dict[str, Any] = field(default_factory=dict)


class _Iopub(threading.Thread):
    """Counts every IOPub message by its parent request."""

    def __init__(self, url: str, markers: list[bytes]) -> None:
        super().__init__(daemon=True, name="bench-iopub")
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, 0)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.connect(url)
        self.markers = markers
        self.lock = threading.Lock()
        self.cells: dict[str, CellStats] = defaultdict(CellStats)
        self.idle: dict[str, threading.Event] = defaultdict(threading.Event)
        self.others: list[tuple[float, str, dict[str, Any]]] = []  # messages of no cell
        self.stopping = False

    def run(self) -> None:
        while not self.stopping:
            if not self.socket.poll(100):
                continue
            frames = self.socket.recv_multipart()
            now = time.time()
            self._count(frames, now)

    def _count(self, frames: list[bytes], now: float) -> None:
        split = frames.index(b"<IDS|MSG>")
        header, parent, _metadata, content = frames[split + 2 : split + 6]
        msg_type = json.loads(header)["msg_type"]
        parent_id = json.loads(parent).get("msg_id", "")
        size = sum(len(f) for f in frames)
        with self.lock:
            if not parent_id or parent_id not in self.cells:
                self.others.append((now, msg_type, json.loads(content)))
                return
            cell = self.cells[parent_id]
            cell.messages += 1
            cell.size += size
            if msg_type in DISPLAYS:
                cell.displays += 1
                cell.updates += msg_type == "update_display_data"
                cell.last_display = content
                for marker in self.markers:
                    if marker not in cell.first_seen and marker in content:
                        cell.first_seen[marker] = now
        if msg_type == "status" and b'"idle"' in content:
            self.idle[parent_id].set()

    def expect(self, msg_id: str) -> None:
        with self.lock:
            self.cells[msg_id] = CellStats()

    def close(self) -> None:
        self.stopping = True
        self.join(2)
        self.socket.close(0)
        self.context.term()


class BenchKernel:
    """A kernel started with ``env`` added to ours; `run` executes one cell and measures it."""

    def __init__(self, env: dict[str, str], markers: list[bytes] | None = None) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENHOT_", "JPY_"))}
        full.update(TOKENHOT_HOME=tempfile.mkdtemp(), PYTHONUNBUFFERED="1", **env)
        self.cwd = tempfile.mkdtemp()
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=full, cwd=self.cwd)
        self.process = psutil.Process(self.km.provisioner.pid)  # type: ignore[union-attr]
        info = self.km.get_connection_info()
        url = f"{info['transport']}://{info['ip']}:{info['iopub_port']}"
        self.iopub = _Iopub(url, markers or [])
        self.iopub.start()
        self.client = self.km.client()
        self.client.start_channels(iopub=False, stdin=False, hb=False, control=False)
        self.client.wait_for_ready(timeout=60)

    def cpu(self) -> float:
        """CPU seconds the kernel process has used so far."""
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def send(self, code: str) -> str:
        """Start a cell; returns its request id."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}  # fmt: skip
        msg = self.client.session.msg(
            "execute_request", content, metadata={"cellId": uuid.uuid4().hex}
        )
        self.iopub.expect(msg["header"]["msg_id"])
        self.client.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def reply(self, msg_id: str, timeout: float = 900.0) -> dict[str, Any]:
        """The execute_reply of ``msg_id``."""
        end = time.monotonic() + timeout
        while True:
            msg = self.client.get_shell_msg(timeout=max(0.01, end - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return dict(msg)

    def run(self, code: str, *, check: bool = True) -> CellStats:
        """Execute ``code`` and wait for its reply and its last IOPub message."""
        cpu, started = self.cpu(), time.perf_counter()
        msg_id = self.send(code)
        reply = self.reply(msg_id)
        elapsed, used = time.perf_counter() - started, self.cpu() - cpu
        self.iopub.idle[msg_id].wait(30)
        with self.iopub.lock:
            stats = self.iopub.cells.pop(msg_id)
        stats.seconds, stats.cpu, stats.reply = elapsed, used, reply["content"]
        stats.status = reply["content"]["status"]
        if check and stats.status != "ok":
            raise RuntimeError(f"cell failed: {code[:60]!r}: {reply['content'].get('evalue')}")
        return stats

    def others(self) -> list[tuple[float, str, dict[str, Any]]]:
        """IOPub messages that belong to no cell this object ran (e.g. background updates)."""
        with self.iopub.lock:
            got, self.iopub.others = self.iopub.others, []
        return got

    def close(self) -> None:
        """Shut the kernel down."""
        self.client.stop_channels()
        self.iopub.close()
        self.km.shutdown_kernel(now=True)

    def __enter__(self) -> BenchKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
