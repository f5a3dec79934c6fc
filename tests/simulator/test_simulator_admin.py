"""The simulator's control routes (``/__sim__``) and its redacted request log."""

from __future__ import annotations

import httpx
import pytest

from tokenhot_jupyter.simulator import Simulator

from simulator_support import PNG, bare, chat, video


def test_control_routes(sim: Simulator, http: httpx.Client) -> None:
    with bare(sim) as admin:
        assert (
            admin.post(
                "/__sim__/faults", json={"spec": "502", "path": "/v1/models", "times": 1}
            ).status_code
            == 200
        )
        assert admin.post("/__sim__/faults", json={"spec": "nonsense"}).status_code == 400
        assert len(admin.get("/__sim__/faults").json()["pending"]) == 1
        assert http.get("/v1/models").status_code == 502
        before = sim.clock.now()
        now = admin.post("/__sim__/clock", json={"advance": 100}).json()["now"]
        assert now == pytest.approx(before + 100)
        log = admin.get("/__sim__/requests").json()["requests"]
        assert [r["path"] for r in log] == ["/v1/models"] and log[0]["status"] == 502
        assert admin.get("/__sim__").json()["base_url"] == sim.base_url
        video(http)
        assert admin.get("/__sim__/tasks").json()["tasks"][0]["status"] == "NOT_START"
        admin.delete("/__sim__/requests")
        assert sim.requests == []


def test_requests_are_recorded_with_keys_redacted(sim: Simulator, http: httpx.Client) -> None:
    http.post(
        "/v1/images/edits",
        data={"model": "gpt-image-1.5", "prompt": "x", "size": "16x16"},
        files=[("image[]", ("a.png", PNG, "image/png"))],
        params={"key": "sk-secret1"},
    )
    entry = sim.requests[-1]
    assert entry.method == "POST" and entry.form["prompt"] == ["x"]
    assert entry.files[0] == ("image[]", "a.png", "image/png", len(PNG))
    assert entry.headers["authorization"] == "Bearer sk-***" and entry.query["key"] == ["sk-***"]
    assert sim.api_key not in repr(sim.requests) and "sk-secret1" not in repr(sim.requests)
    chat(http, temperature=0.3, max_tokens=50)
    assert sim.requests[-1].json["temperature"] == 0.3
    upstream = sim.requests[-1].upstream
    assert "temperature" not in upstream and upstream["max_completion_tokens"] == 50
