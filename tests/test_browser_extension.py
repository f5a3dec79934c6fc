"""The JupyterLab extension in a real browser: status bar, tasks panel, key dialog, models.

One JupyterLab server for the module, on a gateway simulator this test runs itself (on a
fast clock) and points ``TOKENHOT_BASE_URL`` at, as a user who starts one does; with no key
anywhere that is simulator mode.  (Not ``python -m tokenhot_jupyter lab``, as in
test_browser.py: a key stored in a launcher session sends kernels to the public gateway.)
The simulator accepts only its stand-in key and the one key the dialog test stores, so a
successful answer shows which key a kernel sent.  Each
test opens its own notebook in a fresh browser page; the kernels are shut down after it.
Screenshots go to the module's temporary folder (``screenshots/``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    NO_NEWS,
    SLOW,
    VIEWPORT,
    Server,
    assert_not_on_page,
    cell,
    isolated_env,
    jupyter_server,
    jupyterlab_command,
    menu,
    outputs,
    run_all,
    wait_for_kernel_idle,
    write_notebook,
)
from playwright.sync_api import Browser, Locator, Page, expect

from tokenhot_jupyter.__main__ import kernel_env
from tokenhot_jupyter._config import ENV_BASE_URL, SIMULATOR_KEY
from tokenhot_jupyter._store._budget import FILE_NAME as BUDGET_FILE
from tokenhot_jupyter._store._budget import Budgets
from tokenhot_jupyter.simulator import Simulator
from tokenhot_jupyter.simulator.media import mp4_info

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

SPEED = 12  # a 5 s Seedance video (~90 simulated s) is ready ~8 s after it is created
DIALOG_KEY = "sk-e2eDialogKey20260417"  # the one real key the simulator accepts
VIDEO = "%%video -m doubao-seedance-2.0-fast --duration 5\n"
NOTEBOOKS = {
    "tasks.ipynb": [VIDEO + "a paper boat on a rainy street"],
    "orphan.ipynb": [VIDEO + "a lighthouse in a storm"],
    "key.ipynb": ["%%chat -m gpt-5.4-mini\nSay which key you got"],
    "models.ipynb": ["# the models panel inserts a cell below this one"],
    "budget.ipynb": ["%tokenhot budget 5", "%%image -m gpt-image-2\na red kite in a blue sky"],
}
SETTINGS: dict[str, dict[str, Any]] = {**NO_NEWS, "tokenhot-jupyter:plugin": {"pollInterval": 2}}
PANEL = "#tokenhot-jupyter-panel"


@dataclass
class Lab:
    """The module's JupyterLab, its simulator and folders."""

    server: Server
    sim: Simulator
    root: Path  # everything this JupyterLab writes is under it
    work: Path  # the folder JupyterLab serves
    shots: Path

    def open(self, page: Page, notebook: str | None = None) -> None:
        """Load JupyterLab (on ``notebook``) with a reset workspace; wait for its kernel."""
        path = f"lab/tree/{notebook}" if notebook else "lab"
        page.goto(self.server.url(path) + "&reset")
        if notebook:
            expect(cell(page, 0)).to_be_visible(timeout=SLOW)
            wait_for_kernel_idle(page)
        else:
            expect(page.locator("#jp-main-statusbar")).to_be_visible(timeout=SLOW)

    def shot(self, page: Page, name: str) -> None:
        """Save a screenshot of the whole page."""
        page.screenshot(path=self.shots / f"{name}.png")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on a folder of notebooks, talking to a simulator on loopback."""
    tmp = tmp_path_factory.mktemp("extension")
    work = tmp / "work"
    for name, cells in NOTEBOOKS.items():
        write_notebook(work / name, cells)
    shots = tmp / "screenshots"
    shots.mkdir()
    with Simulator(speed=SPEED, api_keys={SIMULATOR_KEY, DIALOG_KEY}, token_delay=0.005) as sim:
        env = {**isolated_env(tmp, SETTINGS), ENV_BASE_URL: sim.base_url}
        with jupyter_server(jupyterlab_command(work), tmp, kernel_env(env)) as server:
            yield Lab(server, sim, tmp, work, shots)


@pytest.fixture
def page(browser: Browser, lab: Lab, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser page (its own storage); every kernel is shut down after the test.

    The page's last look is saved as ``<test name>-end.png`` (the one to read after a failure).
    """
    opened = browser.new_page(viewport=VIEWPORT)
    try:
        yield opened
    finally:
        lab.shot(opened, f"{request.node.name}-end")
        opened.close()
        for session in lab.server.api("GET", "api/sessions").json():
            lab.server.api("DELETE", f"api/sessions/{session['id']}")


