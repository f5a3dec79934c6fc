"""Fixtures for the magics tests: a real InteractiveShell wired to the simulator (import them)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ENV_NAMES = (
    "TOKENHOT_API_KEY", "TOKENHOT_BASE_URL", "TOKENHOT_SIMULATED", "TOKENHOT_CHAT_MODEL",
    "TOKENHOT_IMAGE_MODEL", "TOKENHOT_VIDEO_MODEL", "TOKENHOT_AUDIO_MODEL", "TOKENHOT_OUTPUT_DIR",
    "TOKENHOT_HOME", "JPY_SESSION_NAME",
)  # fmt: skip


class Shell:
    """A real InteractiveShell with a capturing display publisher and helpers."""

    def __init__(self, ip: Any, sim: Any) -> None:
        self.ip = ip
        self.sim = sim

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return self.ip.display_pub.outputs  # type: ignore[no-any-return]

    def run(self, source: str, cell_id: str | None = None) -> Any:
        self.outputs.clear()
        return self.ip.run_cell(source, store_history=True, cell_id=cell_id)

    def ok(self, source: str, cell_id: str | None = None) -> Any:
        result = self.run(source, cell_id)
        assert result.error_in_exec is None, result.error_in_exec
        assert result.error_before_exec is None, result.error_before_exec
        return result

    def final(self) -> dict[str, Any]:
        """The last bundle shown (new output or update)."""
        return self.outputs[-1]

    def dump(self) -> str:
        """Every output, data and metadata, as one JSON text (for leak checks)."""
        return json.dumps(self.outputs, default=str)

    @property
    def session(self) -> Any:
        from tokenhot_jupyter._notebook._magics import session_of

        return session_of(self.ip)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOKENHOT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("tokenhot_jupyter._store._credentials._login_key", None)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def shell(
    tokenhot_simulator: Any, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Shell]:
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setenv("TOKENHOT_BASE_URL", tokenhot_simulator.base_url)
    monkeypatch.setenv("TOKENHOT_API_KEY", tokenhot_simulator.api_key)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    original = ip.display_pub
    # IPython's display publishers have no annotations.
    ip.display_pub = CapturingDisplayPublisher(shell=ip)  # type: ignore[no-untyped-call]
    ip.run_line_magic("load_ext", "tokenhot_jupyter")
    session = Shell(ip, tokenhot_simulator).session
    session.config.stream_interval = 0.0
    session.config.video_poll_interval = 0.05
    try:
        yield Shell(ip, tokenhot_simulator)
    finally:
        ip.run_line_magic("unload_ext", "tokenhot_jupyter")
        ip.config.pop("Tokenhot", None)  # %config writes into the shell's config too
        ip.display_pub = original
        os.environ.pop("TOKENHOT_API_KEY", None)


class Gate(httpx.AsyncBaseTransport):
    """Holds every POST until ``parties`` of them are in flight at once, then lets all through.

    Requests sent one after another never fill the gate: the first one fails with a
    TimeoutError (not an httpx error, so no retry can refill the gate). So a test proves
    that requests overlap without timing anything.
    """

    def __init__(self, parties: int, timeout: float = 30.0) -> None:
        self.parties, self.timeout = parties, timeout
        self.arrived = 0
        self._inner = httpx.AsyncHTTPTransport()
        self._full: asyncio.Event | None = None  # made on the loop that uses it

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self._full = self._full or asyncio.Event()
            self.arrived += 1
            if self.arrived >= self.parties:
                self._full.set()
            await asyncio.wait_for(self._full.wait(), self.timeout)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], Gate]]:
    """``gate(n)``: the shared connection pool behind a `Gate` of ``n`` parties."""
    from tokenhot_jupyter._runtime import runtime

    clients: list[httpx.AsyncClient] = []

    def install(parties: int) -> Gate:
        gate = Gate(parties)
        clients.append(httpx.AsyncClient(transport=gate, follow_redirects=True))
        monkeypatch.setattr(runtime, "http", lambda: clients[-1])
        return gate

    yield install
    monkeypatch.undo()
    for client in clients:
        runtime.run(client.aclose())
