"""The model picker and the task monitor, without a kernel: real widgets, a real
InteractiveShell and the simulator; values are set and buttons clicked as a frontend would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import ipywidgets as W
import pytest

from tokenhot_jupyter import ModelPicker, TaskMonitor
from tokenhot_jupyter._notebook._session import Session
from tokenhot_jupyter._widgets._common import UseLog
from tokenhot_jupyter._widgets._monitor import TaskView
from tokenhot_jupyter._widgets._picker import badge_label, matches

if TYPE_CHECKING:
    from magics_support import Gate, Shell

pytest_plugins = ("magics_support",)
VIDEO = "doubao-seedance-2.0-fast"


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _bodies(shell: Shell, path: str) -> list[Any]:
    return [r.json for r in shell.sim.requests if r.path.startswith(path) and r.method == "POST"]


def _labels(select: Any) -> list[str]:
    return [label for label, _ in select.options]


def _values(select: Any) -> list[str]:
    return [value for _, value in select.options]


def _compare(panel: Any, *models: str) -> None:
    assert panel.compare is not None
    panel.compare.value = models


@pytest.fixture
def picker(shell: Shell) -> Iterator[ModelPicker]:
    picker = ModelPicker(shell.session)
    picker.log.fold_seconds = 0.0  # every choice its own line, unless a test says otherwise
    yield picker
    picker.close()


# --- the lists ---------------------------------------------------------------------------------


def test_every_kind_lists_the_live_catalog_with_badges(picker: ModelPicker, shell: Shell) -> None:
    assert [p.kind for p in picker.panels.values()] == ["chat", "image", "video", "audio"]
    chat = _labels(picker.chat.models)
    assert "claude-opus-4-6  [Anthropic]  [live]" in chat
    assert any(label.startswith("grok-4.1  [xAI]") and "[inferred]" in label for label in chat)
    assert VIDEO in _values(picker.video.models) and "sora-2" in _values(picker.video.models)
    assert "whisper-1" not in _values(picker.audio.models)  # speech here; transcription below
    assert picker.audio.transcribe is not None and picker.audio.transcribe.value == "whisper-1"
    assert picker.chat.models.value == "gpt-5.4-mini"  # the current default is selected
    assert shell.session.live_models  # the live list was fetched once, for completion too
    assert picker.lines == []  # showing is not choosing


def test_search_filters_without_changing_the_choice(picker: ModelPicker, shell: Shell) -> None:
    picker.chat.search.value = "anthropic"
    assert all(v.startswith("claude") for v in _values(picker.chat.models))
    assert picker.chat.models.value is None  # gpt-5.4-mini is hidden, not replaced
    assert shell.session.model_for("chat") == "gpt-5.4-mini" and picker.lines == []
    picker.chat.search.value = "GOOGLE flash"  # every word, any case, id/vendor/family
    assert _values(picker.chat.models) == ["gemini-2.5-flash", "gemini-3-flash-preview"]
    picker.video.search.value = "hailuo"  # the family
    assert all("Hailuo" in v for v in _values(picker.video.models))
    picker.chat.search.value = ""
    assert picker.chat.models.value == "gpt-5.4-mini"


def test_badges_and_matching_are_plain_functions() -> None:
    from tokenhot_jupyter._catalog import Catalog

    model = Catalog().get("claude-opus-4-6-cc")
    assert badge_label(model) == "claude-opus-4-6-cc  [Anthropic]  [inferred]"
    assert matches(model, "anthropic CC") and not matches(model, "openai")


# --- choosing ----------------------------------------------------------------------------------


def test_a_choice_is_the_default_at_once_and_one_use_line(
    picker: ModelPicker, shell: Shell
) -> None:
    picker.chat.models.value = "claude-opus-4-6"
    assert shell.session.model_for("chat") == "claude-opus-4-6"
    assert picker.lines == ["%tokenhot use chat=claude-opus-4-6"]
    shell.ok("%%chat\nWho answers?")
    assert _bodies(shell, "/v1/messages")[-1]["model"] == "claude-opus-4-6"
    assert shell.final()["metadata"]["tokenhot"]["model"] == "claude-opus-4-6"
    picker.image.models.value = "dall-e-3"
    picker.video.models.value = "sora-2"
    picker.audio.models.value = "tts-1"
    assert picker.lines[1:] == [
        "%tokenhot use image=dall-e-3", "%tokenhot use video=sora-2", "%tokenhot use audio=tts-1",
    ]  # fmt: skip


def test_quick_changes_to_one_setting_fold_into_one_line(shell: Shell) -> None:
    now = [100.0]
    log = UseLog(fold_seconds=2.0, clock=lambda: now[0])
    for model in ("gpt-5", "gpt-5.2", "gpt-5.4"):  # arrow keys through the list
        log.add("chat", f"%tokenhot use chat={model}")
        now[0] += 0.3
    log.add("image", "%tokenhot use image=dall-e-3")
    now[0] += 5
    log.add("image", "%tokenhot use image=dall-e-2")
    assert log.lines == [
        "%tokenhot use chat=gpt-5.4",
        "%tokenhot use image=dall-e-3",
        "%tokenhot use image=dall-e-2",
    ]
    assert log.text().splitlines()[0] == UseLog.HEADER


def test_the_use_log_is_a_plain_text_output_updated_in_place(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tokenhot_jupyter._widgets as widgets

    shown: list[ModelPicker | None] = []
    show = widgets.show_picker
    monkeypatch.setattr(widgets, "show_picker", lambda *a: shown.append(show(*a)))
    shell.ok("%tokenhot picker")
    widget, log = shell.outputs[-2:]
    assert "application/vnd.jupyter.widget-view+json" in widget["data"]
    assert widget["data"]["text/plain"].startswith("Model picker, opened with chat: gpt-5.4-mini")
    assert set(log["data"]) == {"text/plain"} and not log["update"]
    display_id = log["transient"]["display_id"]
    (picker,) = shown
    assert picker is not None
    picker.chat.models.value = "gpt-5"
    update = shell.outputs[-1]
    assert update["update"] and update["transient"]["display_id"] == display_id
    assert update["data"] == {"text/plain": f"{UseLog.HEADER}\n%tokenhot use chat=gpt-5"}
    picker.close()


def test_the_picker_follows_a_typed_use(picker: ModelPicker, shell: Shell) -> None:
    shell.ok("%tokenhot use chat=gpt-5 transcribe=whisper-1")
    assert picker.chat.models.value == "gpt-5" and picker.lines == []


def test_a_refused_choice_shows_why_and_changes_nothing(picker: ModelPicker, shell: Shell) -> None:
    picker.chat.choose("no-such-model")
    assert "no-such-model" in picker.chat.note.value and "⚠" in picker.chat.note.value
    assert shell.session.model_for("chat") == "gpt-5.4-mini"
    assert picker.chat.models.value == "gpt-5.4-mini" and picker.lines == []


def test_a_model_outside_the_list_is_named(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHOT_CHAT_MODEL", "my-private-model")
    picker = ModelPicker(shell.session)
    assert picker.chat.models.value is None and "not in the list" in picker.chat.info.value
    assert picker.chat.params == {}
    picker.close()


def test_without_the_live_list_the_catalog_is_shown(shell: Shell) -> None:
    shell.session.client()._async._conn.max_retries = 0
    shell.sim.faults.add("500", path="/v1/models", method="GET", times=-1)
    picker = ModelPicker(shell.session)
    assert "did not answer" in picker.note.value
    assert "claude-opus-4-6  [Anthropic]" in _labels(picker.chat.models)  # no [live] badges
    picker.close()


# --- parameters ---------------------------------------------------------------------------------


def test_parameters_become_defaults_under_the_flags(picker: ModelPicker, shell: Shell) -> None:
    assert list(picker.chat.params) == ["temperature", "max_tokens", "reasoning"]
    assert all(c.value is None for c in picker.chat.params.values())  # the model's defaults
    picker.chat.params["temperature"].value = 0.3
    picker.chat.params["max_tokens"].value = 200
    assert shell.session.param_defaults["chat"] == {"temperature": 0.3, "max_tokens": 200}
    assert picker.lines == [
        "%tokenhot use chat.temperature=0.3",
        "%tokenhot use chat.max_tokens=200",
    ]
    shell.ok("%%chat\nHi")
    body = _bodies(shell, "/v1/chat/completions")[-1]
    assert body["temperature"] == 0.3 and body["max_tokens"] == 200
    shell.ok("%%chat --temperature 0.9\nHi")  # a flag wins
    assert _bodies(shell, "/v1/chat/completions")[-1]["temperature"] == 0.9
    picker.chat.params["temperature"].value = None
    assert picker.lines[-1] == "%tokenhot use chat.temperature=default"
    shell.ok("%%chat\nHi")
    assert "temperature" not in _bodies(shell, "/v1/chat/completions")[-1]


def test_the_checkbox_and_slider_are_what_a_user_touches(picker: ModelPicker) -> None:
    control = picker.chat.params["temperature"]
    checkbox, slider = control.widget.children
    assert slider.disabled and control.value is None
    checkbox.value = True  # the user ticks it: the slider's value applies
    assert not slider.disabled and control.value == slider.value == 1.0
    slider.value = 0.25
    assert picker.session.param_defaults["chat"]["temperature"] == 0.25
    assert picker.lines[-1] == "%tokenhot use chat.temperature=0.25"


def test_a_default_applies_only_where_the_model_accepts_it(
    picker: ModelPicker, shell: Shell
) -> None:
    picker.image.models.value = "gpt-image-2"
    picker.image.params["size"].value = "1536x1024"
    picker.image.params["n"].value = 2
    shell.ok("%%image\nA fox")
    body = _bodies(shell, "/v1/images/generations")[-1]
    assert body["size"] == "1536x1024" and body["n"] == 2
    picker.image.models.value = "doubao-seedream-4-0-250828"  # another size list
    assert picker.image.params["size"].value is None  # shown as the model's default
    assert picker.image.params["n"].value == 2  # still allowed (1 to 4)
    shell.ok("%%image\nA fox")
    body = _bodies(shell, "/v1/images/generations")[-1]
    assert body["model"] == "doubao-seedream-4-0-250828"
    assert body.get("size") != "1536x1024"
    shell.ok("%%image -m gpt-image-2 -n 1\nA fox")  # the default still holds where it fits
    body = _bodies(shell, "/v1/images/generations")[-1]
    assert body["size"] == "1536x1024" and body["n"] == 1


def test_video_and_voice_parameters_reach_the_magics(picker: ModelPicker, shell: Shell) -> None:
    duration = picker.video.params["duration"]
    dropdown = duration.widget
    assert [v for _, v in dropdown.options][1:3] == [4, 5]  # the model's own choices
    assert dropdown.label == "default (5)" and duration.value is None  # shown, not blank
    duration.value = 8
    picker.video.params["ratio"].value = "9:16"
    shell.ok("%%video\nA slow pan")
    body = json.dumps(_bodies(shell, "/v1/video/generations")[-1])
    assert ('"seconds": "8"' in body or '"duration": 8' in body) and '"9:16"' in body
    duration.value = None
    assert (
        dropdown.label == "default (5)"
        and picker.lines[-1] == "%tokenhot use video.duration=default"
    )
    duration.value = 8
    picker.audio.params["voice"].value = "Puck"
    shell.ok("%%speak\nHello")
    assert "Puck" in json.dumps(shell.sim.requests[-1].json)
    assert picker.lines[-1] == "%tokenhot use audio.voice=Puck"


def test_use_takes_parameters_by_hand(shell: Shell) -> None:
    shell.ok("%tokenhot use chat=gpt-5 chat.temperature=0.4 video.duration=6")
    assert "chat.temperature: 0.4" in shell.final()["data"]["text/plain"]
    assert shell.session.param_defaults == {"chat": {"temperature": 0.4}, "video": {"duration": 6}}
    result = shell.run("%tokenhot use chat.size=2K")
    assert "has no parameter 'size'" in str(result.error_in_exec)
    result = shell.run("%tokenhot use video.duration=99")
    assert "not available" in str(result.error_in_exec)
    shell.ok("%tokenhot use chat.temperature=default")
    assert shell.session.param_defaults["chat"] == {}


def test_params_for_is_the_precedence(shell: Shell) -> None:
    session: Session = shell.session
    session.use_param("image", "size", "1024x1536")
    assert session.params_for("image", ["gpt-image-2"], {"size": None, "n": None}) == {
        "size": "1024x1536"
    }
    assert session.params_for("image", ["gpt-image-2"], {"size": "auto"}) == {"size": "auto"}
    mixed = ["gpt-image-2", "doubao-seedream-4-0-250828"]  # one of them has no such size
    assert session.params_for("image", mixed, {}) == {}
    assert session.params_for("image", ["gpt-image-2", "no-such"], {}) == {"size": "1024x1536"}
    assert session.params_for("chat", ["gpt-5"], {"temperature": None}) == {}


# --- the comparison set and "Try it" ---------------------------------------------------------


def test_the_comparison_set_survives_searching(picker: ModelPicker) -> None:
    assert picker.video.compare is None and picker.chat.compare is not None
    _compare(picker.chat, "gpt-5.4-mini", "claude-opus-4-6")
    assert picker.lines == ["# Try it compares: %%chat -m gpt-5.4-mini,claude-opus-4-6"]
    picker.chat.search.value = "gemini"
    assert picker.chat.compared == ["gpt-5.4-mini", "claude-opus-4-6"]
    assert "gemini-2.5-pro" in picker.chat.compare.options and len(picker.lines) == 1
    _compare(picker.chat)
    assert picker.lines[-1] == "# Try it runs the chat default"


def test_try_it_compares_side_by_side_with_errors_in_their_column(
    picker: ModelPicker, shell: Shell
) -> None:
    shell.session.client()  # built before the fault
    shell.sim.faults.add("500", path="/v1/messages", method="POST", times=-1)
    _compare(picker.chat, "gpt-5.4-mini", "claude-opus-4-6")
    picker.try_it.prompt.value = "Name a colour"
    picker.try_it.run_button.click()
    assert picker.try_it.future is not None
    picker.try_it.future.result(timeout=30)
    (grid,) = picker.try_it.output.outputs
    assert set(grid["data"]) == {"text/html", "text/plain"}  # the magic's comparison grid
    html = grid["data"]["text/html"]
    assert html.startswith("<table") and "gpt-5.4-mini" in html and "claude-opus-4-6" in html
    assert "Name a colour" in html and "⚠" in html and "failed" in html
    assert "── claude-opus-4-6 · failed ──" in grid["data"]["text/plain"]
    assert not picker.try_it.run_button.disabled and picker.try_it.status.value == ""
    assert shell.session.threads.of(shell.session.notebook) == []  # no notebook turn taken


def test_try_it_runs_models_concurrently(
    picker: ModelPicker, shell: Shell, gate: Callable[[int], Gate]
) -> None:
    _compare(picker.chat, "gpt-5.4-mini", "gpt-5", "claude-opus-4-6")
    picker.try_it.prompt.value = "Warm up"
    picker.try_it.run().result(timeout=60)
    all_at_once = gate(3)  # the three requests get through only when all three are in flight
    picker.try_it.run().result(timeout=60)
    html = picker.try_it.output.outputs[-1]["data"]["text/html"]
    assert all_at_once.arrived == 3 and "failed" not in html, html


def test_try_it_one_model_streams_like_chat(picker: ModelPicker, shell: Shell) -> None:
    shell.session.config.stream_interval = 0.0
    picker.chat.models.value = "gemini-2.5-flash"
    picker.chat.params["temperature"].value = 0.2
    picker.try_it.prompt.value = "Hello"
    picker.try_it.run().result(timeout=30)
    answer = picker.try_it.output.outputs[-1]
    assert set(answer["data"]) == {"text/markdown", "text/plain"}
    meta = answer["metadata"]["tokenhot"]
    assert meta["model"] == "gemini-2.5-flash" and meta["params"]["temperature"] == 0.2
    assert len(picker.try_it.output.outputs) == 1  # streamed in place, not appended


def test_try_it_shows_dollars_as_text_in_one_answer_and_in_columns(
    picker: ModelPicker, shell: Shell
) -> None:
    from jupyter_maths import mathjax, typeset
    from markdown_it import MarkdownIt

    render = MarkdownIt("commonmark").render
    picker.try_it.prompt.value = "A bat and a ball cost $1.10. The bat costs $1.00 more."
    picker.chat.models.value = "gpt-5.4-mini"
    picker.try_it.run().result(timeout=30)
    seen = typeset(picker.try_it.output.outputs[-1]["data"]["text/markdown"], render)
    assert seen.maths == [] and "cost $1.10. The bat costs $1.00 more." in seen.text
    _compare(picker.chat, "gpt-5.4-mini", "claude-opus-4-6")
    picker.try_it.run().result(timeout=30)
    columns = mathjax(picker.try_it.output.outputs[-1]["data"]["text/html"])
    assert columns.maths == [] and columns.text.count("The bat costs $1.00 more.") == 2


def test_try_it_shows_a_picture_in_a_reply_as_a_link(picker: ModelPicker, shell: Shell) -> None:
    from markdown_it import MarkdownIt

    picker.try_it.prompt.value = "Look ![chart](https://evil.example/leak.png?d=1)"
    picker.chat.models.value = "gpt-5.4-mini"
    picker.try_it.run().result(timeout=30)
    rendered = MarkdownIt("commonmark").render(
        picker.try_it.output.outputs[-1]["data"]["text/markdown"]
    )
    assert "<img" not in rendered and ">image: chart</a>" in rendered
    _compare(picker.chat, "gpt-5.4-mini", "claude-opus-4-6")
    picker.try_it.run().result(timeout=30)
    assert "<img" not in picker.try_it.output.outputs[-1]["data"]["text/html"]


def test_try_it_images_and_kinds_it_cannot_try(picker: ModelPicker, shell: Shell) -> None:
    picker.tabs.selected_index = 1
    _compare(picker.image, "gpt-image-2", "dall-e-2")
    picker.try_it.prompt.value = "A paper crane"
    picker.try_it.run().result(timeout=30)
    html = picker.try_it.output.outputs[-1]["data"]["text/html"]
    assert html.count("<img src='data:image/png;base64,") == 2
    picker.tabs.selected_index = 2  # video
    assert picker.try_it.run_button.disabled and "chat and image" in picker.try_it.status.value
    before = len(shell.sim.requests)
    picker.try_it.run().result(timeout=30)
    assert len(shell.sim.requests) == before
    picker.tabs.selected_index = 0
    picker.try_it.prompt.value = "  "
    picker.try_it.run().result(timeout=30)
    assert "Write a prompt" in picker.try_it.status.value


def test_try_it_when_every_model_fails(picker: ModelPicker, shell: Shell) -> None:
    shell.session.client()._async._conn.max_retries = 0
    shell.sim.faults.add("500", path="/v1/chat/completions", method="POST", times=-1)
    picker.try_it.prompt.value = "Hi"
    picker.try_it.run().result(timeout=30)
    note = picker.try_it.output.outputs[-1]["data"]["text/plain"]
    assert note.startswith("ServerError:") and not picker.try_it.run_button.disabled


# --- nothing leaks; text where widgets cannot show -------------------------------------------


def test_no_widget_holds_the_key(picker: ModelPicker, shell: Shell) -> None:
    picker.try_it.prompt.value = "Hi"
    picker.try_it.run().result(timeout=30)
    shell.sim.faults.add("500", path="/v1/chat/completions", method="POST", times=-1)
    picker.try_it.run().result(timeout=30)
    from ipywidgets.widgets.widget import _instances

    state = json.dumps([w.get_state() for w in list(_instances.values())], default=str)
    assert shell.sim.api_key not in state and shell.sim.api_key not in picker.log.text()


def test_terminal_gets_text(shell: Shell, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.displaypub import DisplayPublisher

    capturing, shell.ip.display_pub = shell.ip.display_pub, DisplayPublisher(shell=shell.ip)  # type: ignore[no-untyped-call]
    try:
        assert shell.ip.run_cell("%tokenhot picker").success
        out = capsys.readouterr().out
        assert shell.ip.run_cell("%tokenhot tasks --live").success
        later = capsys.readouterr().out
    finally:
        shell.ip.display_pub = capturing
    assert "claude-opus-4-6" in out and "%tokenhot use chat=MODEL" in out
    assert "chat.temperature=0.3" in out and "application/vnd" not in out
    out = later
    assert "No video tasks yet." in out and "needs Jupyter widgets" in out


def test_model_picker_finds_the_running_shell(shell: Shell) -> None:
    picker = ModelPicker()  # as tokenhot_jupyter.ModelPicker() in a notebook
    assert picker.session is shell.session
    picker.close()


# --- the task monitor ----------------------------------------------------------------------------


@pytest.fixture
def monitor(shell: Shell) -> Iterator[TaskMonitor]:
    monitor = TaskMonitor(shell.session, interval=0.05)
    yield monitor
    monitor.close()


def _row(monitor: TaskMonitor) -> TaskView:
    assert len(monitor.rows) == 1
    return next(iter(monitor.rows.values()))


def test_the_monitor_follows_progress_and_completion(monitor: TaskMonitor, shell: Shell) -> None:
    assert monitor.rows == {}
    shell.ok("%%video --duration 5 -o job\nA dog on a beach")
    job = shell.ip.user_ns["job"]
    _wait_for(lambda: job.task_id in monitor.rows)  # added by the poller's callback
    row = _row(monitor)
    assert "dog on a beach" in row.title.value and VIDEO in row.title.value
    assert not row.cancel.disabled and row.show.disabled
    shell.sim.clock.advance(30)  # the gateway's ladder: running, 50 %
    _wait_for(lambda: job.task.progress == 50)
    _wait_for(lambda: row.progress.value == 50)  # the flusher thread, not this test, applied it
    assert row.status.value.startswith("running · ") and row.progress.bar_style == "info"
    shell.sim.clock.advance(600)
    _wait_for(lambda: job.phase == "done")
    _wait_for(lambda: not row.show.disabled)
    assert row.progress.value == 100 and row.progress.bar_style == "success"
    assert row.status.value.startswith("done · ") and row.cancel.disabled
    row.show.click()
    (card,) = monitor.output.outputs
    assert "<video" in card["data"]["text/html"] and job.task_id in card["data"]["text/plain"]


def test_cancel_then_attach(monitor: TaskMonitor, shell: Shell) -> None:
    shell.ok("%%video -o job\nA slow sunset")
    job = shell.ip.user_ns["job"]
    _wait_for(lambda: job.task_id in monitor.rows)
    row = _row(monitor)
    row.cancel.click()
    assert job.phase == "stopped"
    monitor.flush()
    assert row.status.value.startswith("stopped") and row.progress.bar_style == "warning"
    assert row.cancel.disabled and not row.attach.disabled
    row.attach.click()
    assert job.phase == "polling"
    monitor.flush()
    assert not row.cancel.disabled and row.attach.disabled


def test_journal_rows_of_another_kernel(shell: Shell) -> None:
    shell.ok("%%video -o job\nA red kite")
    job = shell.ip.user_ns["job"]
    other = Session(shell.ip)  # a new kernel: same journal, nothing followed yet
    monitor = TaskMonitor(other)
    row = _row(monitor)
    assert row.status.value.startswith("queued (not polled here)") or "running" in row.status.value
    assert row.cancel.disabled and not row.attach.disabled and row.show.disabled
    row.attach.click()
    followed = other.tasks().get(job.task_id)
    assert followed is not None
    monitor.flush()
    assert row.source is followed and not row.cancel.disabled
    monitor.close()
    other.close()


def test_a_finished_journal_row_can_be_shown(shell: Shell) -> None:
    shell.ok("%%video -o job\nA lighthouse")
    job = shell.ip.user_ns["job"]
    shell.sim.clock.advance(600)
    _wait_for(lambda: job.phase == "done")
    other = Session(shell.ip)
    monitor = TaskMonitor(other)
    row = _row(monitor)
    assert not row.show.disabled and row.progress.bar_style == "success"
    row.show.click()
    assert "<video" in monitor.output.outputs[0]["data"]["text/html"]
    assert shell.sim.requests[-1].path != f"/v1/video/generations/{job.task_id}"  # no polling
    monitor.close()
    other.close()


def test_callbacks_only_queue_and_bursts_are_batched(shell: Shell) -> None:
    shell.ok("%%video -o job\nA busy street")
    job = shell.ip.user_ns["job"]
    monitor = TaskMonitor(shell.session, interval=30.0)
    flushes = monitor.flushes
    sent: list[str] = []
    original = W.Widget._send

    def counting(self: Any, msg: Any, buffers: Any = None) -> None:
        sent.append(type(self).__name__)

    W.Widget._send = counting
    try:

        def burst() -> None:  # as twenty pollers would, from another thread
            for _ in range(500):
                monitor._on_change(job)

        thread = threading.Thread(target=burst)
        thread.start()
        thread.join()
        _wait_for(lambda: monitor.flushes >= flushes + 1)
        time.sleep(0.2)  # a flusher that ignored its interval would flush again here
        assert monitor.flushes == flushes + 1  # 500 callbacks, one batch
        assert len(sent) <= 8  # one row's widgets, at most once each
    finally:
        W.Widget._send = original
        monitor.close()


def test_closing_stops_listening(monitor: TaskMonitor, shell: Shell) -> None:
    subscribers = shell.session.tasks()._subscribers
    assert monitor._on_change in subscribers
    monitor.close()
    assert monitor._on_change not in subscribers
    shell.ok("%%video\nA quiet lake")
    time.sleep(0.2)
    assert monitor.rows == {}


def test_tasks_live_shows_the_monitor(shell: Shell) -> None:
    shell.ok("%%video\nA bright comet")
    shell.ok("%tokenhot tasks --live")
    (shown,) = shell.outputs
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]
    assert "A bright comet" in shown["data"]["text/plain"]  # the saved notebook's text


def _table_status(session: Session, task_id: str) -> str:
    row = next(r for r in session.tasks().table()["text/plain"].splitlines() if task_id in r)
    return row.split()[2]


def test_the_monitor_and_the_table_use_one_vocabulary(monitor: TaskMonitor, shell: Shell) -> None:
    shell.ok("%%video -o job\nA kite in the wind")
    job = shell.ip.user_ns["job"]
    _wait_for(lambda: job.task_id in monitor.rows)
    row = _row(monitor)
    row.cancel.click()
    monitor.flush()
    assert row.status.value.split(" · ")[0] == _table_status(shell.session, job.task_id)
    assert row.status.value.startswith("stopped") and "billed" in (row.status.tooltip or "")
    other = Session(shell.ip)  # a new kernel: only the journal knows the task
    later = TaskMonitor(other)
    try:
        (view,) = later.rows.values()
        assert view.status.value.startswith("stopped · ")
        assert _table_status(other, job.task_id) == "stopped" and not view.attach.disabled
    finally:
        later.close()
        other.close()


def test_the_compare_list_is_tick_boxes_a_newcomer_can_read(picker: ModelPicker) -> None:
    compare = picker.chat.compare
    assert compare is not None
    boxes = {box.description: box for box in compare.boxes()}
    assert list(boxes) == list(compare.options) and all(
        isinstance(b, W.Checkbox) for b in boxes.values()
    )
    assert "tick" in compare.heading.value.lower() and "side by side" in compare.heading.value
    boxes["claude-opus-4-6"].value = True  # what a click does
    boxes["gpt-5.4-mini"].value = True
    assert picker.chat.compared == ["claude-opus-4-6", "gpt-5.4-mini"], "in the order ticked"
    assert picker.lines[-1] == "# Try it compares: %%chat -m claude-opus-4-6,gpt-5.4-mini"
    boxes["claude-opus-4-6"].value = False
    assert picker.chat.compared == ["gpt-5.4-mini"]
    picker.chat.search.value = "gemini"  # a ticked model stays listed, and ticked
    shown = {box.description: box.value for box in compare.boxes()}
    assert shown["gpt-5.4-mini"] is True and "gemini-2.5-pro" in shown
    compare.value = ()  # the session or a test may set it too; the boxes follow
    assert not any(box.value for box in compare.boxes())