# --- the tests ---------------------------------------------------------------------------


def test_the_status_bar_says_simulator_and_opens_the_panel(lab: Lab, page: Page) -> None:
    lab.open(page)
    item = page.locator(".jp-TokenhotStatus")
    expect(item).to_have_text("Tokenhot · simulator", timeout=SLOW)
    expect(item).to_have_class(re.compile(r"\bjp-mod-simulator\b"))
    tooltip = item.get_attribute("title") or ""
    assert tooltip.startswith("SIMULATOR"), tooltip
    assert f"Base URL: {lab.sim.base_url}" in tooltip, tooltip
    page.locator("#jp-main-statusbar").screenshot(path=lab.shots / "1-status-bar.png")
    item.click()
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    expect(panel.locator(".jp-TokenhotPanel-mode")).to_have_text(
        "Simulator: answers are made up locally, nothing is paid."
    )
    lab.shot(page, "1-panel")
    assert_not_on_page(page, SIMULATOR_KEY)


def test_a_video_shows_in_the_tasks_panel_and_a_notification_says_it_is_ready(
    lab: Lab, page: Page
) -> None:
    lab.open(page, "tasks.ipynb")
    _open_panel(page)
    run_all(page)
    row = _task_row(page, "a paper boat on a rainy street")
    expect(row.locator(".jp-TokenhotTask-model")).to_have_text("doubao-seedance-2.0-fast")
    expect(row.locator(".jp-TokenhotTask-status")).to_have_text(re.compile("^(queued|running)$"))
    expect(row.locator(".jp-TokenhotTask-notebook")).to_have_text("tasks.ipynb")
    lab.shot(page, "2-task-running")
    expect(row.locator(".jp-TokenhotTask-status")).to_have_text("succeeded", timeout=SLOW)
    toast = page.locator(".Toastify__toast", has_text="Video ready")
    expect(toast).to_contain_text("Video ready: doubao-seedance-2.0-fast (tasks.ipynb)")
    expect(toast.get_by_role("button", name="Open video")).to_be_visible()
    expect(row.get_by_role("button", name="Open video")).to_be_enabled()
    _settle(page, toast)
    lab.shot(page, "2-task-ready")


def test_a_task_whose_kernel_is_gone_finishes_through_the_server(lab: Lab, page: Page) -> None:
    lab.open(page, "orphan.ipynb")
    kernel = _kernel_of(lab, "orphan.ipynb")
    _open_panel(page)
    lab.sim.clear_requests()
    lab.sim.clock.speed = 0  # the task waits at the gateway until the kernel is gone
    try:
        run_all(page)
        row = _task_row(page, "a lighthouse in a storm")
        expect(row.locator(".jp-TokenhotTask-status")).to_have_text("queued")
        menu(page, "Kernel", "Shut Down Kernel")
        expect(row.locator(".jp-TokenhotTask-note")).to_have_text(
            "polled by the Jupyter server (its kernel is gone)", timeout=SLOW
        )
        lab.shot(page, "3-server-polls")
    finally:
        lab.sim.clock.speed = SPEED
    expect(row.locator(".jp-TokenhotTask-status")).to_have_text("succeeded", timeout=SLOW)
    task_id = row.get_attribute("data-task-id") or ""
    _check_saved_by_the_server(lab, task_id)
    toast = page.locator(".Toastify__toast", has_text="Video ready")
    expect(toast).to_contain_text("Video ready: doubao-seedance-2.0-fast (orphan.ipynb)")
    row.get_by_role("button", name="Attach").click()
    expect(cell(page, 1)).to_contain_text(f"%tokenhot attach {task_id}")
    page.keyboard.press("Shift+Enter")  # the cell inserted is the active one
    expect(outputs(page, 1).locator("video")).to_be_visible(timeout=SLOW)
    assert _kernel_of(lab, "orphan.ipynb") != kernel
    lab.shot(page, "3-attached")
    creates = [r for r in lab.sim.requests if r.method == "POST"]
    assert [r.path for r in creates] == ["/v1/video/generations"], creates


