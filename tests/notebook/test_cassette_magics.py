"""``%tokenhot record`` / ``replay`` in a real InteractiveShell against the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from IPython.core.error import UsageError

import tokenhot_jupyter as th

if TYPE_CHECKING:
    from magics_support import Shell

pytest_plugins = ("magics_support",)

CHAT = "%%chat -m gpt-5.4-mini --new\nName three rivers."


def _answer(shell: Shell) -> tuple[str, dict[str, Any]]:
    final = shell.final()
    return final["data"]["text/markdown"], final["metadata"]["tokenhot"]


def _note(shell: Shell) -> str:
    return str(shell.final()["data"]["text/plain"])


def _status(shell: Shell) -> str:
    shell.ok("%tokenhot status")
    return str(shell.final()["data"]["text/plain"])


def test_record_stop_replay_and_stop_again(shell: Shell, tmp_path: Path) -> None:
    assert "Cassette" in _status(shell) and "none" in _status(shell)
    shell.ok(f"%tokenhot record {tmp_path / 'lesson'}")
    assert "Recording every gateway exchange" in _note(shell)
    assert "recording to" in _status(shell)
    shell.ok(CHAT)
    live, live_meta = _answer(shell)
    assert "replayed" not in live and "replayed" not in live_meta
    shell.ok("%tokenhot record --stop")
    assert "Stopped recording: 1 exchanges" in _note(shell)
    shell.sim.stop()  # from here on, nothing could answer but the cassette
    shell.ok(f"%tokenhot replay {tmp_path / 'lesson'} --speed 0")
    assert "nothing goes to the network" in _note(shell)
    shell.ok(CHAT)
    again, meta = _answer(shell)
    assert again.split("<sub>")[0] == live.split("<sub>")[0]
    assert meta["replayed"] is True and meta["cassette"] == "lesson"
    assert "replayed" in again.split("<sub>")[1]
    status = _status(shell)
    assert "replaying" in status and "1 answers given" in status and "not asked" in status
    shell.ok("%tokenhot replay --stop")
    result = shell.run(CHAT)  # back to the (stopped) gateway
    assert isinstance(result.error_in_exec, th.APIConnectionError)


def test_a_miss_fails_the_cell_in_one_line_and_sends_nothing(shell: Shell, tmp_path: Path) -> None:
    shell.ok(f"%tokenhot record {tmp_path / 'lesson'}")
    shell.ok(CHAT)
    shell.ok("%tokenhot record --stop")
    shell.ok(f"%tokenhot replay {tmp_path / 'lesson'}")
    sent = len(shell.sim.requests)
    result = shell.run("%%chat -m gpt-5.4-mini --new\nSomething never recorded")
    error = result.error_in_exec
    assert isinstance(error, th.CassetteMissError) and len(error._render_traceback_()) == 1
    assert "gpt-5.4-mini" in str(error) and "'Something never recorded'" in str(error)
    assert len(shell.sim.requests) == sent


def test_bad_cassette_lines_are_one_line_errors(shell: Shell, tmp_path: Path) -> None:
    for line, cls, text in (
        ("%tokenhot replay", UsageError, "replay PATH"),
        ("%tokenhot record", UsageError, "record PATH"),
        (f"%tokenhot replay {tmp_path} --speed -2", UsageError, "--speed needs 0 or more"),
        (f"%tokenhot replay {tmp_path / 'none'}", th.CassetteFormatError, "No cassette at"),
        ("%tokenhot record --stop", th.InvalidInputError, "no cassette is in use"),
    ):
        error = shell.run(line).error_in_exec
        assert isinstance(error, cls) and text in str(error), (line, error)
    shell.ok(f"%tokenhot record {tmp_path / 'lesson'}")
    error = shell.run("%tokenhot replay --stop").error_in_exec
    assert isinstance(error, th.InvalidInputError) and "recording to" in str(error)


def test_the_environment_records_a_whole_run(
    shell: Shell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENHOT_CASSETTE", str(tmp_path / "run"))
    monkeypatch.setenv("TOKENHOT_CASSETTE_MODE", "record")
    shell.ok(CHAT)
    assert (tmp_path / "run" / "cassette.jsonl").read_text().count("\n") == 2  # head, 1 exchange


def test_a_replayed_video_polls_on_the_cassettes_fast_clock(
    shell: Shell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenhot_jupyter._notebook._tasks import TaskManager
    from tokenhot_jupyter.simulator import Simulator

    from magics_support import SimTime

    video = "%%video -m doubao-seedance-2.0-fast --duration 4 --wait\nA paper boat"
    with Simulator(speed=400, token_delay=0) as sim:  # a clock that moves by itself
        monkeypatch.setenv("TOKENHOT_BASE_URL", sim.base_url)
        poll_time = SimTime(sim, monkeypatch, lambda: shell.session)  # this gateway's time
        shell.session.poll_clock = poll_time.clock()
        shell.ok(f"%tokenhot record {tmp_path / 'video'}")
        shell.ok(video)
        shell.ok("%tokenhot record --stop")
    recorded = shell.final()
    first_delays: list[float] = []
    start = TaskManager._start

    def noted(self: TaskManager, tracked: Any, first_delay: float) -> None:
        first_delays.append(first_delay)
        start(self, tracked, first_delay)

    monkeypatch.setattr(TaskManager, "_start", noted)
    monkeypatch.setenv("TOKENHOT_HOME", str(tmp_path / "student"))  # a fresh kernel elsewhere
    shell.ip.run_line_magic("unload_ext", "tokenhot_jupyter")
    shell.ip.run_line_magic("load_ext", "tokenhot_jupyter")
    shell.ok("%config Tokenhot.video_poll_interval = 10")  # live polls would wait 5 s, then 10 s
    shell.ok(f"%tokenhot replay {tmp_path / 'video'} --speed 0")
    shell.ok(video)
    card = shell.final()
    assert first_delays == [0.0]  # the replayed create's poll hint, not the 5 s first delay
    assert card["metadata"]["tokenhot"]["phase"] == "done" and card is not recorded
    assert card["metadata"]["tokenhot"]["replayed"] is True
