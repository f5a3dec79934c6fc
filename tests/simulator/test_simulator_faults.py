"""The simulator's fault plan: spec parsing, status faults, drops, broken bodies, delays."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tokenhot_jupyter.simulator import FaultPlan, Simulator
from tokenhot_jupyter.simulator._faults import parse_fault

from simulator_support import HI, blocks, chat, envelope_a


def test_fault_specs_parse_and_combine() -> None:
    fault = parse_fault("slow=0.5, 429:retry-after=3")
    assert (fault.slow, fault.status, fault.retry_after) == (0.5, 429, "3")
    for bad in ("418", "teapot", "slow=-1", "503:cpu"):
        with pytest.raises(ValueError):
            parse_fault(bad)
    plan = FaultPlan()
    plan.add("500", path="/v1/chat/*", method="post", times=2)
    assert plan.take("GET", "/v1/chat/completions") is None
    assert plan.take("POST", "/v1/chat/completions") and plan.take("POST", "/v1/chat/x")
    assert plan.take("POST", "/v1/chat/completions") is None and len(plan) == 0


@pytest.mark.parametrize(
    ("spec", "status", "code"),
    [
        ("500", 500, None),
        ("502", 502, "bad_response_status_code"),
        ("503", 503, "system_cpu_overloaded"),
        ("503:model", 503, "model_not_found"),
    ],
)
def test_status_faults(http: httpx.Client, spec: str, status: int, code: str | None) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={"model": "gpt-5", "messages": HI},
        headers={"X-Sim-Fault": spec},
    )
    assert response.status_code == status and envelope_a(response)["code"] == code


def test_drop_and_html_and_malformed(sim: Simulator, http: httpx.Client) -> None:
    sim.faults.add("drop", path="/v1/chat/completions")
    with pytest.raises(httpx.RemoteProtocolError):
        chat(http)
    sim.faults.add("html", path="/v1/chat/completions")
    page = chat(http)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sim.faults.add("malformed", path="/v1/chat/completions")
    broken = chat(http)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    assert chat(http).json()["choices"], "faults are used up"


def test_drop_mid_stream_and_mid_download(sim: Simulator, http: httpx.Client) -> None:
    sim.faults.add("drop-mid-stream", path="/v1/chat/completions")
    received = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream(
            "POST", "/v1/chat/completions", json={"model": "gpt-5", "messages": HI, "stream": True}
        ) as response,
    ):
        for line in response.iter_lines():
            received.append(line)
    assert any(line.startswith("data: {") for line in received) and "data: [DONE]" not in received
    sim.faults.add("drop-mid-stream", path="/v1/models")
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/v1/models")


def test_malformed_stream_event(http: httpx.Client) -> None:
    text = http.post(
        "/v1/chat/completions",
        json={"model": "gpt-5", "messages": HI, "stream": True},
        headers={"X-Sim-Fault": "malformed"},
    ).text
    with pytest.raises(json.JSONDecodeError):
        [json.loads(b["data"]) for b in blocks(text) if b.get("data") != "[DONE]"]


def test_slow_fault_delays_the_reply(http: httpx.Client) -> None:
    started = time.monotonic()
    assert http.get("/v1/models", headers={"X-Sim-Fault": "slow=0.1"}).status_code == 200
    assert time.monotonic() - started >= 0.1


def test_bad_fault_header_is_400(http: httpx.Client) -> None:
    assert http.get("/v1/models", headers={"X-Sim-Fault": "teapot"}).status_code == 400
