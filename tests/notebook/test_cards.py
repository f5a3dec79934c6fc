"""Task cards: plain mime bundles that render without a kernel and never leak the key."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from html.parser import HTMLParser
from typing import Any

import pytest

from tokenhot_jupyter._follow import Phase
from tokenhot_jupyter._notebook import _cards
from tokenhot_jupyter._notebook._cards import (
    CardInfo,
    TaskLine,
    TaskStatus,
    format_elapsed,
    render,
    tasks_table,
)
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
        task_id="task_<x>",
        model="m<i>",
        prompt="<script>alert(1)</script>",
        error="<img src=x onerror=1>",
        warning="<b>w</b>",
        src="out/<a>.mp4",
    )
    html = render(phase, hostile)[0]["text/html"]
    for raw in ("<script>", "<img", "<b>w</b>", "m<i>", "task_<x>"):
        assert raw not in html, (phase, raw)
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize("phase", PHASES)
def test_the_key_never_appears(phase: Phase) -> None:
    register_secret(KEY)
    leaky = CardInfo(
        task_id="task_k",
        model="sora-2",
        prompt=f"use {KEY}",
        params={"note": KEY, "nested": [KEY]},
        error=f"Bearer {KEY} rejected",
        warning=KEY,
        src=f"{KEY}.mp4",
        file=f"/x/{KEY}.mp4",
    )
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
        task_id="task_v",
        model="sora-2",
        status="succeeded",
        progress=100,
        src="tokenhot_outputs/my video.mp4",
        file="/home/u/nb/tokenhot_outputs/my video.mp4",
    )
    data, meta = _cards.video_card(done)
    assert (
        '<video controls preload="metadata" src="tokenhot_outputs/my%20video.mp4"'
        in data["text/html"]
    )
    assert "tokenhot_outputs/my video.mp4" in data["text/plain"]
    assert meta["tokenhot"]["file"] == "tokenhot_outputs/my video.mp4"
    assert "base64" not in data["text/html"]


def test_failed_card_gives_the_reason() -> None:
    failed = CardInfo(task_id="task_f", model="sora-2", status="failed", error="output rejected")
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
    warned = CardInfo(task_id="task_w", model="sora-2", warning="Not saved to the task journal")
    data, _ = _cards.live_card(warned)
    assert "Not saved to the task journal" in data["text/plain"]
    assert "Not saved to the task journal" in data["text/html"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.9, "59 s"), (60, "1 min 00 s"), (3599, "59 min 59 s"), (3720, "1 h 02 min")],
)
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


NOW = 1_700_000_000.0


def _line(task_id: str, status: TaskStatus, **extra: Any) -> TaskLine:
    fields: dict[str, Any] = {
        "model": "sora-2", "prompt": "a cat", "progress": 0, "created_at": NOW - 60,
        "elapsed": 60.0,
    }  # fmt: skip
    fields.update(extra)
    return TaskLine(task_id=task_id, status=status, **fields)


LINES = [
    _line("task_1", "running", progress=40, active=True),
    _line("task_PfcJ3UJNpZwe2GhZ8vwjCBTdL3B5Yiho", "done", model="MiniMax-Hailuo-02",
          prompt="a dog " * 40, progress=100, created_at=NOW - 5 * 86400,
          file="/home/u/nb/tokenhot_outputs/task_22.mp4"),
    _line("task_3", "stopped", note="polling stopped here; the task may still finish"),
    _line("inflight-0a1b", "unknown", progress=None, note="the reply never arrived"),
]  # fmt: skip


def test_tasks_table_has_aligned_text_with_notes_under_their_row() -> None:
    lines = tasks_table(LINES, now=NOW)["text/plain"].splitlines()
    assert lines[0].split() == ["Task", "Model", "Status", "%", "Created", "Prompt"]
    assert lines[1].split()[:4] == ["task_1", "sora-2", "running", "40"] and "a cat" in lines[1]
    assert lines[1].index("sora-2") == lines[2].index("MiniMax-Hailuo-02"), "columns line up"
    assert "a dog a dog" in lines[2] and "tokenhot_outputs" not in "\n".join(lines), "prompts"
    assert lines[3].split()[2] == "stopped" and lines[4].strip() == (
        "↳ polling stopped here; the task may still finish"
    )
    assert lines[5].split()[2:4] == ["unknown", "–"] and "never arrived" in lines[6]
    assert "%tokenhot attach ID" in lines[-1]


def test_tasks_table_html_is_a_table_that_never_breaks_ids_or_words() -> None:
    markup = tasks_table(LINES, now=NOW)["text/html"]
    assert markup.count("<tr>") == 1 + len(LINES) and "<th " in markup
    cells = re.findall(r'<td style="([^"]*)">([^<]*)</td>', markup)
    by_text = {text: style for style, text in cells}
    for text in ("task_PfcJ3UJNpZwe2GhZ8vwjCBTdL3B5Yiho", "MiniMax-Hailuo-02", "stopped", "40"):
        assert "white-space:nowrap" in by_text[text], text
    prose = next(style for style, text in cells if text.startswith("a dog"))
    assert "nowrap" not in prose and "max-width" in prose, "a prompt wraps at its spaces"
    assert "mathjax_ignore" in markup, "a $ in a prompt is a dollar sign"
    assert "table-layout:auto" in markup, "columns size to their content, not squeezed"


def test_tasks_table_is_inert_and_keyless() -> None:
    register_secret(KEY)
    hostile = _line(
        "task_x", "failed", prompt='<img src=x onerror="alert(1)"> $5 & <script>x</script>',
        note=f"rejected for {KEY}", model="<b>m</b>",
    )  # fmt: skip
    bundle = tasks_table([hostile], now=NOW)
    markup = bundle["text/html"]
    assert "<img" not in markup and "<script" not in markup and "<b>m" not in markup
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in markup
    assert KEY not in markup and KEY not in bundle["text/plain"]
    tags = Tags()
    tags.feed(markup)
    assert {t for t, _ in tags.seen} <= {"div", "table", "thead", "tbody", "tr", "th", "td", "p"}
    assert {a for _, names in tags.seen for a in names} <= {"style", "class"}, "nothing fetches"


class Tags(HTMLParser):
    """Every element and its attribute names, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, set[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, {name for name, _ in attrs}))


