"""A real ipykernel driven over ZMQ by jupyter_client, shared by the kernel tests.

The ``kernel`` fixture (in conftest.py) starts one against the test's simulator.
"""

from __future__ import annotations

import os
import queue
import time
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

TIMEOUT = 60.0  # generous: a reply on a loaded machine, never a speed check


class Kernel:
    """A running kernel with helpers that send execute requests carrying a cell id."""

    def __init__(self, km: Any) -> None:
        self.km = km
        self.client = km.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.backlog: list[dict[str, Any]] = []

    def send(self, code: str, cell_id: str | None = None, *, stop_on_error: bool = True) -> str:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": stop_on_error}  # fmt: skip
        msg = self.client.session.msg(
            "execute_request", content, metadata={"cellId": cell_id or uuid.uuid4().hex}
        )
        self.client.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def reply(self, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            msg = self.client.get_shell_msg(timeout=max(0.01, end - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg  # type: ignore[no-any-return]

    def iopub(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.client.get_iopub_msg(timeout=timeout)  # type: ignore[no-any-return]
        except queue.Empty:
            return None

    def until_idle(self, msg_id: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Every IOPub message of one request, up to its idle status."""
        got: list[dict[str, Any]] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self.iopub(0.2)
            if msg is None:
                continue
            self.backlog.append(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            got.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return got
        raise AssertionError(f"no idle for {msg_id}")

    def run(
        self, code: str, cell_id: str | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        msg_id = self.send(code, cell_id)
        messages = self.until_idle(msg_id)
        return self.reply(msg_id), messages

    def ok(self, code: str, cell_id: str | None = None) -> list[dict[str, Any]]:
        reply, messages = self.run(code, cell_id)
        assert reply["content"]["status"] == "ok", reply["content"]
        return messages

    def wait_for(self, predicate: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
        for seen in self.backlog:
            if predicate(seen):
                return seen
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self.iopub(0.2)
            if msg is not None:
                self.backlog.append(msg)
                if predicate(msg):
                    return msg
        raise AssertionError("the expected message never came")

    def stop(self) -> None:
        self.client.stop_channels()


def _start(sim: Any, tmp_path: Path) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENHOT_", "JPY_"))}
    env.update(
        TOKENHOT_BASE_URL=sim.base_url,
        TOKENHOT_API_KEY=sim.api_key,
        TOKENHOT_HOME=str(tmp_path / "home"),
        PYTHONUNBUFFERED="1",
    )
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(tmp_path), extra_arguments=[])
    return km


SETUP = (
    "%load_ext tokenhot_jupyter\n"
    "%config Tokenhot.video_poll_interval = 0.05\n"
    "%config Tokenhot.stream_interval = 0.05\n"
)
