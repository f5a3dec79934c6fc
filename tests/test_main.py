"""``python -m tokenhot_jupyter``: JupyterLab on notebooks/, the simulator when there is no key,
and kernels that start with the magics loaded."""

from __future__ import annotations

import os
import pty
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenhot_jupyter.__main__ import (
    _parser,
    _shut_down,
    kernel_env,
    simulated_env,
    simulator_args,
    start_simulator,
)

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_kernel_env_chains_the_users_startup_file(tmp_path: Path) -> None:
    env = kernel_env({"PYTHONSTARTUP": "/home/me/startup.py"})
    assert env["PYTHONSTARTUP"].endswith("_startup.py")
    assert env["TOKENHOT_USER_PYTHONSTARTUP"] == "/home/me/startup.py"
    assert "TOKENHOT_USER_PYTHONSTARTUP" not in kernel_env({})


def test_simulator_speed_reaches_the_simulator_the_launcher_starts() -> None:
    args, extra = _parser().parse_known_args(["lab", "--no-browser", "--simulator-speed", "12"])
    assert extra == ["--no-browser"]  # still passed on to JupyterLab
    assert simulator_args(args) == ["--speed", "12"]
    proc, base_url = start_simulator(simulator_args(args))
    try:
        assert httpx.get(f"{base_url}/__sim__", timeout=5).json()["speed"] == 12
    finally:
        _shut_down([proc])
        if proc.stdout is not None:
            proc.stdout.close()


def test_simulated_env_leaves_the_key_to_the_resolution() -> None:
    env = simulated_env({"PATH": "/bin"}, "http://127.0.0.1:5")
    assert env == {"PATH": "/bin", "TOKENHOT_BASE_URL": "http://127.0.0.1:5",
                   "TOKENHOT_SIMULATED": "1"}, "no key: a key stored later takes over"  # fmt: skip
    forced = simulated_env({"TOKENHOT_API_KEY": "sk-real1234567890"}, "http://127.0.0.1:5",
                           force=True)  # fmt: skip
    assert forced == {"TOKENHOT_BASE_URL": "http://127.0.0.1:5", "TOKENHOT_SIMULATED": "always"}


def test_lab_uses_a_stored_key_instead_of_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tokenhot_jupyter.__main__ as launcher
    from tokenhot_jupyter._store._credentials import KeyStore

    monkeypatch.delenv("TOKENHOT_API_KEY", raising=False)
    monkeypatch.setenv("TOKENHOT_HOME", str(tmp_path))
    started: list[Any] = []

    class FakeServer:
        def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
            started.append(env)

        def wait(self) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    monkeypatch.setattr(launcher, "start_simulator", lambda *a: pytest.fail("no simulator"))
    KeyStore().write("sk-storedforthelab1234")
    before = signal.getsignal(signal.SIGINT)
    assert launcher.lab(_parser().parse_args(["lab"])) == 0
    assert signal.getsignal(signal.SIGINT) is before, "the caller's Ctrl-C handler is back"
    assert "TOKENHOT_SIMULATED" not in started[0] and "TOKENHOT_API_KEY" not in started[0]
    assert "simulator" not in capsys.readouterr().out


def test_simulator_speed_defaults_to_a_demo_pace() -> None:
    assert simulator_args(_parser().parse_args(["lab"])) == ["--speed", "10"]


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "fast"])
def test_simulator_speed_must_be_a_positive_number(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["lab", "--simulator-speed", bad])
    assert exc.value.code == 2
    assert "--simulator-speed" in capsys.readouterr().err


@pytest.mark.kernel
def test_kernels_start_with_the_magics_loaded(tokenhot_simulator: Any, tmp_path: Path) -> None:
    from jupyter_client.manager import start_new_kernel

    env = simulated_env(kernel_env(dict(os.environ)), tokenhot_simulator.base_url)
    env["TOKENHOT_HOME"] = str(tmp_path)
    km, kc = start_new_kernel(env=env, cwd=str(tmp_path))
    try:
        reply = kc.execute_interactive("%%chat --no-stream -m gpt-5\nSay hi", timeout=60)
        assert reply["content"]["status"] == "ok"
        printed: list[str] = []
        kc.execute_interactive(
            "%load_ext tokenhot_jupyter",
            timeout=30,
            output_hook=lambda msg: printed.append(str(msg["content"].get("text", ""))),
        )
        assert not "".join(printed).strip(), "a notebook's own %load_ext stays quiet"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert any(r.path == "/v1/chat/completions" for r in tokenhot_simulator.requests)


