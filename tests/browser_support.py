"""What the browser tests share: a JupyterLab server in a child process, Chromium, page helpers.

Playwright drives Debian's ``chromium`` (``apt-get install chromium``); it never downloads a
browser.  The ``browser`` fixture (in conftest.py) launches it once per test module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
SLOW = 60_000  # ms: JupyterLab's first load, a kernel start, a video task
TOKEN = "browser-t0ken"
VIEWPORT: ViewportSize = {"width": 1280, "height": 1000}
# No "Would you like to receive official Jupyter news?" toast over the page.
NO_NEWS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}


@dataclass
class Server:
    """A running Jupyter server (child process) and where its output goes."""

    proc: subprocess.Popen[bytes]
    port: int
    out: Path
    err: Path

    def url(self, path: str = "lab") -> str:
        """An absolute URL of ``path`` on this server, with the token."""
        return f"http://127.0.0.1:{self.port}/{path}?token={TOKEN}"

    def log(self) -> str:
        """Everything the server (and what it started) printed so far."""
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the server's REST API as a token-authenticated client."""
        headers = {"Authorization": f"token {TOKEN}"}
        url = f"http://127.0.0.1:{self.port}/{path}"
        return httpx.request(method, url, headers=headers, timeout=30, **kwargs)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium() -> str:
    """Debian's chromium, or skip (fail on CI, which installs it)."""
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed: apt-get install -y chromium"
        if os.environ.get("CI"):  # CI installs it (.ci/run); missing there is a failure
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Headless Debian Chromium, with a fresh profile."""
    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    """A Python 3 notebook at ``path`` holding one code cell per source."""
    # nbformat has no annotations.
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    return path


def isolated_env(tmp: Path, settings: Mapping[str, Mapping[str, Any]] = NO_NEWS) -> dict[str, str]:
    """No key and no state outside ``tmp``; JupyterLab user ``settings`` by plugin id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENHOT_")}
    for name, sub in (
        ("TOKENHOT_HOME", "home"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTER_CONFIG_DIR", "config"),  # also JupyterLab's workspaces and settings
        ("IPYTHONDIR", "ipython"),
    ):
        env[name] = str(tmp / sub)
    for plugin, values in settings.items():
        package, _, name = plugin.partition(":")
        path = tmp / "config" / "lab" / "user-settings" / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    return env


@contextmanager
def jupyter_server(command: Sequence[str], tmp: Path, env: Mapping[str, str]) -> Iterator[Server]:
    """Run ``command`` (a JupyterLab command line) on a free port with our token until done."""
    port = free_port()
    args = ["--no-browser", f"--ServerApp.port={port}", f"--IdentityProvider.token={TOKEN}"]
    out, err = tmp / "lab.out", tmp / "lab.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*command, *args], cwd=tmp, env=dict(env), stdout=stdout, stderr=stderr
        )
    server = Server(proc, port, out, err)
    try:
        _wait_for_server(server)
        yield server
    finally:
        stop(proc)


def jupyterlab_command(folder: Path) -> list[str]:
    """``python -m jupyterlab`` serving ``folder`` (as root too: containers and CI)."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--ServerApp.allow_root=True")
    return cmd


def _wait_for_server(server: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.proc.poll() is None:
        try:
            if server.api("GET", "api/status").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    tail = server.log()[-2000:]
    raise AssertionError(f"JupyterLab did not start (exit status {server.proc.poll()}):\n{tail}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a launcher then stops what it started), SIGKILL after 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the page ----------------------------------------------------------------------------


def cell(page: Page, index: int) -> Locator:
    """The ``index``-th cell of the notebook on screen."""
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)


def outputs(page: Page, index: int) -> Locator:
    """The outputs of the ``index``-th cell of the notebook on screen."""
    return cell(page, index).locator(".jp-OutputArea-output")


def menu(page: Page, name: str, item: str) -> None:
    """Click menu ``name`` ▸ ``item`` of the menu bar, as a user would."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(name)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def run_all(page: Page) -> None:
    """Run ▸ Run All Cells."""
    menu(page, "Run", "Run All Cells")


def wait_for_kernel_idle(page: Page) -> None:
    """The notebook on screen is connected to its kernel, and the kernel is idle."""
    # The execution indicator says idle before a kernel is connected; the status bar does not.
    status = page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle$"))
    expect(status).to_have_count(1, timeout=SLOW)
    idle = page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator")
    expect(idle.and_(page.locator("[data-status='idle']"))).to_have_count(1, timeout=SLOW)


def assert_not_on_page(page: Page, secret: str) -> None:
    """``secret`` appears nowhere on the page, visible or not."""
    assert secret not in page.locator("body").inner_text()
    assert secret not in page.content()
