"""Fixtures for the magics tests: a real InteractiveShell wired to the simulator (import them)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenhot_jupyter._poll import Clock

ENV_NAMES = (
    "TOKENHOT_API_KEY", "TOKENHOT_BASE_URL", "TOKENHOT_SIMULATED", "TOKENHOT_CHAT_MODEL",
    "TOKENHOT_IMAGE_MODEL", "TOKENHOT_VIDEO_MODEL", "TOKENHOT_AUDIO_MODEL", "TOKENHOT_OUTPUT_DIR",
    "TOKENHOT_HOME", "JPY_SESSION_NAME",
)  # fmt: skip


class SimTime:
    """The poll clock of a kernel under test: on a manual simulator clock, polls cost no time.

    While the simulator's clock stands, a poll's sleep lasts until the test's jumps
    (``sim.clock.advance``) have moved simulated time on by its length, so a poller waits
    for the next jump instead of for real time; a jump first lets every poller of the
    session reach its sleep, so none misses it.  While the clock runs at a speed, a sleep is
    real: the simulator's poll hints are real seconds then, to keep clients at its pace.
    """

    def __init__(self, sim: Any, monkeypatch: pytest.MonkeyPatch, session: Any) -> None:
        self.sim_clock = sim.clock
        self._session = session  # () -> the kernel session whose pollers sleep here
        self._lock = threading.Lock()
        self._waiting: dict[asyncio.Future[None], tuple[asyncio.AbstractEventLoop, Any]] = {}
        jump = sim.clock.advance

        def advance(seconds: float) -> float:
            self.settle()
            now: float = jump(seconds)
            self._wake()
            return now

        monkeypatch.setattr(sim.clock, "advance", advance)

    def clock(self) -> Clock:
        """The `Clock` a task manager polls by (its deadline counts the simulated sleeps)."""
        return Clock(sleep=self.sleep)

    async def sleep(self, seconds: float) -> None:
        """Real seconds on a running clock; on a standing one, simulated seconds jumped."""
        if self.sim_clock.speed:
            await asyncio.sleep(seconds)
            return
        target = self.sim_clock.now() + seconds
        loop = asyncio.get_running_loop()
        while True:
            woken: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiting[woken] = (loop, asyncio.current_task())
            try:
                if self.sim_clock.now() >= target:  # read once listed: no jump is missed
                    return
                await woken
            finally:
                with self._lock:
                    self._waiting.pop(woken, None)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every active poller of the session sleeps here (a jump must reach it)."""
        end = time.monotonic() + timeout
        while not self.sim_clock.speed and not self._parked():
            assert time.monotonic() < end, "a video poller never went to sleep"
            time.sleep(0.002)

    def _parked(self) -> bool:
        from tokenhot_jupyter._follow import ACTIVE

        session = self._session()
        if session is None:  # the extension is not loaded: nothing polls
            return True
        tracked = session.tasks().tracked()
        pollers = [t._poller for t in tracked if t.phase in ACTIVE]
        with self._lock:
            asleep = {task for _, task in self._waiting.values()}
        return all(poller in asleep for poller in pollers)

    def _wake(self) -> None:
        with self._lock:
            waiting = list(self._waiting.items())
        for woken, (loop, _) in waiting:
            loop.call_soon_threadsafe(_resolve, woken)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Shell:
    """A real InteractiveShell with a capturing display publisher and helpers."""

    def __init__(self, ip: Any, sim: Any, time: SimTime | None = None) -> None:
        self.ip = ip
        self.sim = sim
        self.time = time

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
        from tokenhot_jupyter._notebook._session import session_of

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
    shell = Shell(ip, tokenhot_simulator)
    shell.time = SimTime(tokenhot_simulator, monkeypatch, lambda: shell.session)
    session = shell.session
    session.config.stream_interval = 0.0
    session.config.video_poll_interval = 0.05
    session.poll_clock = shell.time.clock()  # video tasks poll in simulated seconds
    try:
        yield shell
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