def test_tasks_table_when_empty_or_the_journal_is_unreadable() -> None:
    assert tasks_table([])["text/plain"] == "No video tasks yet."
    bundle = tasks_table([LINES[0]], now=NOW, problem="The task journal x is damaged.")
    assert bundle["text/plain"].startswith("⚠ The task journal x is damaged.")
    assert "damaged" in bundle["text/html"] and "task_1" in bundle["text/html"]


def test_a_pending_line_not_polled_here_says_so() -> None:
    assert _line("t", "queued").label == "queued (not polled here)"
    assert _line("t", "queued", active=True).label == "queued"
    assert _line("t", "stopped").label == "stopped"


def test_cards_import_no_ipython() -> None:
    code = "import sys, tokenhot_jupyter._notebook._cards; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_metadata_keeps_inputs_small() -> None:
    data_url = "data:image/png;base64," + "A" * 100_000
    info = CardInfo(
        task_id="task_i", model="sora-2", params={"image": data_url, "video": b"\x00" * 50_000}
    )
    _, meta = _cards.live_card(info)
    params = meta["tokenhot"]["params"]
    assert len(repr(meta)) < 2000
    assert (
        params["image"].startswith("data:image/png;base64,") and "100022 chars" in params["image"]
    )
    assert params["video"].startswith("<50000 bytes sha256:")


@pytest.mark.parametrize("phase", PHASES)
def test_a_dollar_in_a_prompt_is_money_not_maths(phase: Phase) -> None:
    info = CardInfo(
        task_id="task_m", model="sora-2", prompt="A bat costs $1.10 and the ball $1.00 more"
    )
    markup = render(phase, info)[0]["text/html"]
    assert markup.startswith('<div class="tokenhot-video mathjax_ignore tex2jax_ignore"')
    assert "$1.10 and the ball $1.00" in markup
