"""The picker and the monitor in a real ipykernel, driven over ZMQ like a frontend would.

A choice is made the way JupyterLab makes it (a ``comm_msg`` that sets the list's index)
or by setting the widget's value in the kernel; either way the next ``%%chat`` must use
it.  The monitor must update from the background poller while the kernel is idle.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.kernel
pytest.importorskip("ipykernel")

from kernel_support import Kernel  # noqa: E402  (the shared kernel driver)

HEADER = "Model picker: each choice applies at once"


def _of(messages: list[dict[str, Any]], msg_type: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["msg_type"] == msg_type]


def _text(msg: dict[str, Any]) -> str:
    return str(msg["content"].get("data", {}).get("text/plain", ""))


def _state(msg: dict[str, Any]) -> dict[str, Any]:
    return msg["content"]["data"].get("state", {})  # type: ignore[no-any-return]


def _widget_states(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every widget's state as a frontend sees it: comm_open, then comm_msg updates."""
    states: dict[str, dict[str, Any]] = {}
    for m in messages:
        if m["msg_type"] in ("comm_open", "comm_msg"):
            states.setdefault(m["content"]["comm_id"], {}).update(_state(m))
    return states


def _log_update(kernel: Kernel, line: str) -> dict[str, Any]:
    return kernel.wait_for(
        lambda m: m["msg_type"] == "update_display_data" and line in _text(m).splitlines()
    )


def _asked(sim: Any, model: str) -> bool:
    return any(r.path == "/v1/messages" and (r.json or {}).get("model") == model
               for r in sim.requests)  # fmt: skip


def test_a_frontend_click_changes_the_model_chat_uses_next(
    kernel: Kernel, tokenhot_simulator: Any
) -> None:
    shown = kernel.send("%tokenhot picker", cell_id="picker")
    messages = kernel.until_idle(shown)
    assert kernel.reply(shown)["content"]["status"] == "ok"
    log = next(m for m in _of(messages, "display_data") if _text(m).startswith(HEADER))
    comm_id, labels = next(
        (comm_id, state["_options_labels"])
        for comm_id, state in _widget_states(messages).items()
        if state.get("_model_name") == "SelectModel"
        and any(label.startswith("claude-opus-4-6 ") for label in state["_options_labels"])
    )
    index = next(i for i, label in enumerate(labels) if label.split()[0] == "claude-opus-4-6")
    click = kernel.client.session.msg(
        "comm_msg",
        {"comm_id": comm_id,
         "data": {"method": "update", "state": {"index": index}, "buffer_paths": []}},
    )  # fmt: skip
    kernel.client.shell_channel.send(click)
    update = _log_update(kernel, "%tokenhot use chat=claude-opus-4-6")
    assert update["content"]["transient"] == log["content"]["transient"]
    assert update["parent_header"]["msg_id"] == shown  # lands in the picker's own cell
    messages = kernel.ok("%%chat\nWho is answering?", cell_id="chat")
    final = [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")][-1]
    assert final["content"]["metadata"]["tokenhot"]["model"] == "claude-opus-4-6"
    assert _asked(tokenhot_simulator, "claude-opus-4-6")
    assert tokenhot_simulator.api_key not in str(kernel.backlog)


def test_values_set_in_the_kernel_reach_the_next_chat(
    kernel: Kernel, tokenhot_simulator: Any
) -> None:
    kernel.ok(
        "from tokenhot_jupyter import ModelPicker\npicker = ModelPicker()\ndisplay(picker)",
        cell_id="picker",
    )
    kernel.ok("picker.chat.models.value = 'claude-opus-4-6'", cell_id="choose")
    kernel.ok("picker.chat.params['temperature'].value = 0.2", cell_id="temperature")
    _log_update(kernel, "%tokenhot use chat.temperature=0.2")
    kernel.ok("%%chat\nHello", cell_id="chat")
    body = [r.json for r in tokenhot_simulator.requests if r.path == "/v1/messages"][-1]
    assert body["model"] == "claude-opus-4-6" and body["temperature"] == 0.2
    kernel.ok("%%chat -m gpt-5.4-mini --temperature 0.7\nHello", cell_id="flag")
    body = [r.json for r in tokenhot_simulator.requests if r.path == "/v1/chat/completions"][-1]
    assert body["temperature"] == 0.7


def test_the_monitor_updates_from_background_polling(
    kernel: Kernel, tokenhot_simulator: Any
) -> None:
    kernel.ok("%tokenhot tasks --live", cell_id="monitor")
    video = kernel.send("%%video --duration 5\nA dog running on a beach", cell_id="video")
    assert kernel.reply(video)["content"]["status"] == "ok"
    bar = kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_open" and _state(m).get("_model_name") == "IntProgressModel"
        )
    )
    show = kernel.wait_for(
        lambda m: m["msg_type"] == "comm_open" and _state(m).get("description") == "Show"
    )
    assert _state(show)["disabled"] is True
    tokenhot_simulator.clock.advance(30)  # running, 50 %

    def sets(comm: dict[str, Any], **values: Any) -> Any:
        def check(m: dict[str, Any]) -> bool:
            if m["msg_type"] != "comm_msg" or m["content"]["comm_id"] != comm["content"]["comm_id"]:
                return False
            return all(_state(m).get(k) == v for k, v in values.items())

        return check

    kernel.wait_for(sets(bar, value=50))
    tokenhot_simulator.clock.advance(600)
    kernel.wait_for(sets(bar, value=100))
    kernel.wait_for(sets(show, disabled=False))  # the video is saved: Show works
