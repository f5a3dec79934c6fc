"""One poller per video task: leases in the journal, and the kernels' poll loop that keeps them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tokenhot_jupyter as th
from tokenhot_jupyter._notebook._tasks import TaskManager
from tokenhot_jupyter._store._journal import Journal
from tokenhot_jupyter._store._leases import MIN_LEASE, Keeper, lease_for, pid_alive

MODEL = "sora-2"
PROMPT = "A paper boat on a rainy street"
DONE_AFTER = 90.0  # simulated seconds until a 4 s sora-2 task succeeds


class Clock:
    """A settable wall clock."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped) on this host."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    return child.pid


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "tasks.sqlite3")


@pytest.fixture
def task_id(journal: Journal) -> str:
    return journal.record(task_id="task_abc", model=MODEL, prompt=PROMPT).task_id


# --- the lease rules ----------------------------------------------------------------------------


def test_one_holder_until_it_stops_renewing(journal: Journal, task_id: str) -> None:
    clock = Clock()
    first, second = Keeper(journal, "kernel", clock), Keeper(journal, "kernel", clock)
    assert first.hold(task_id, 10) and first.hold(task_id, 10), "taken, then renewed"
    assert not second.hold(task_id, 10), "a live kernel keeps its task"
    lease = journal.lease(task_id)
    assert lease is not None and lease.holder == first.holder
    assert lease.expires_at == pytest.approx(clock.now + lease_for(10))
    clock.now += lease_for(10) + 0.001  # `first` stopped renewing (its kernel died)
    assert second.hold(task_id, 10) and not first.hold(task_id, 10)


def test_a_kernel_takes_over_from_the_server_never_the_reverse(
    journal: Journal, task_id: str
) -> None:
    server, other_server = Keeper(journal, "server"), Keeper(journal, "server")
    kernel = Keeper(journal, "kernel")
    assert server.hold(task_id, 10) and not other_server.hold(task_id, 10)
    assert kernel.hold(task_id, 10), "%tokenhot attach in a new kernel takes the task"
    assert not server.hold(task_id, 10) and not other_server.hold(task_id, 10)


def test_a_dead_process_on_this_host_loses_its_lease_at_once(
    journal: Journal, task_id: str
) -> None:
    crashed = Keeper(journal, "kernel", pid=dead_pid())
    assert crashed.hold(task_id, 600)
    assert Keeper(journal, "server").hold(task_id, 10), "no need to wait 20 minutes"


def test_a_process_on_another_host_is_trusted_until_its_lease_expires(
    journal: Journal, task_id: str
) -> None:
    clock = Clock()
    remote = Keeper(journal, "kernel", clock, host="elsewhere", pid=dead_pid())
    server = Keeper(journal, "server", clock)
    assert remote.hold(task_id, 10)
    assert not server.hold(task_id, 10), "a pid means nothing on another host"
    clock.now += MIN_LEASE + 10
    assert server.hold(task_id, 10)


def test_release_frees_the_task_at_once(journal: Journal, task_id: str) -> None:
    kernel, server = Keeper(journal, "kernel"), Keeper(journal, "server")
    before = journal.get(task_id)
    assert kernel.hold(task_id, 10)
    kernel.release(task_id)
    assert journal.lease(task_id) is None and server.hold(task_id, 10)
    after = journal.get(task_id)
    assert before is not None and after is not None and after.updated_at > before.updated_at
    kernel.release_all()  # not its lease any more: nothing happens
    assert journal.lease(task_id) is not None


def test_lease_covers_twice_the_next_sleep() -> None:
    assert lease_for(1) == MIN_LEASE and lease_for(60) == 135.0


# --- the poll loop keeps its lease ----------------------------------------------------------------


class Counting:
    """Counts one process's polls (the simulator sees every process's)."""

    def __init__(self) -> None:
        self.polls = 0

    def wrap(self, client: th.Client) -> th.Client:
        real = client.aio.get_video

        async def get_video(task_id: str, model: str | None = None) -> Any:
            self.polls += 1
            return await real(task_id, model)

        client.aio.get_video = get_video  # type: ignore[method-assign]
        return client


def kernel(sim: Any, journal: Journal, folder: Path, keeper: Keeper, http: Counting) -> TaskManager:
    """A kernel's task manager with leases, polling fast."""
    client = http.wrap(th.Client(sim.api_key, sim.base_url, max_retries=1, backoff=0.001))
    manager = TaskManager(
        lambda: client, Journal(journal.path), lambda: folder, poll_interval=0.01, deadline=60,
        leases=keeper, notebook=lambda: str(folder.parent / "nb.ipynb"),
    )  # fmt: skip
    manager.min_update_interval = 0.0
    return manager


def until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.005)


@pytest.fixture
def sim(tokenhot_simulator: Any) -> Any:
    tokenhot_simulator.clock.speed = 0
    return tokenhot_simulator


@pytest.fixture
def managers() -> Iterator[list[TaskManager]]:
    made: list[TaskManager] = []
    yield made
    for manager in made:
        manager.shutdown()


def test_a_second_kernel_follows_the_journal_instead_of_polling(
    sim: Any, journal: Journal, tmp_path: Path, managers: list[TaskManager]
) -> None:
    first_http, second_http = Counting(), Counting()
    first = kernel(sim, journal, tmp_path / "a", Keeper(journal, "kernel"), first_http)
    second = kernel(sim, journal, tmp_path / "b", Keeper(journal, "kernel"), second_http)
    managers += [first, second]
    tracked, _ = first.create(model=MODEL, prompt=PROMPT, params={"duration": 4})
    origin = journal.origin(tracked.task_id)
    assert origin is not None and origin.output_dir == str(tmp_path / "a")
    assert origin.notebook == str(tmp_path / "nb.ipynb")
    until(lambda: first_http.polls > 0)
    follower = second.attach(tracked.task_id)  # the same task, shown in another notebook
    sim.clock.advance(45)
    until(lambda: follower.task.status == "running")  # learnt from the journal
    assert second_http.polls == 0, "one poller per task"
    sim.clock.advance(DONE_AFTER)
    assert tracked.wait(20) == "done" and follower.wait(20) == "done"
    assert second_http.polls <= 1, "at most one look at the gateway, for the result URL"
    assert follower.file == tmp_path / "b" / f"{tracked.task_id}.mp4"
    assert journal.lease(tracked.task_id) is None, "given back when done"


def test_a_follower_takes_over_when_the_poller_dies(
    sim: Any, journal: Journal, tmp_path: Path, managers: list[TaskManager]
) -> None:
    clock = Clock()
    first_http, second_http = Counting(), Counting()
    first = kernel(sim, journal, tmp_path / "a", Keeper(journal, "kernel", clock), first_http)
    second = kernel(sim, journal, tmp_path / "b", Keeper(journal, "kernel", clock), second_http)
    managers += [first, second]
    tracked, _ = first.create(model=MODEL, prompt=PROMPT, params={"duration": 4})
    until(lambda: first_http.polls > 0)
    follower = second.attach(tracked.task_id)
    first.leases = None  # a crash: the poller stops and its lease stays behind
    first.shutdown()
    polls = second_http.polls
    clock.now += 3600  # the dead kernel's lease runs out
    sim.clock.advance(DONE_AFTER)
    assert follower.wait(20) == "done" and second_http.polls > polls
    assert follower.file is not None and follower.file.exists()
