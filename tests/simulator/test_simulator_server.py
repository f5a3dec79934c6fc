"""The simulator itself: start and stop, its clock, many clients at once, the pytest fixtures
and the package's public names.
"""

from __future__ import annotations

import threading

import httpx
import pytest

from tokenhot_jupyter.simulator import SimClock, Simulator

from simulator_support import HI, NO_TLS


def test_streams_flush_per_event_and_stop_is_prompt() -> None:
    sim = Simulator(speed=0, token_delay=5.0).start()
    try:
        with (
            httpx.Client(
                base_url=sim.base_url, headers={"Authorization": "Bearer sk-t1"}, verify=NO_TLS
            ) as c,
            c.stream(
                "POST",
                "/v1/chat/completions",
                json={"model": "gpt-5", "messages": HI, "stream": True},
            ) as response,
        ):
            first = next(response.iter_lines())
            assert first.startswith("data: {") and '"role":"assistant"' in first
            # The rest of the stream would take minutes (5 s a token): stop must not wait
            # for it. Generous bound: it only limits how long a failure takes.
            stopper = threading.Thread(target=sim.stop, daemon=True)
            stopper.start()
            stopper.join(timeout=30)
            assert not stopper.is_alive(), "stop() waited for an open stream"
    finally:
        sim.stop()
    assert not sim.running


def test_sim_clock() -> None:
    clock = SimClock(speed=0, start=1000.0)
    assert clock.now() == 1000.0 and clock.advance(15) == 1015.0
    clock.speed = 2
    assert clock.speed == 2 and clock.now() >= 1015.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_many_clients_at_once(sim: Simulator) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with httpx.Client(
                base_url=sim.base_url, headers={"Authorization": "Bearer sk-t2"}, verify=NO_TLS
            ) as c:
                for _ in range(5):
                    assert (
                        c.post(
                            "/v1/video/generations", json={"model": "sora-2", "prompt": "x"}
                        ).status_code
                        == 200
                    )
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(sim.tasks()) == 30 and len({t["id"] for t in sim.tasks()}) == 30


def test_session_fixture_is_running(tokenhot_simulator_session: Simulator) -> None:
    assert tokenhot_simulator_session.running and tokenhot_simulator_session.clock.speed == 0


def test_public_names_resolve() -> None:
    import tokenhot_jupyter.simulator as package

    assert package.__all__ == sorted(package.__all__)
    assert all(getattr(package, name) for name in package.__all__)
    with pytest.raises(AttributeError):
        _ = package.Nope
