"""The magics in a real ipykernel, driven over ZMQ by jupyter_client, against the simulator.

No wall-clock sleeps on video timings: the simulator's clock is advanced by hand and the
tests wait for messages with timeouts.
"""

from __future__ import annotations

import os
import queue
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kernel
pytest.importorskip("ipykernel")
jc_manager = pytest.importorskip("jupyter_client.manager")

TIMEOUT = 20.0


class Kernel:
    """A running kernel with helpers that send execute requests carrying a cell id."""

    def __init__(self, km: Any) -> None:
        self.km = km
        self.client = km.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.backlog: list[dict[str, Any]] = []

    def send(self, code: str, cell_id: str | None = None) -> str:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}  # fmt: skip
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
        for msg in self.backlog:
            if predicate(msg):
                return msg
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
    km = jc_manager.KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(tmp_path), extra_arguments=[])
    return km


SETUP = (
    "%load_ext tokenhot_jupyter\n"
    "%config Tokenhot.video_poll_interval = 0.05\n"
    "%config Tokenhot.stream_interval = 0.05\n"
)


@pytest.fixture
def kernel(tokenhot_simulator: Any, tmp_path: Path) -> Iterator[Kernel]:
    km = _start(tokenhot_simulator, tmp_path)
    kernel = Kernel(km)
    try:
        kernel.ok(SETUP)
        yield kernel
    finally:
        kernel.stop()
        km.shutdown_kernel(now=True)


def _displays(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]


def test_kernel_uses_this_python(kernel: Kernel) -> None:
    messages = kernel.ok("import sys; print(sys.executable)")
    out = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert Path(out.strip()).resolve().parent == Path(sys.executable).resolve().parent


def test_chat_streams_throttled_updates(kernel: Kernel, tokenhot_simulator: Any) -> None:
    tokenhot_simulator.token_delay = 0.005
    messages = kernel.ok("%%chat\nPlease write a long story " + "word " * 40, cell_id="chat-1")
    shown = _displays(messages)
    first, updates = shown[0], shown[1:]
    assert first["msg_type"] == "display_data"
    assert all(m["msg_type"] == "update_display_data" for m in updates)
    display_id = first["content"]["transient"]["display_id"]
    assert all(m["content"]["transient"]["display_id"] == display_id for m in updates)
    final = updates[-1]["content"]
    assert set(final["data"]) == {"text/markdown", "text/plain"}
    words = len(final["data"]["text/plain"].split())
    assert 3 <= len(updates) < words / 2  # several live updates, far fewer than tokens
    assert final["metadata"]["tokenhot"]["model"] == "gpt-5.4-mini"
    assert tokenhot_simulator.api_key not in str(messages)


def test_rerun_in_the_kernel_replaces_the_turn(kernel: Kernel) -> None:
    kernel.ok("%%chat\nOne", cell_id="a")
    kernel.ok("%%chat\nTwo", cell_id="b")
    messages = kernel.ok("%%chat\nOne again", cell_id="a")
    final = _displays(messages)[-1]["content"]["data"]["text/plain"]
    assert "no earlier turns sent" in final
    second = _displays(kernel.ok("%%chat\nTwo again", cell_id="b"))[-1]["content"]["data"][
        "text/plain"
    ]
    assert "1 earlier turn sent" in second


def test_errors_fail_the_cell_with_one_line(kernel: Kernel) -> None:
    reply, messages = kernel.run("%%chat -m no-such-model\nHi")
    assert reply["content"]["status"] == "error"
    errors = [m for m in messages if m["msg_type"] == "error"]
    assert len(errors) == 1 and errors[0]["content"]["traceback"] == [
        errors[0]["content"]["traceback"][0]
    ]
    assert errors[0]["content"]["traceback"][0].startswith("UnknownModelError:")
    reply, _ = kernel.run("%%chat --temperature warm\nHi")
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "UsageError"


def test_video_returns_at_once_then_updates_its_own_cell(
    kernel: Kernel, tokenhot_simulator: Any
) -> None:
    started = time.monotonic()
    video_id = kernel.send("%%video --duration 5\nA dog running on a beach", cell_id="video-cell")
    reply = kernel.reply(video_id)
    elapsed = time.monotonic() - started
    assert reply["content"]["status"] == "ok" and elapsed < 1.0
    card = kernel.wait_for(
        lambda m: m["msg_type"] == "display_data" and m["parent_header"].get("msg_id") == video_id
    )
    display_id = card["content"]["transient"]["display_id"]
    other = kernel.ok("x = 40 + 2\nprint(x)", cell_id="other-cell")  # runs while the task runs
    assert any("42" in m["content"].get("text", "") for m in other if m["msg_type"] == "stream")
    tokenhot_simulator.clock.advance(600)
    done = kernel.wait_for(
        lambda m: (
            m["msg_type"] == "update_display_data"
            and m["content"]["transient"]["display_id"] == display_id
            and "<video" in m["content"]["data"].get("text/html", "")
        )
    )
    assert done["parent_header"]["msg_id"] == video_id  # the FIRST cell's request
    meta = done["content"]["metadata"]["tokenhot"]
    assert meta["task_id"].startswith("task_") and tokenhot_simulator.api_key not in str(done)


def test_restart_then_attach(kernel: Kernel, tokenhot_simulator: Any) -> None:
    msgs = kernel.ok("%%video\nA slow sunset", cell_id="v")
    card = _displays(msgs)[-1]
    task_id = card["content"]["metadata"]["tokenhot"]["task_id"]
    kernel.km.restart_kernel(now=True)
    kernel.client.wait_for_ready(timeout=60)
    kernel.backlog.clear()
    kernel.ok(SETUP)
    tokenhot_simulator.clock.advance(600)
    attach_id = kernel.send(f"%tokenhot attach {task_id}", cell_id="attach")
    assert kernel.reply(attach_id)["content"]["status"] == "ok"
    kernel.wait_for(
        lambda m: (
            m["msg_type"] in ("display_data", "update_display_data")
            and m["parent_header"].get("msg_id") == attach_id
            and "<video" in m["content"]["data"].get("text/html", "")
        )
    )
    _, messages = kernel.run("%tokenhot tasks")
    assert task_id in str(messages)
