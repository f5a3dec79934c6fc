"""Video tasks against the gateway simulator over loopback.

The simulator's clock is manual: tests move it with ``clock.advance`` and wait on the
tracked task's own events (with timeouts), so nothing depends on wall-clock video timings.
Display output is captured by a recording display publisher on a real InteractiveShell.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import tokenhot_jupyter as th
from tokenhot_jupyter import _exceptions as E
from tokenhot_jupyter import _follow
from tokenhot_jupyter._notebook import _tasks
from tokenhot_jupyter._notebook._tasks import TaskManager, Tracked, WaitInterrupted, task_line
from tokenhot_jupyter._poll import Clock
from tokenhot_jupyter._store._journal import Journal, TaskRow
from tokenhot_jupyter._store._leases import Keeper

MODEL = "sora-2"
PROMPT = "A paper boat on a rainy street"
PARAMS: dict[str, Any] = {"duration": 4}
DONE_AFTER = 90.0  # simulated seconds until a 4 s sora-2 task succeeds
WAIT = 60.0  # real seconds to wait for background work: a bound for a loaded machine, not a speed
CELL: contextvars.ContextVar[str] = contextvars.ContextVar("cell")  # stands in for ipykernel's


@dataclass
class Message:
    """One display message as a frontend would receive it."""

    data: dict[str, str]
    metadata: dict[str, Any]
    display_id: str
    update: bool
    thread: str
    cell: str | None


class Recorder(DisplayPublisher):
    """A display publisher that keeps every message, the way ipykernel's reads its parent."""

    def __init__(self, shell: InteractiveShell) -> None:
        # IPython's display publishers have no annotations.
        super().__init__(shell=shell)  # type: ignore[no-untyped-call]
        self.messages: list[Message] = []
        self._cond = threading.Condition()

    def publish(  # type: ignore[override]
        self,
        data: dict[str, str],
        metadata: dict[str, Any] | None = None,
        *,
        transient: dict[str, Any] | None = None,
        update: bool = False,
        **kwargs: Any,
    ) -> None:
        message = Message(
            data, metadata or {}, (transient or {}).get("display_id", ""), update,
            threading.current_thread().name, CELL.get(None),
        )  # fmt: skip
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def of(self, display_id: str) -> list[Message]:
        """Messages for one card."""
        with self._cond:
            return [m for m in self.messages if m.display_id == display_id]


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[InteractiveShell]:
    config = Config()
    config.HistoryManager.enabled = False
    ip = InteractiveShell.instance(config=config)
    saved = ip.display_pub
    yield ip
    ip.display_pub = saved


@pytest.fixture
def recorder(shell: InteractiveShell) -> Recorder:
    shell.display_pub = Recorder(shell)
    return shell.display_pub