@pytest.mark.kernel
@pytest.mark.timeout(600)  # JupyterLab starts slowly on a loaded machine
def test_lab_serves_notebooks_with_the_simulator_and_stops_cleanly(tmp_path: Path) -> None:
    port, token = _free_port(), "t0ken"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENHOT_")}
    env.update({"JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "TOKENHOT_HOME": str(tmp_path)})
    args = ["--no-browser", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
            "--ServerApp.jpserver_extensions=tokenhot_jupyter=True"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenhot_jupyter", "lab", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "local gateway simulator at http://127.0.0.1:" in first
        contents = _wait_for_server(port, token)
        names = {item["name"] for item in contents["content"]}
        assert any(name.endswith(".ipynb") for name in names), names
        status = httpx.get(f"http://127.0.0.1:{port}/tokenhot/api/status?token={token}").json()
        assert (status["mode"], status["key_source"]) == ("simulator", "none")
        assert status["base_url"] in first, "the server sees the launcher's simulator"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)  # JupyterLab gets STOP_TIMEOUT, then the simulator
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0


def _wait_for_server(port: int, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while True:
        try:
            url = f"http://127.0.0.1:{port}/api/contents?token={token}"
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("JupyterLab did not start within 180 s")
        time.sleep(0.25)


class _Launcher:
    """``python -m tokenhot_jupyter lab`` in its own process group, as a terminal runs it."""

    def __init__(self, tmp_path: Path) -> None:
        self.port, self.token = _free_port(), "t0ken"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENHOT_")}
        env.update({"JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "TOKENHOT_HOME": str(tmp_path)})
        args = [
            "--no-browser",
            f"--ServerApp.port={self.port}",
            f"--IdentityProvider.token={self.token}",
        ]
        self._tty, tty = pty.openpty()  # JupyterLab handles Ctrl-C as at a terminal only on a tty
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tokenhot_jupyter", "lab", *args], cwd=ROOT, env=env,
            stdin=tty, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        os.close(tty)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"never printed {text!r}:\n{''.join(self.seen)}")

    def ctrl_c(self) -> int:
        """Press Ctrl-C; returns how many lines had been printed before."""
        self._drain()
        os.killpg(self.proc.pid, signal.SIGINT)  # what the terminal sends: to the whole group
        return len(self.seen)

    def _drain(self) -> None:
        while not self.lines.empty():
            self.seen.append(self.lines.get())

    def output(self, since: int = 0) -> str:
        """What was printed from line ``since`` on, once the launcher has exited."""
        self.proc.wait(timeout=120)
        self._reader.join(timeout=30)  # the pipe ends once every child has gone
        self._drain()
        return "".join(self.seen[since:])

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._reader.join(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        os.close(self._tty)


def _start_kernel(lab: str, token: str, runtime_dir: Path) -> None:
    """Start a kernel and wait until it answers (one still importing would print a traceback
    when JupyterLab interrupts it on the way out, which is JupyterLab's business)."""
    from jupyter_client.blocking.client import BlockingKernelClient

    kernel = httpx.post(f"{lab}/api/kernels?token={token}", json={}, timeout=30).json()
    client = BlockingKernelClient(connection_file=str(runtime_dir / f"kernel-{kernel['id']}.json"))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
    finally:
        client.stop_channels()


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return True
    return False


@pytest.mark.kernel
@pytest.mark.timeout(600)  # JupyterLab starts slowly on a loaded machine
def test_a_second_ctrl_c_stops_everything_without_a_traceback(tmp_path: Path) -> None:
    launcher = _Launcher(tmp_path)
    try:
        sim_url = launcher.wait_for("local gateway simulator at").split(" at ")[1].rstrip(".\n")
        _wait_for_server(launcher.port, launcher.token)
        lab = f"http://127.0.0.1:{launcher.port}"
        _start_kernel(lab, launcher.token, tmp_path / "rt")  # so that JupyterLab stops slowly
        pressed = launcher.ctrl_c()  # what JupyterLab logged at start is not ours to judge
        launcher.wait_for("received signal 15, stopping")  # the launcher is stopping JupyterLab
        launcher.ctrl_c()
        printed = launcher.output(since=pressed)
    finally:
        launcher.close()
    assert "Traceback" not in printed and "Ctrl-C again stops them at once" in printed, printed
    assert launcher.proc.returncode == 0
    assert _refused(f"{sim_url}/__sim__") and _refused(lab)
