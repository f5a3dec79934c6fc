"""The simulator's request limit (#9: a token bucket, an empty-body 429) and its in-flight log."""

from __future__ import annotations

import threading

import httpx
import pytest

from tokenhot_jupyter.simulator import Simulator

from simulator_support import HI, bare, chat


def test_over_the_limit_is_an_empty_429_and_the_bucket_refills_with_the_clock(
    sim: Simulator, http: httpx.Client
) -> None:
    sim.rate_limit, sim.rate_burst = 2, None  # a bucket of one second's worth: 2
    assert [chat(http).status_code for _ in range(3)] == [200, 200, 429]
    refused = chat(http)
    assert refused.status_code == 429 and refused.content == b""
    assert "retry-after" not in refused.headers  # the gateway's in-memory limiter sends none
    sim.clock.advance(0.5)  # one request's worth
    assert [chat(http).status_code for _ in range(2)] == [200, 429]
    sim.clock.advance(10)  # refills to the burst, not beyond it
    assert [chat(http).status_code for _ in range(3)] == [200, 200, 429]


def test_the_limit_is_per_key_and_only_on_billable_routes(
    sim: Simulator, http: httpx.Client
) -> None:
    sim.rate_limit, sim.rate_burst = 1, 1
    assert chat(http).status_code == 200 and chat(http).status_code == 429
    assert http.get("/v1/models").status_code == 200  # reads are not limited
    with bare(sim) as other:
        other.headers["Authorization"] = "Bearer sk-otherKey123"
        assert chat(other).status_code == 200  # another key has its own bucket
    sim.rate_limit = None
    assert chat(http).status_code == 200  # switched off while running


def test_a_switch_adds_a_whole_second_retry_after(sim: Simulator, http: httpx.Client) -> None:
    sim.rate_limit, sim.rate_burst, sim.rate_retry_after = 4, 1, True
    assert chat(http).status_code == 200
    refused = chat(http)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"


def test_the_log_says_how_many_were_in_flight_and_whether_each_reply_went_out(
    sim: Simulator, http: httpx.Client
) -> None:
    body = {"model": "gpt-5", "messages": HI}
    gate = threading.Barrier(3)

    def slow_chat() -> None:
        with httpx.Client(base_url=sim.base_url, timeout=10) as client:
            gate.wait()
            client.post(
                "/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {sim.api_key}", "X-Sim-Fault": "slow=1"},
            )

    threads = [threading.Thread(target=slow_chat) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.in_flight for r in sim.requests) == [1, 2, 3]
    assert all(r.completed for r in sim.requests) and sim.in_flight == 0
    http.get("/__sim__")  # control routes are neither logged nor counted
    chat(http)
    assert sim.requests[-1].in_flight == 1
    with pytest.raises(httpx.TransportError):
        http.post("/v1/chat/completions", json=body, headers={"X-Sim-Fault": "drop"})
    assert sim.requests[-1].completed is False and sim.in_flight == 0