def test_a_key_set_in_the_dialog_reaches_a_running_kernel_and_nothing_keeps_it(
    lab: Lab, page: Page
) -> None:
    lab.open(page, "key.ipynb")
    run_all(page)
    expect(outputs(page, 0).filter(has_text="Answers are simulated")).to_be_visible(timeout=SLOW)
    kernel = _kernel_of(lab, "key.ipynb")
    lab.sim.exhaust_token(SIMULATOR_KEY)  # from now on only the dialog's key is accepted
    try:
        _store_key_from_the_palette(lab, page)
        run_all(page)
        answer = outputs(page, 0).filter(has_text="Simulated answer from gpt-5.4-mini")
        expect(answer).to_be_visible(timeout=SLOW)
        expect(outputs(page, 0).filter(has_text="Answers are simulated")).to_have_count(0)
        assert _kernel_of(lab, "key.ipynb") == kernel
        chats = [r.status for r in lab.sim.requests if r.path == "/v1/chat/completions"]
        assert chats[-1] == 200, chats
        lab.shot(page, "4-live-answer")
        page.keyboard.press("Control+s")
        _check_the_key_is_nowhere(lab, page)
        _forget_key_from_the_panel(lab, page)
    finally:
        lab.sim.exhaust_token(SIMULATOR_KEY, exhausted=False)
        lab.server.api("DELETE", "tokenhot/api/key")


def test_a_click_in_the_models_panel_inserts_a_cell_that_runs(lab: Lab, page: Page) -> None:
    lab.open(page, "models.ipynb")
    panel = _open_panel(page)
    panel.get_by_role("searchbox", name="Search models").fill("gpt-5.4-mini")
    panel.locator("[data-model-id='gpt-5.4-mini']").click()
    expect(cell(page, 1)).to_contain_text("%%chat -m gpt-5.4-mini")
    lab.shot(page, "5-inserted")
    menu(page, "Run", "Run Selected Cell and Do not Advance")
    answer = outputs(page, 1).filter(has_text="Simulated answer from gpt-5.4-mini")
    expect(answer).to_be_visible(timeout=SLOW)
    wait_for_kernel_idle(page)  # the answer has streamed in full
    lab.shot(page, "5-answered")


# --- steps -------------------------------------------------------------------------------


def _open_panel(page: Page) -> Locator:
    """Click the status bar item, which opens the Tokenhot panel."""
    page.locator(".jp-TokenhotStatus").click()
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    return panel


def _task_row(page: Page, prompt: str) -> Locator:
    """The tasks panel's row of the task started with ``prompt`` (once it shows)."""
    row = page.locator(f"{PANEL} .jp-TokenhotTask", has_text=prompt)
    expect(row).to_have_count(1, timeout=SLOW)
    return row


def _settle(page: Page, toast: Locator) -> None:
    """Wait until ``toast`` has slid fully into view (for the screenshot)."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.wait_for_function(
        "([el, width]) => el.getBoundingClientRect().right <= width",
        arg=[toast.element_handle(), width],
    )


def _kernel_of(lab: Lab, notebook: str) -> str | None:
    """The id of the kernel the server runs for ``notebook``, or None."""
    for session in lab.server.api("GET", "api/sessions").json():
        if session["path"] == notebook and session.get("kernel"):
            return str(session["kernel"]["id"])
    return None


def _check_saved_by_the_server(lab: Lab, task_id: str) -> None:
    """The server saved the finished video in the notebook's output folder."""
    (task,) = [t for t in lab.server.api("GET", "tokenhot/api/tasks").json()["tasks"]
               if t["id"] == task_id]  # fmt: skip
    assert task["poller"] is None and task["video_path"], task
    saved = lab.work / task["video_path"]
    assert saved.parent == lab.work / "tokenhot_outputs", task
    assert mp4_info(saved.read_bytes())["duration"] == pytest.approx(5.0, abs=0.1)


def _store_key_from_the_palette(lab: Lab, page: Page) -> None:
    """Tokenhot: Set API key… from the command palette, typed into its password field."""
    page.keyboard.press("Control+Shift+c")
    page.get_by_role("textbox", name="SEARCH").fill("Set API key")  # the palette's search box
    page.keyboard.press("Enter")
    dialog = page.locator(".jp-Dialog")
    field = dialog.locator("input[type='password']")
    field.fill(DIALOG_KEY)
    lab.shot(page, "4-dialog")
    dialog.get_by_role("button", name="Store key").click()
    stored = page.locator(".Toastify__toast", has_text="Tokenhot key stored")
    expect(stored).to_contain_text(f"({DIALOG_KEY[:3]}…{DIALOG_KEY[-4:]})")
    expect(page.locator(".jp-TokenhotStatus")).to_have_text(
        "Tokenhot · live · $0.00 today", timeout=SLOW
    )


