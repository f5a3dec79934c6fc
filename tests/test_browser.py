"""A newcomer's first notebook, in a real browser.

``python -m tokenhot_jupyter lab`` with no key starts its own simulator (on a fast clock)
and JupyterLab; Chromium opens a notebook with a chat cell whose answer carries HTML and
script, a video cell and a plain cell, and runs them all from the Run menu.  Playwright
drives Debian's ``chromium`` (``apt-get install chromium``); it downloads no browser.
Screenshots of the key moments go to the test's temporary folder.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import nbformat
import pytest
from browser_support import (
    SLOW,
    VIEWPORT,
    assert_not_on_page,
    cell,
    isolated_env,
    jupyter_server,
    outputs,
    run_all,
    wait_for_kernel_idle,
    write_notebook,
)
from playwright.sync_api import Browser, Locator, Page, expect

from tokenhot_jupyter._config import SIMULATOR_KEY  # what the launcher gives kernels
from tokenhot_jupyter.simulator.media import mp4_info

# JupyterLab, a kernel and Chromium: slow on a loaded machine, so more than the global 120 s.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

SPEED = 12  # a 5 s Seedance video (~90 simulated s) is ready ~8 s after it is created
PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
CELLS = (
    # The simulator quotes the prompt's first line (up to 80 characters) in its answer.
    f"%%chat -m gpt-5.4-mini\nSay {PAYLOAD}",
    "%%video -m doubao-seedance-2.0-fast --duration 5\na paper boat on a rainy street",
    'print("next cell ran")',
)
DEMO = Path(__file__).resolve().parents[1] / "notebooks" / "06-teaching-demo.ipynb"


@dataclass
class Lab:
    """A running ``python -m tokenhot_jupyter lab`` and what it printed."""

    url: str
    simulator_url: str
    notebook: Path
    shots: Path


def _simulator_url(log: Path) -> str:
    found = re.search(r"local gateway simulator at (http://127\.0\.0\.1:\d+)", log.read_text())
    assert found, f"the launcher did not say where its simulator is: {log.read_text()!r}"
    return found.group(1)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab as a newcomer starts it, on a folder holding the three-cell notebook."""
    notebook = write_notebook(tmp_path / "work" / "first-run.ipynb", CELLS)
    shutil.copy(DEMO, notebook.parent)
    command = [sys.executable, "-m", "tokenhot_jupyter", "lab",
               "--simulator-speed", str(SPEED), "--dir", str(notebook.parent)]  # fmt: skip
    with jupyter_server(command, tmp_path, isolated_env(tmp_path)) as server:
        shots = tmp_path / "screenshots"
        shots.mkdir()
        url = server.url(f"lab/tree/{notebook.name}")
        yield Lab(url, _simulator_url(server.out), notebook, shots)


def _media_state(video: Locator) -> dict[str, Any]:
    return dict(
        video.evaluate(
            "v => ({readyState: v.readyState, duration: v.duration, src: v.currentSrc,"
            " width: v.videoWidth, height: v.videoHeight, error: v.error ? v.error.code : 0})"
        )
    )


