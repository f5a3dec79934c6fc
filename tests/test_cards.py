"""Task cards: plain mime bundles that render without a kernel and never leak the key."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from tokenhot_jupyter import _cards
from tokenhot_jupyter._cards import CardInfo, Phase, format_elapsed, render, tasks_table
from tokenhot_jupyter._journal import TaskRow
from tokenhot_jupyter._redact import register_secret

KEY = "sk-cardtest0123456789abcdefXYZ"
PHASES: tuple[Phase, ...] = typing.get_args(Phase)
INFO = CardInfo(
    task_id="task_abc",
    model="sora-2",
    prompt="A <b>cat</b> & a dog, surfing",
    params={"duration": 4, "ratio": "16:9"},
    status="running",
    progress=40,
    elapsed=75.0,
    created_at=1_700_000_000.0,
)


@pytest.mark.parametrize("phase", PHASES)
def test_every_card_is_a_plain_bundle_with_provenance(phase: Phase) -> None:
    data, meta = render(phase, INFO)
    assert set(data) == {"text/plain", "text/html"}
    assert "task_abc" in data["text/plain"] and "sora-2" in data["text/plain"]
    assert "<script" not in data["text/html"] and "data:" not in data["text/html"]
    info = meta["tokenhot"]
    assert info["task_id"] == "task_abc" and info["model"] == "sora-2" and info["phase"] == phase
    assert info["params"] == {"duration": 4, "ratio": "16:9"} and info["status"] == "running"
    assert info["elapsed_s"] == 75.0 and info["created_at"] == 1_700_000_000.0


@pytest.mark.parametrize("phase", PHASES)
def test_user_text_is_escaped(phase: Phase) -> None:
    hostile = CardInfo(
        "task_<x>", "m<i>", prompt="<script>alert(1)</script>", error="<img src=x onerror=1>",
        warning="<b>w</b>", src="out/<a>.mp4",
    )  # fmt: skip
    html = render(phase, hostile)[0]["text/html"]
    for raw in ("<script>", "<img", "<b>w</b>", "m<i>", "task_<x>"):
        assert raw not in html, (phase, raw)
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize("phase", PHASES)
def test_the_key_never_appears(phase: Phase) -> None:
    register_secret(KEY)
    leaky = CardInfo(
        "task_k", "sora-2", prompt=f"use {KEY}", params={"note": KEY, "nested": [KEY]},
        error=f"Bearer {KEY} rejected", warning=KEY, src=f"{KEY}.mp4", file=f"/x/{KEY}.mp4",
    )  # fmt: skip
    data, meta = render(phase, leaky)
    assert KEY not in repr(data) and KEY not in repr(meta)


def test_live_card_has_a_progress_bar_and_elapsed() -> None:
    data, _ = _cards.live_card(INFO)
    assert '<progress value="40" max="100"' in data["text/html"]
    assert "1 min 15 s" in data["text/html"] and "1 min 15 s" in data["text/plain"]
    assert "running 40%" in data["text/plain"]
    assert "A &lt;b&gt;cat&lt;/b&gt; &amp; a dog" in data["text/html"]


def test_video_card_points_at_the_relative_file() -> None:
    done = CardInfo(
        "task_v", "sora-2", status="succeeded", progress=100, src="tokenhot_outputs/my video.mp4",
        file="/home/u/nb/tokenhot_outputs/my video.mp4",
    )  # fmt: skip
    data, meta = _cards.video_card(done)
    assert (
        '<video controls preload="metadata" src="tokenhot_outputs/my%20video.mp4"'
        in data["text/html"]
    )
    assert "tokenhot_outputs/my video.mp4" in data["text/plain"]
    assert meta["tokenhot"]["file"] == "tokenhot_outputs/my video.mp4"
    assert "base64" not in data["text/html"]


def test_failed_card_gives_the_reason() -> None:
    failed = CardInfo("task_f", "sora-2", status="failed", error="output rejected")
    data, meta = _cards.failed_card(failed)
    assert "output rejected" in data["text/plain"] and "refunded" in data["text/plain"]
    assert meta["tokenhot"]["error"] == "output rejected"


def test_stopped_and_timeout_cards_say_how_to_resume() -> None:
    stopped = _cards.stopped_card(INFO)[0]["text/plain"]
    assert "polling stopped; the task may still finish and be billed" in stopped.lower()
    assert "%tokenhot attach task_abc resumes" in stopped
    timeout = _cards.timeout_card(INFO)[0]["text/plain"]
    assert "still running (40%)" in timeout and "%tokenhot attach task_abc" in timeout


def test_warning_is_shown_in_both_forms() -> None:
    warned = CardInfo("task_w", "sora-2", warning="Not saved to the task journal")
    data, _ = _cards.live_card(warned)
    assert "Not saved to the task journal" in data["text/plain"]
    assert "Not saved to the task journal" in data["text/html"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.9, "59 s"), (60, "1 min 00 s"), (3599, "59 min 59 s"), (3720, "1 h 02 min")],
)
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


def test_excerpt_flattens_and_cuts() -> None:
    assert _cards.excerpt("a\n  b") == "a b"
    cut = _cards.excerpt("x" * 300)
    assert len(cut) == _cards.PROMPT_EXCERPT and cut.endswith("…")


def test_tasks_table() -> None:
    now = 1_700_000_000.0
    rows = [
        TaskRow("task_1", "sora-2", "a cat", created_at=now - 60, status="running", progress=40),
        TaskRow("task_22", "MiniMax-Hailuo-02", "a dog", created_at=now - 5 * 86400,
                status="succeeded", progress=100, file="tokenhot_outputs/task_22.mp4"),
        TaskRow("task_3", "sora-2", "x", created_at=now, status="failed", error="rejected"),
    ]  # fmt: skip
    lines = tasks_table(rows, now=now).splitlines()
    assert lines[0].split() == [
        "TASK",
        "ID",
        "MODEL",
        "STATUS",
        "%",
        "CREATED",
        "FILE",
        "/",
        "PROMPT",
    ]
    assert lines[1].split()[:4] == ["task_1", "sora-2", "running", "40"] and "a cat" in lines[1]
    assert lines[2].endswith("tokenhot_outputs/task_22.mp4")
    assert lines[1].index("sora-2") == lines[2].index("MiniMax-Hailuo-02"), "columns line up"
    assert tasks_table([]) == "No video tasks yet."


def test_cards_import_no_ipython() -> None:
    code = "import sys, tokenhot_jupyter._cards; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_metadata_keeps_inputs_small() -> None:
    data_url = "data:image/png;base64," + "A" * 100_000
    info = CardInfo("task_i", "sora-2", params={"image": data_url, "video": b"\x00" * 50_000})
    _, meta = _cards.live_card(info)
    params = meta["tokenhot"]["params"]
    assert len(repr(meta)) < 2000
    assert (
        params["image"].startswith("data:image/png;base64,") and "100022 chars" in params["image"]
    )
    assert params["video"].startswith("<50000 bytes sha256:")