@pytest.fixture
def sim(tokenhot_simulator: Any) -> Any:
    tokenhot_simulator.clock.speed = 0  # only `advance` moves simulated time
    return tokenhot_simulator


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The notebook's folder: the kernel's cwd."""
    folder = tmp_path / "nb"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def make_manager(sim: Any, journal_path: Path, **options: Any) -> TaskManager:
    """A manager with a fast poll interval and a quick-retrying client."""

    def client() -> th.Client:
        return th.Client(sim.api_key, sim.base_url, max_retries=1, backoff=0.001)

    settings: dict[str, Any] = {
        "poll_interval": 0.01,
        "deadline": 300.0,
    }  # real seconds: only a stalled machine is near it
    settings.update(options)
    out = Path("tokenhot_outputs").resolve()  # the test's folder, even for a late download
    manager = TaskManager(client, Journal(journal_path), lambda: out, **settings)
    manager.min_update_interval = 0.0
    return manager


@pytest.fixture
def manager(sim: Any, tmp_path: Path, workdir: Path) -> Iterator[TaskManager]:
    mgr = make_manager(sim, tmp_path / "home" / "tasks.sqlite3")
    yield mgr
    mgr.shutdown()


def create(manager: TaskManager, prompt: str = PROMPT, **kwargs: Any) -> tuple[Tracked, bool]:
    return manager.create(model=MODEL, prompt=prompt, params=dict(PARAMS), **kwargs)


def finish(sim: Any, tracked: Tracked, seconds: float = DONE_AFTER) -> str:
    """Move simulated time on and wait for the task to be done here."""
    sim.clock.advance(seconds)
    phase = tracked.wait(timeout=WAIT)
    assert tracked.done, f"still {phase} after {WAIT:g} s"
    return phase


def until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait for ``predicate`` (state changes happen on the runtime thread)."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.005)


def requests(sim: Any, method: str | None = None, contains: str = "") -> list[Any]:
    return [
        r for r in sim.requests if (method is None or r.method == method) and contains in r.path
    ]


# --- create, journal, reuse ------------------------------------------------------------------


def test_journal_written_before_the_first_poll(sim: Any, tmp_path: Path, workdir: Path) -> None:
    seen: list[tuple[str, int]] = []

    class Watching(Journal):
        def record(self, **fields: Any) -> TaskRow:
            row = super().record(**fields)
            seen.append((row.task_id, len(requests(sim, "GET", "/v1/videos/"))))
            return row

        def promote(self, marker: str, task_id: str, **fields: Any) -> bool:
            promoted = super().promote(marker, task_id, **fields)
            seen.append((task_id, len(requests(sim, "GET", "/v1/videos/"))))
            return promoted

    mgr = make_manager(sim, tmp_path / "tasks.sqlite3")
    mgr.journal = Watching(mgr.journal.path)
    try:
        tracked, reused = create(mgr, cell_key="nb.ipynb#1")
        marker, real = seen  # the in-flight marker before sending, then it becomes the id
        assert marker[0].startswith("inflight-") and marker[1] == 0
        assert not reused and real == (tracked.task_id, 0), "journalled before any poll"
        assert Journal(mgr.journal.path).get(marker[0]) is None, "the marker goes once the id is in"
        assert [r.task_id for r in Journal(mgr.journal.path).list()] == [tracked.task_id]
        row = Journal(mgr.journal.path).get(tracked.task_id)  # another connection sees it
        assert row is not None and row.model == MODEL and row.prompt == PROMPT
        assert row.params == PARAMS and row.cell_key == "nb.ipynb#1"
        assert row.base_url == sim.base_url and row.fingerprint == tracked.fingerprint
        until(lambda: len(requests(sim, "GET", tracked.task_id)) > 0)
    finally:
        mgr.shutdown()


def test_card_goes_live_then_plays_the_saved_video(
    sim: Any, manager: TaskManager, recorder: Recorder, workdir: Path
) -> None:
    tracked, _ = create(manager)
    display_id = tracked.display()
    sim.clock.advance(45)
    until(lambda: tracked.task.status == "running")
    assert finish(sim, tracked) == "done"
    messages = recorder.of(display_id)
    assert [m.update for m in messages] == [False] + [True] * (len(messages) - 1)
    assert {m.display_id for m in recorder.messages} == {display_id}
    first, last = messages[0], messages[-1]
    assert (
        "<progress" in first.data["text/html"] and first.metadata["tokenhot"]["phase"] == "polling"
    )
    assert any(m.metadata["tokenhot"]["status"] == "running" for m in messages)
    expected = f"tokenhot_outputs/{tracked.task_id}.mp4"
    assert f'src="{expected}"' in last.data["text/html"] and expected in last.data["text/plain"]
    assert last.metadata["tokenhot"]["file"] == expected
    assert last.metadata["tokenhot"]["params"] == PARAMS
    assert tracked.file == workdir / expected
    assert tracked.file.read_bytes()[4:8] == b"ftyp", "a real MP4"
    row = manager.journal.get(tracked.task_id)
    assert row is not None and (row.status, row.file) == ("succeeded", str(tracked.file))
    assert len(requests(sim, "GET", "/content")) == 1, "downloaded once (sora: gateway proxy)"


def test_an_idle_poll_with_unchanged_status_publishes_nothing(
    sim: Any, manager: TaskManager, recorder: Recorder
) -> None:
    tracked, _ = create(manager)
    display_id = tracked.display()
    started = time.monotonic()
    # Long enough for a ticking elapsed time to have moved on by a second.
    until(lambda: len(requests(sim, "GET", tracked.task_id)) >= 20)
    until(lambda: time.monotonic() - started > 1.2)
    assert [m.update for m in recorder.of(display_id)] == [False], "polls that found nothing new"
    assert "started " in recorder.of(display_id)[0].data["text/plain"]
    sim.clock.advance(45)  # now the task moves, and so does its card
    until(lambda: len(recorder.of(display_id)) > 1)
    states = [
        (m.metadata["tokenhot"]["phase"], m.metadata["tokenhot"]["status"],
         m.metadata["tokenhot"]["progress"])
        for m in recorder.of(display_id)
    ]  # fmt: skip
    assert all(a != b for a, b in itertools.pairwise(states)), "each update shows a change"


def test_polls_that_find_nothing_new_render_no_card(
    sim: Any, manager: TaskManager, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: list[str] = []
    render = _tasks.render  # type: ignore[attr-defined]

    def counted(phase: Any, info: Any) -> Any:
        rendered.append(phase)
        return render(phase, info)

    monkeypatch.setattr(_tasks, "render", counted)
    tracked, _ = create(manager)
    tracked.display()
    until(lambda: len(requests(sim, "GET", tracked.task_id)) >= 3)
    before = len(rendered)
    until(lambda: len(requests(sim, "GET", tracked.task_id)) >= 20)
    assert len(rendered) == before, "the card is drawn again only when it would show a change"
    sim.clock.advance(45)  # the task moves: its card is drawn and sent
    until(lambda: tracked.task.status == "running")
    until(lambda: len(rendered) > before)


def test_at_most_a_few_polls_run_at_once(
    sim: Any, manager: TaskManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_follow, "POLL_SLOTS", 2)
    running, most, polled = [0], [0], set()
    real = th.AsyncClient.get_video

    async def slow_poll(self: th.AsyncClient, task_id: str, model: str | None = None) -> Any:
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            await asyncio.sleep(0.02)
            return await real(self, task_id, model)
        finally:
            running[0] -= 1
            polled.add(task_id)

    monkeypatch.setattr(th.AsyncClient, "get_video", slow_poll)
    made = [create(manager, prompt=f"{PROMPT} {i}")[0] for i in range(6)]
    until(lambda: polled >= {t.task_id for t in made})
    assert most[0] == 2


def test_leases_of_tasks_due_together_are_renewed_in_one_transaction(
    sim: Any, tmp_path: Path, workdir: Path
) -> None:
    journal_path = tmp_path / "home" / "tasks.sqlite3"
    keeper = Keeper(Journal(journal_path), "kernel")
    batches: list[int] = []
    hold_all = keeper.hold_all

    def counting(delays: dict[str, float]) -> dict[str, bool]:
        batches.append(len(delays))
        return hold_all(delays)

    keeper.hold_all = counting  # type: ignore[method-assign]
    mgr = make_manager(sim, journal_path, leases=keeper)
    try:
        made = [create(mgr, prompt=f"{PROMPT} {i}")[0] for i in range(5)]
        until(lambda: max(batches, default=0) > 1)
        assert all(t.phase == "polling" for t in made)
    finally:
        mgr.shutdown()


def test_rerun_reuses_unless_new(sim: Any, manager: TaskManager) -> None:
    first, reused = create(manager)
    assert not reused
    again, reused = create(manager)
    assert reused and again is first
    assert len(requests(sim, "POST")) == 1, "an unchanged cell does not pay twice"
    fresh, reused = create(manager, new=True)
    assert not reused and fresh.task_id != first.task_id
    other, reused = create(manager, prompt=PROMPT + "!")
    assert not reused and other.task_id not in (first.task_id, fresh.task_id)
    assert len(requests(sim, "POST")) == 3


def test_rerun_after_restart_shows_the_saved_video_without_network(
    sim: Any, manager: TaskManager, recorder: Recorder, tmp_path: Path
) -> None:
    tracked, _ = create(manager)
    finish(sim, tracked)
    manager.shutdown()
    before = len(sim.requests)
    restarted = make_manager(sim, manager.journal.path)
    try:
        again, reused = create(restarted)
        assert reused and again.task_id == tracked.task_id and again.phase == "done"
        assert again.file == tracked.file
        again.display()
        assert "<video" in recorder.messages[-1].data["text/html"]
        assert len(sim.requests) == before, "nothing fetched again"
    finally:
        restarted.shutdown()


def test_attach_after_restart_resumes_and_finishes(
    sim: Any, tmp_path: Path, workdir: Path, recorder: Recorder
) -> None:
    journal_path = tmp_path / "tasks.sqlite3"
    first = make_manager(sim, journal_path)
    tracked, _ = create(first)
    first.shutdown()  # the kernel dies mid-task
    assert tracked.phase == "stopped"
    restarted = make_manager(sim, journal_path)  # fresh TaskManager, fresh Journal object
    try:
        again = restarted.attach(tracked.task_id)
        assert again is not tracked and again.model == MODEL and again.prompt == PROMPT
        display_id = again.display()
        assert finish(sim, again) == "done"
        assert again.file is not None and again.file.exists()
        assert "<video" in recorder.of(display_id)[-1].data["text/html"]
    finally:
        restarted.shutdown()


def test_attach_unknown_id_is_clear(manager: TaskManager) -> None:
    with pytest.raises(E.InvalidInputError, match="task_nope") as info:
        manager.attach("task_nope")
    assert "%tokenhot tasks" in str(info.value)
    with pytest.raises(E.InvalidInputError):
        manager.attach("")


def test_attach_adopts_an_id_made_elsewhere_when_given_its_model(
    sim: Any, manager: TaskManager
) -> None:
    client = th.Client(sim.api_key, sim.base_url)
    task = client.video(PROMPT, MODEL, duration=4)
    tracked = manager.attach(task.id, model=MODEL)
    assert manager.journal.get(task.id) is not None
    assert finish(sim, tracked) == "done"


# --- the ways a task ends ----------------------------------------------------------------------


def test_the_poller_sleeps_on_the_managers_clock(sim: Any, tmp_path: Path, workdir: Path) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the simulated gateway moves on meanwhile
        slept.append(seconds)
        sim.clock.advance(seconds)

    journal = tmp_path / "tasks.sqlite3"
    mgr = make_manager(sim, journal, poll_interval=10.0, deadline=600, clock=Clock(sleep=sleep))
    try:
        tracked, _ = create(mgr)
        assert tracked.wait(timeout=20) == "done"
        assert slept[0] == 5.0 and set(slept[1:]) == {10.0}, "first soon, then every interval"
        assert sum(slept) >= DONE_AFTER > sum(slept[:-1])
    finally:
        mgr.shutdown()


def test_failure_shows_the_reason_and_is_not_reused(
    sim: Any, manager: TaskManager, recorder: Recorder
) -> None:
    sim.faults.add("task-fail", path="/v1/video*", method="POST")
    tracked, _ = create(manager)
    display_id = tracked.display()
    assert finish(sim, tracked) == "failed"
    assert tracked.error and "moderation" in tracked.error
    last = recorder.of(display_id)[-1]
    assert tracked.error in last.data["text/plain"] and "refunded" in last.data["text/plain"]
    with pytest.raises(E.TaskFailedError, match="moderation"):
        tracked.raise_for_status()
    row = manager.journal.get(tracked.task_id)
    assert row is not None and row.status == "failed" and row.error == tracked.error
    again, reused = create(manager)
    assert not reused and again.task_id != tracked.task_id


def test_stuck_task_stops_at_our_deadline_and_can_resume(
    sim: Any, tmp_path: Path, workdir: Path, recorder: Recorder
) -> None:
    mgr = make_manager(sim, tmp_path / "tasks.sqlite3", deadline=0.3)
    try:
        sim.faults.add("task-stuck", path="/v1/video*", method="POST")
        tracked, _ = create(mgr)
        display_id = tracked.display()
        sim.clock.advance(3600)
        assert tracked.wait(timeout=WAIT) == "timeout"
        text = recorder.of(display_id)[-1].data["text/plain"]
        assert "still running" in text and f"%tokenhot attach {tracked.task_id}" in text
        with pytest.raises(E.TaskTimeoutError):
            tracked.raise_for_status()
        row = mgr.journal.get(tracked.task_id)
        assert row is not None and row.status == "running", "never marked failed locally"
        assert mgr.attach(tracked.task_id) is tracked and tracked.phase == "polling"
        assert tracked.wait(timeout=WAIT) == "timeout", "a resumed poll gets a fresh deadline"
    finally:
        mgr.shutdown()


def test_expired_url_shows_result_unavailable(
    sim: Any, manager: TaskManager, recorder: Recorder
) -> None:
    sim.faults.add("expire-url", path="/v1/video*", method="POST")
    tracked, _ = create(manager)
    display_id = tracked.display()
    assert finish(sim, tracked) == "error"
    text = recorder.of(display_id)[-1].data["text/plain"]
    assert "could not be downloaded" in text and "expire" in text and "--new" in text
    with pytest.raises(E.ResultUnavailableError):
        tracked.raise_for_status()
    assert tracked.file is None and not list(Path("tokenhot_outputs").glob("*.mp4"))


def test_401_mid_poll_stops_with_the_quota_hint(
    sim: Any, manager: TaskManager, recorder: Recorder
) -> None:
    tracked, _ = create(manager)
    display_id = tracked.display()
    until(lambda: len(requests(sim, "GET", tracked.task_id)) > 0)
    sim.exhaust_token(sim.api_key)
    assert tracked.wait(timeout=WAIT) == "error"
    text = recorder.of(display_id)[-1].data["text/plain"]
    assert "top up" in text and f"%tokenhot attach {tracked.task_id}" in text
    with pytest.raises(E.AuthenticationError):
        tracked.raise_for_status()


def test_a_persistent_poll_error_shows_without_stopping_other_tasks(
    sim: Any, manager: TaskManager, recorder: Recorder
) -> None:
    broken, _ = create(manager)
    healthy, _ = create(manager, prompt="Another prompt")
    broken_id = broken.display()
    sim.faults.add("500", path=f"/v1/videos/{broken.task_id}", times=-1)
    until(lambda: broken.snapshot.warning is not None)
    assert finish(sim, healthy) == "done"
    assert broken.phase == "polling"
    assert "The last poll failed" in recorder.of(broken_id)[-1].data["text/plain"]
    sim.faults.clear()
    assert broken.wait(timeout=WAIT) == "done"
    assert broken.snapshot.warning is None


def test_cancel_stops_polling_and_attach_resumes(
    sim: Any, manager: TaskManager, recorder: Recorder
) -> None:
    tracked, _ = create(manager)
    display_id = tracked.display()
    until(lambda: len(requests(sim, "GET", tracked.task_id)) > 0)
    assert manager.cancel(tracked.task_id) is tracked
    assert tracked.phase == "stopped" and tracked._poller is not None and tracked._poller.done()
    text = recorder.of(display_id)[-1].data["text/plain"]
    assert "Polling stopped; the task may still finish and be billed" in text
    assert f"%tokenhot attach {tracked.task_id} resumes" in text
    polls = len(requests(sim, "GET", tracked.task_id))
    assert tracked.wait(timeout=0.05) == "stopped"
    assert len(requests(sim, "GET", tracked.task_id)) == polls
    manager.attach(tracked.task_id)
    assert finish(sim, tracked) == "done"
    with pytest.raises(E.InvalidInputError):
        manager.cancel("task_unknown")


def test_unwritable_journal_still_shows_the_id(
    sim: Any, tmp_path: Path, workdir: Path, recorder: Recorder
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    mgr = make_manager(sim, blocker / "tasks.sqlite3")
    try:
        with pytest.raises(E.ConfigurationError, match="TOKENHOT_HOME"):
            create(mgr)  # cannot check for an earlier task: refuse before paying
        assert requests(sim, "POST") == []
        tracked, _ = create(mgr, new=True)
        tracked.display()
        text = recorder.messages[-1].data["text/plain"]
        assert "Not saved to the task journal" in text and tracked.task_id in text
        again, reused = create(mgr)  # this kernel still remembers it
        assert reused and again is tracked
        assert finish(sim, tracked) == "done"
    finally:
        mgr.shutdown()


# --- where output goes -------------------------------------------------------------------------


def test_updates_land_in_the_cell_that_showed_the_card(
    sim: Any, manager: TaskManager, recorder: Recorder
) -> None:
    def in_cell(name: str, action: Callable[[], str]) -> str:
        def run() -> str:
            CELL.set(name)
            return action()

        return contextvars.Context().run(run)

    tracked, _ = create(manager)
    first = in_cell("cell-1", tracked.display)
    second = in_cell("cell-2", lambda: manager.attach(tracked.task_id).display())
    assert finish(sim, tracked) == "done"
    for display_id, cell in ((first, "cell-1"), (second, "cell-2")):
        messages = recorder.of(display_id)
        assert len(messages) > 2 and {m.cell for m in messages} == {cell}
        assert {m.thread for m in messages if m.update} == {"tokenhot-io"}
        assert "<video" in messages[-1].data["text/html"]


def test_ipykernel_routes_background_updates_by_parent_header(
    sim: Any, manager: TaskManager, shell: InteractiveShell
) -> None:
    zmqshell = pytest.importorskip("ipykernel.zmqshell")
    session_mod = pytest.importorskip("jupyter_client.session")

    class Socket:
        def __init__(self) -> None:
            self.sent: list[list[bytes]] = []

        def send_multipart(self, frames: list[Any], *args: Any, **kwargs: Any) -> None:
            self.sent.append([bytes(f) for f in frames])

    session, socket = session_mod.Session(key=b"test"), Socket()
    publisher = zmqshell.ZMQDisplayPublisher(session=session, pub_socket=socket)
    shell.display_pub = publisher

    def cell(msg_id: str, action: Callable[[], str]) -> str:
        # What ipykernel does for each execute_request: set_parent in the cell's context.
        def run() -> str:
            publisher.set_parent({"header": {"msg_id": msg_id, "msg_type": "execute_request"}})
            return action()

        return contextvars.copy_context().run(run)

    tracked, _ = create(manager)
    first = cell("exec-1", tracked.display)
    second = cell("exec-2", lambda: manager.attach(tracked.task_id).display())
    cell("exec-3", lambda: "a later cell is now the latest parent")
    assert finish(sim, tracked) == "done"
    parents: dict[str, set[str]] = {first: set(), second: set()}
    for frames in socket.sent:
        delim = frames.index(b"<IDS|MSG>")
        parent = json.loads(frames[delim + 3])
        content = json.loads(frames[delim + 5])
        parents[content["transient"]["display_id"]].add(parent.get("msg_id", "(no parent)"))
    assert parents == {first: {"exec-1"}, second: {"exec-2"}}


def test_terminal_ipython_prints_only_phase_changes(
    sim: Any, manager: TaskManager, shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    # Terminal IPython prints text/plain (its publisher has no annotations).
    shell.display_pub = DisplayPublisher(shell=shell)  # type: ignore[no-untyped-call]
    tracked, _ = create(manager)
    tracked.display()
    sim.clock.advance(45)
    until(lambda: tracked.task.status == "running")
    finish(sim, tracked)
    out = capsys.readouterr().out
    assert out.count(f"{MODEL} video {tracked.task_id}") == 3, out  # polling, downloading, done


def test_display_without_ipython_prints_text(
    sim: Any,
    manager: TaskManager,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(InteractiveShell, "initialized", classmethod(lambda cls: False))
    tracked, _ = create(manager)
    tracked.display()
    assert f"{MODEL} video {tracked.task_id}: queued" in capsys.readouterr().out


# --- waiting, subscribing, the key ---------------------------------------------------------


def test_wait_interrupted_leaves_the_task_polling(
    sim: Any, manager: TaskManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracked, _ = create(manager)

    def interrupt(timeout: float | None = None) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(tracked._finished, "wait", interrupt)
    with pytest.raises(WaitInterrupted) as info:
        tracked.wait()
    assert isinstance(info.value, KeyboardInterrupt)
    assert "still polling in the background" in info.value._render_traceback_()[0]
    assert tracked.phase == "polling"
    monkeypatch.undo()
    assert finish(sim, tracked) == "done"


def test_wait_timeout_returns_the_current_phase(manager: TaskManager) -> None:
    tracked, _ = create(manager)
    assert tracked.wait(timeout=0.05) == "polling"


def test_subscribe_and_unsubscribe(sim: Any, manager: TaskManager) -> None:
    seen: list[tuple[str, str]] = []
    unsubscribe = manager.subscribe(lambda t: seen.append((t.task_id, t.phase)))
    manager.subscribe(lambda t: 1 / 0)  # a broken monitor changes nothing
    tracked, _ = create(manager)
    finish(sim, tracked)
    phases = [p for i, p in seen if i == tracked.task_id]
    assert phases[0] == "polling" and phases[-1] == "done" and "downloading" in phases
    unsubscribe()
    count = len(seen)
    other, _ = create(manager, prompt="another")
    finish(sim, other)
    assert len(seen) == count
    assert manager.tracked() == [tracked, other] and manager.get(other.task_id) is other


def test_the_key_never_appears_anywhere(
    sim: Any, manager: TaskManager, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tokenhot_jupyter")
    key = sim.api_key
    outcomes: list[Tracked] = []
    for fault in ("", "task-fail", "expire-url"):
        if fault:
            sim.faults.add(fault, path="/v1/video*", method="POST")
        tracked, _ = create(manager, prompt=f"{PROMPT} {fault}")
        tracked.display()
        outcomes.append(tracked)
    sim.clock.advance(DONE_AFTER)
    texts: list[str] = []
    for tracked in outcomes:
        tracked.wait(timeout=WAIT)
        try:
            tracked.raise_for_status()
        except E.TokenhotError as exc:
            texts += [str(exc), repr(exc), *exc._render_traceback_()]
        texts += [repr(tracked), repr(tracked.info()), repr(tracked.card())]
    assert {t.phase for t in outcomes} == {"done", "failed", "error"}
    assert len(texts) > 6 and all(key not in text for text in texts)
    assert recorder.messages and all(key not in repr(m) for m in recorder.messages)
    assert all(key not in repr(row) for row in manager.list())
    assert key not in caplog.text
    manager.journal.close()
    for file in manager.journal.path.parent.iterdir():
        assert key.encode() not in file.read_bytes()


def test_shutdown_stops_every_poller(sim: Any, manager: TaskManager) -> None:
    tasks = [create(manager, prompt=f"prompt {i}")[0] for i in range(3)]
    manager.shutdown()
    assert all(t.phase == "stopped" and t._poller is not None and t._poller.done() for t in tasks)


def test_unknown_create_outcome_blocks_an_unchanged_rerun(sim: Any, manager: TaskManager) -> None:
    sim.faults.add("drop", path="/v1/video*", method="POST")
    with pytest.raises(E.TaskMaybeCreatedError):
        create(manager)
    rows = manager.journal.list()
    assert [r.status for r in rows] == ["maybe"] and rows[0].task_id.startswith("inflight-")
    posts = len(requests(sim, "POST"))
    with pytest.raises(E.TaskMaybeCreatedError, match="--new"):
        create(manager)  # the same cell again: not sent
    assert len(requests(sim, "POST")) == posts
    tracked, reused = create(manager, new=True)  # the user chose to pay again
    assert not reused and tracked.task_id.startswith("task_")
    with pytest.raises(E.InvalidInputError, match="never arrived"):
        manager.attach(rows[0].task_id)


def test_a_refused_create_leaves_no_marker(sim: Any, manager: TaskManager) -> None:
    sim.faults.add("upstream-429", path="/v1/video*", method="POST", times=10)
    with pytest.raises(E.RateLimitError):
        create(manager)
    assert manager.journal.list() == []


# --- a task made for another folder ------------------------------------------------------------


def folder_manager(sim: Any, journal_path: Path, folder: Path) -> TaskManager:
    """A kernel whose notebook lives in ``folder`` (its output folder is inside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    manager = make_manager(sim, journal_path)
    manager._output_dir = lambda: folder / "tokenhot_outputs"
    return manager


def finished_elsewhere(sim: Any, tmp_path: Path) -> tuple[Tracked, Path]:
    """A task made and saved by a notebook in ``a/``, that kernel gone; the journal stays."""
    journal_path = tmp_path / "home" / "tasks.sqlite3"
    first = folder_manager(sim, journal_path, tmp_path / "a")
    try:
        tracked, _ = create(first)
        finish(sim, tracked)
    finally:
        first.shutdown()
    assert tracked.file == tmp_path / "a" / "tokenhot_outputs" / f"{tracked.task_id}.mp4"
    return tracked, journal_path


def assert_plays_from_here(tracked: Tracked, original: Tracked, here: Path) -> None:
    local = here / "tokenhot_outputs" / f"{original.task_id}.mp4"
    assert tracked.task_id == original.task_id and tracked.phase == "done"
    assert tracked.file == local and local.read_bytes()[4:8] == b"ftyp"
    data, meta = tracked.card()
    src = f"tokenhot_outputs/{original.task_id}.mp4"
    assert f'src="{src}"' in data["text/html"] and "../" not in data["text/html"]
    assert meta["tokenhot"]["file"] == src


@pytest.mark.parametrize("how", ["rerun", "attach"])
def test_a_task_from_another_folder_is_copied_here_not_paid_again(
    sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    original, journal_path = finished_elsewhere(sim, tmp_path)
    posts, downloads = len(requests(sim, "POST")), len(requests(sim, "GET", "/content"))
    here = tmp_path / "b"
    second = folder_manager(sim, journal_path, here)
    monkeypatch.chdir(here)
    try:
        if how == "rerun":
            tracked, reused = create(second)
            assert reused
        else:
            tracked = second.attach(original.task_id)
        assert_plays_from_here(tracked, original, here)
        assert original.file is not None and original.file.exists(), "the first copy stays"
        assert len(requests(sim, "POST")) == posts, "never paid twice"
        assert len(requests(sim, "GET", "/content")) == downloads, "copied, not downloaded"
        row = second.journal.get(original.task_id)
        assert row is not None and row.file == str(tracked.file)
    finally:
        second.shutdown()


def test_a_task_whose_saved_file_is_gone_is_downloaded_again_here(
    sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original, journal_path = finished_elsewhere(sim, tmp_path)
    assert original.file is not None
    original.file.unlink()
    posts, downloads = len(requests(sim, "POST")), len(requests(sim, "GET", "/content"))
    here = tmp_path / "b"
    second = folder_manager(sim, journal_path, here)
    monkeypatch.chdir(here)
    try:
        tracked, reused = create(second)
        assert reused and tracked.wait(timeout=20) == "done"
        assert_plays_from_here(tracked, original, here)
        assert len(requests(sim, "POST")) == posts, "never paid twice"
        assert len(requests(sim, "GET", "/content")) == downloads + 1
    finally:
        second.shutdown()


def test_the_same_kernel_in_another_folder_copies_its_video_too(
    sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = {"now": tmp_path / "a"}
    mgr = folder_manager(sim, tmp_path / "tasks.sqlite3", folder["now"])
    mgr._output_dir = lambda: folder["now"] / "tokenhot_outputs"
    try:
        original, _ = create(mgr)
        finish(sim, original)
        folder["now"] = here = tmp_path / "b"  # %cd, or %config Tokenhot.output_dir
        here.mkdir()
        monkeypatch.chdir(here)
        again, reused = create(mgr)
        assert reused and again is original
        assert_plays_from_here(again, original, here)
    finally:
        mgr.shutdown()


def test_a_video_folder_outside_the_notebook_says_the_player_cannot_reach_it(
    sim: Any, manager: TaskManager, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    manager._output_dir = lambda: outside
    tracked, _ = create(manager)
    finish(sim, tracked)
    data, _ = tracked.card()
    assert "outside the notebook's folder" in data["text/plain"]
    assert "Tokenhot.output_dir" in data["text/html"] and tracked.task_id in data["text/plain"]


# --- the task table: one vocabulary, no ghosts -----------------------------------------------


def statuses(manager: TaskManager, now: float | None = None) -> dict[str, str]:
    """Each task's status as the table shows it (this kernel's view)."""
    sources, _ = manager.overview()
    return {s.task_id: task_line(s, now or time.time()).label for s in sources}


def test_a_cancelled_task_says_stopped_here_and_in_another_kernel(
    sim: Any, manager: TaskManager, tmp_path: Path
) -> None:
    tracked, _ = create(manager)
    until(lambda: len(requests(sim, "GET", tracked.task_id)) > 0)
    manager.cancel(tracked.task_id)
    assert statuses(manager)[tracked.task_id] == "stopped"
    other = make_manager(sim, manager.journal.path)  # a new kernel reads only the journal
    try:
        assert statuses(other)[tracked.task_id] == "stopped"
        text = other.table()["text/plain"]
        assert "stopped" in text and "queued" not in text and "may still finish" in text
        assert other.attach(tracked.task_id).phase == "polling", "attach resumes it"
    finally:
        other.shutdown()


def test_a_kernel_that_shuts_down_leaves_the_gateway_status(sim: Any, manager: TaskManager) -> None:
    tracked, _ = create(manager)
    manager.shutdown()  # not a cancel: the task is merely not followed any more
    other = make_manager(sim, manager.journal.path)
    try:
        assert statuses(other)[tracked.task_id] == "queued (not polled here)"
    finally:
        other.shutdown()


def test_an_id_that_arrives_while_the_journal_is_busy_replaces_its_marker_later(
    sim: Any, tmp_path: Path, workdir: Path, recorder: Recorder
) -> None:
    class Busy(Journal):
        busy = True

        def promote(self, marker: str, task_id: str, **fields: Any) -> bool:
            if self.busy:
                self.busy = False
                raise E.ConfigurationError("The task journal is locked by another kernel.")
            return super().promote(marker, task_id, **fields)

    mgr = make_manager(sim, tmp_path / "tasks.sqlite3")
    mgr.journal = Busy(mgr.journal.path)
    try:
        tracked, _ = create(mgr)
        tracked.display()
        assert "Not saved to the task journal" in recorder.messages[-1].data["text/plain"]
        until(lambda: mgr.journal.get(tracked.task_id) is not None)  # the poller saved it
        assert [r.task_id for r in mgr.journal.list()] == [tracked.task_id], "no ghost marker"
        until(lambda: "Not saved" not in recorder.messages[-1].data["text/plain"])
        assert "inflight-" not in mgr.table()["text/plain"]
    finally:
        mgr.shutdown()


class CtrlC(BaseException):  # like KeyboardInterrupt, not an Exception
    """What SIGINT raises in this test: a regression fails the test, not the whole run."""


def test_an_interrupt_as_the_id_arrives_still_journals_it(
    sim: Any, tmp_path: Path, workdir: Path
) -> None:
    def press(signum: int, frame: Any) -> None:
        raise CtrlC

    previous = signal.signal(signal.SIGINT, press)

    class Interrupted(Journal):
        def promote(self, marker: str, task_id: str, **fields: Any) -> bool:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, just as the reply came back
            return super().promote(marker, task_id, **fields)

        def record(self, **fields: Any) -> TaskRow:
            if not fields["task_id"].startswith("inflight-"):
                signal.raise_signal(signal.SIGINT)
            return super().record(**fields)

    mgr = make_manager(sim, tmp_path / "tasks.sqlite3")
    mgr.journal = Interrupted(mgr.journal.path)
    try:
        with pytest.raises(WaitInterrupted) as info:
            create(mgr)
        (row,) = mgr.journal.list()
        assert row.task_id.startswith("task_"), "the id is journalled and the marker gone"
        assert row.task_id in str(info.value) and "polling in the background" in str(info.value)
        tracked = mgr.get(row.task_id)
        assert tracked is not None and tracked.phase == "polling"
        again, reused = create(mgr)
        assert reused and again.task_id == row.task_id and len(requests(sim, "POST")) == 1
    finally:
        signal.signal(signal.SIGINT, previous)
        mgr.shutdown()


def test_an_unknown_create_outcome_shows_clearly(sim: Any, manager: TaskManager) -> None:
    sim.faults.add("drop", path="/v1/video*", method="POST")
    with pytest.raises(E.TaskMaybeCreatedError):
        create(manager)
    (marker,) = manager.journal.list()
    assert statuses(manager)[marker.task_id] == "unknown"
    assert "check your account's task log" in manager.table()["text/plain"]


def test_a_marker_left_by_a_kernel_that_died_mid_create_turns_unknown(
    manager: TaskManager,
) -> None:
    start = 1_700_000_000.0
    manager.journal.record(
        task_id="inflight-dead", model=MODEL, prompt=PROMPT, status="creating", created_at=start
    )
    assert statuses(manager, now=start + 5)["inflight-dead"] == "creating"
    assert statuses(manager, now=start + 3600)["inflight-dead"] == "unknown"
    line = task_line(manager.list()[0], start + 3600)
    assert line.progress is None and "never arrived" in line.note and not line.attachable