def _wait_for_saved_outputs(notebook: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = notebook.read_text(encoding="utf-8")
        if "next cell ran" in text and "<video" in text:
            return text
        time.sleep(0.2)
    raise AssertionError("the notebook was not saved with its outputs within 60 s")


def _saved_video(folder: Path) -> Path:
    """The one MP4 the video cell saved beside the notebook."""
    (path,) = (folder / "tokenhot_outputs").glob("*.mp4")
    return path


def test_a_newcomer_runs_chat_video_and_a_plain_cell(browser: Browser, lab: Lab) -> None:
    assert httpx.get(f"{lab.simulator_url}/__sim__", timeout=5).json()["speed"] == SPEED
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(lab.url)
    expect(cell(page, 2)).to_be_visible(timeout=SLOW)
    wait_for_kernel_idle(page)
    page.screenshot(path=lab.shots / "1-opened.png")
    run_all(page)
    _check_chat_answer_is_inert(page)
    _check_next_cell_runs_while_the_card_polls(page)
    page.screenshot(path=lab.shots / "2-polling.png")
    assert_not_on_page(page, SIMULATOR_KEY)
    _check_card_turns_into_a_playable_video(page, lab.notebook.parent)
    page.screenshot(path=lab.shots / "3-video.png")
    assert page.evaluate("() => window.__pwned") is None
    assert_not_on_page(page, SIMULATOR_KEY)
    page.keyboard.press("Control+s")
    _check_saved_notebook(lab.notebook)


def _check_chat_answer_is_inert(page: Page) -> None:
    """The banner shows, and the answer quotes the prompt's HTML as text that never runs."""
    chat = outputs(page, 0)
    expect(chat.filter(has_text="Answers are simulated")).to_be_visible(timeout=SLOW)
    answer = chat.filter(has_text="Simulated answer from gpt-5.4-mini")
    expect(answer).to_contain_text(PAYLOAD, timeout=SLOW)
    expect(answer.locator("script, img")).to_have_count(0)
    assert page.evaluate("() => window.__pwned") is None


def _check_next_cell_runs_while_the_card_polls(page: Page) -> None:
    """Run All goes on past the video cell, whose only output is a live progress card."""
    expect(outputs(page, 2)).to_have_text("next cell ran", timeout=SLOW)
    card = outputs(page, 1)
    expect(card).to_have_count(1)
    expect(card.locator(".tokenhot-video progress")).to_be_visible()
    expect(card.locator("video")).to_have_count(0)
    # Mark the output area, to find the player in this very node later.
    card.evaluate("el => el.closest('.jp-OutputArea').setAttribute('data-e2e', 'video-cell')")


def _check_card_turns_into_a_playable_video(page: Page, folder: Path) -> None:
    """The same output becomes a player, and the browser loads the saved MP4."""
    card = outputs(page, 1)
    expect(card.locator("video").first).to_be_visible(timeout=SLOW)
    expect(card).to_have_count(1)
    expect(page.locator("[data-e2e='video-cell'] .jp-OutputArea-output video")).to_have_count(1)
    expect(card.locator("progress")).to_have_count(0)
    video = card.locator("video")
    handle = video.element_handle()
    page.wait_for_function("v => v.readyState >= 2 || v.error", arg=handle, timeout=SLOW)
    state = _media_state(video)
    saved = _saved_video(folder)
    info = mp4_info(saved.read_bytes())
    assert state["error"] == 0, state
    assert urlsplit(state["src"]).path == f"/files/tokenhot_outputs/{saved.name}", state
    assert state["duration"] == pytest.approx(5.0, abs=0.1), state
    assert (state["width"], state["height"]) == (info["width"], info["height"]), state


def _check_saved_notebook(path: Path) -> None:
    """Saved, the notebook keeps the outputs and their provenance, but not the key."""
    text = _wait_for_saved_outputs(path)
    assert SIMULATOR_KEY not in text
    # nbformat has no annotations.
    chat = nbformat.reads(text, as_version=4).cells[0].outputs  # type: ignore[no-untyped-call]
    provenance = chat[-1].metadata.get("tokenhot", {})
    assert {"model": "gpt-5.4-mini"}.items() <= provenance.items(), provenance


def test_run_all_stops_at_the_teaching_demos_mistake(browser: Browser, lab: Lab) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(lab.url.replace(lab.notebook.name, DEMO.name))
    code = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-CodeCell")
    expect(code).to_have_count(7, timeout=SLOW)
    wait_for_kernel_idle(page)
    run_all(page)
    mistake, usage = code.nth(5), code.nth(6)
    error = mistake.locator(".jp-OutputArea-output")
    expect(error).to_contain_text("UnknownModelError", timeout=SLOW)
    expect(usage.locator(".jp-InputPrompt")).not_to_have_text("[*]:", timeout=SLOW)  # settled
    page.screenshot(path=lab.shots / "demo-stopped.png")
    expect(usage.locator(".jp-InputPrompt")).to_have_text("[ ]:")  # aborted: it never ran
    expect(usage.locator(".jp-OutputArea-output")).to_have_count(0)


BATCH_CELLS = (
    'cities = ["Paris", "Lima", "Oslo", "Accra", "Hanoi", "Quito"]',
    "%%chat --over cities -o answers\nOne line about {item}.",
    "print(len(answers), answers[0].text[:40])",
    '%%chat --schema "name, age int, tags list[str]" -o person\nInvent a person.',
    "print(sorted(person))",
)


@pytest.fixture
def batch_lab(tmp_path: Path) -> Iterator[Lab]:
    """The launcher on a folder holding a notebook with a batch and a structured answer."""
    notebook = write_notebook(tmp_path / "work" / "batch.ipynb", BATCH_CELLS)
    command = [sys.executable, "-m", "tokenhot_jupyter", "lab", "--dir", str(notebook.parent)]
    with jupyter_server(command, tmp_path, isolated_env(tmp_path)) as server:
        shots = tmp_path / "screenshots"
        shots.mkdir()
        yield Lab(server.url(f"lab/tree/{notebook.name}"), "", notebook, shots)


def test_a_batch_and_a_structured_answer_in_jupyterlab(browser: Browser, batch_lab: Lab) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(batch_lab.url)
    expect(cell(page, 4)).to_be_visible(timeout=SLOW)
    wait_for_kernel_idle(page)
    run_all(page)
    try:
        batch = outputs(page, 1)
        summary = batch.filter(has_text="6 answered, 0 reused, 0 failed")
        expect(summary).to_have_count(1, timeout=SLOW)
        expect(batch.locator("progress")).to_have_count(1)  # one bar, updated in place
        expect(batch.locator("script, img")).to_have_count(0)
        expect(outputs(page, 2)).to_contain_text("6 Simulated answer", timeout=SLOW)
        expect(outputs(page, 3).locator("table")).to_contain_text("tags", timeout=SLOW)
        expect(outputs(page, 4)).to_contain_text("['age', 'name', 'tags']", timeout=SLOW)
    finally:
        page.screenshot(path=batch_lab.shots / "batch-end.png", full_page=True)
    page.screenshot(path=batch_lab.shots / "batch.png", full_page=True)
    assert_not_on_page(page, SIMULATOR_KEY)