def _forget_key_from_the_panel(lab: Lab, page: Page) -> None:
    """The panel's Forget button removes the stored key: back to the simulator."""
    panel = _open_panel(page)
    panel.get_by_role("button", name="Forget").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Forget").click()
    toast = page.locator(".Toastify__toast", has_text="Tokenhot key forgotten; no key is set.")
    expect(toast).to_be_visible()
    expect(page.locator(".jp-TokenhotStatus")).to_have_text("Tokenhot · simulator", timeout=SLOW)
    _settle(page, toast)
    lab.shot(page, "4-forgotten")


def _check_the_key_is_nowhere(lab: Lab, page: Page) -> None:
    """Not in the saved notebook, the page, the browser's storage or the server's log.

    Of all the files this JupyterLab, its kernels and the browser's page wrote (notebooks,
    videos, settings, workspaces, journal, ledger, logs), only the key file holds the key.
    """
    saved = _wait_for_saved(lab.work / "key.ipynb", "Simulated answer from gpt-5.4-mini")
    assert "Answers are simulated" not in saved
    assert DIALOG_KEY not in saved
    assert_not_on_page(page, DIALOG_KEY)
    storage = _browser_storage(page)
    assert storage["local"], "JupyterLab keeps its state in localStorage; none was read"
    assert DIALOG_KEY not in json.dumps(storage)
    assert DIALOG_KEY not in lab.server.log()
    holding = [
        p for p in lab.root.rglob("*") if p.is_file() and DIALOG_KEY.encode() in p.read_bytes()
    ]
    assert holding == [lab.root / "home" / "api_key"], holding
    assert holding[0].stat().st_mode & 0o777 == 0o600


def _wait_for_saved(notebook: Path, text: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        saved = notebook.read_text(encoding="utf-8")
        if text in saved:
            return saved
        time.sleep(0.2)
    raise AssertionError(f"{notebook.name} was not saved with {text!r} within 30 s")


# Every key and value of localStorage and sessionStorage, every record of every IndexedDB
# database of this origin, and the cookies.
_DUMP_STORAGE = """async () => {
  const all = s => Object.fromEntries(Object.keys(s).map(k => [k, s.getItem(k)]));
  const read = name => new Promise((resolve, reject) => {
    const open = indexedDB.open(name);
    open.onerror = () => reject(open.error);
    open.onsuccess = async () => {
      const db = open.result, out = {};
      for (const store of db.objectStoreNames) {
        out[store] = await new Promise((ok, fail) => {
          const req = db.transaction(store).objectStore(store).getAll();
          req.onsuccess = () => ok(req.result.map(v => JSON.stringify(v)));
          req.onerror = () => fail(req.error);
        });
      }
      db.close();
      resolve(out);
    };
  });
  const indexed = {};
  for (const { name } of await indexedDB.databases()) indexed[name] = await read(name);
  return { local: all(localStorage), session: all(sessionStorage), indexed,
           cookies: document.cookie };
}"""


def _browser_storage(page: Page) -> dict[str, Any]:
    return dict(page.evaluate(_DUMP_STORAGE))


def test_the_status_bar_shows_what_is_left_of_the_day_budget(lab: Lab, page: Page) -> None:
    lab.open(page, "budget.ipynb")
    before = _status(lab)["spend_today"]  # the module's earlier tests spent (simulated) too
    run_all(page)  # a day budget of $5 set in the kernel, then a $0.04 picture (simulated)
    expect(outputs(page, 1).locator("img")).to_be_visible(timeout=SLOW)
    item = page.locator(".jp-TokenhotStatus")
    budgets = Budgets(lab.root / "home" / BUDGET_FILE)  # the file every kernel shares
    try:
        status = _status(lab)
        assert status["spend_today"] == pytest.approx(before + 0.04)
        left = status["budget_left"]
        assert left == pytest.approx(5.0 - before - 0.04)
        expect(item).to_have_text(f"Tokenhot · simulator · ${left:.2f} left", timeout=SLOW)
        tooltip = item.get_attribute("title") or ""
        assert f"Day budget left (every kernel): ${left:.2f}" in tooltip, tooltip
        page.locator("#jp-main-statusbar").screenshot(path=lab.shots / "5-budget-left.png")
    finally:
        budgets.set_day(None)  # %tokenhot budget off, from any kernel: the other tests' bar
        budgets.close()
    expect(item).to_have_text("Tokenhot · simulator", timeout=SLOW)
    assert "budget" not in (item.get_attribute("title") or "").lower()


def _status(lab: Lab) -> dict[str, Any]:
    return lab.server.api("GET", "tokenhot/api/status").json()  # type: ignore[no-any-return]
