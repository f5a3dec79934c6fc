"""The simulator's video tasks: create, both poll shapes, the clock, content, expiry and
failures (spec §12 #27-#38).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tokenhot_jupyter.simulator import Simulator
from tokenhot_jupyter.simulator.media import mp4_info

from simulator_support import DOUBAO, NO_TLS, PNG, TASK_ID, faulty, poll, video


@pytest.mark.parametrize("path", ["/v1/video/generations", "/v1/videos"])
@pytest.mark.parametrize(
    "model", ["doubao-seedance-2.0", "MiniMax-Hailuo-02", "happyhorse-1.0-t2v", "sora-2"]
)
def test_27_create_reply(http: httpx.Client, path: str, model: str) -> None:
    response = video(http, path, model=model)
    assert response.status_code == 200 and "X-New-Api-Other-Ratios" in response.headers
    body = response.json()
    assert TASK_ID.match(body["id"]) and body["task_id"] == body["id"]
    expected = {"id", "task_id", "object", "model", "status", "progress", "created_at"}
    assert set(body) >= expected and (set(body) == expected) == (model != "sora-2")
    assert (body["object"], body["model"], body["status"], body["progress"]) == (
        "video",
        model,
        "queued",
        0,
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"prompt": "  "}, 400, "invalid_request"),
        ({"seconds": 8}, 400, "invalid_json"),
        ({"duration": 5000}, 400, "invalid_seconds"),
        ({"seconds": "-1"}, 400, "invalid_seconds"),
        ({"model": "sora-2", "size": "1792x1024"}, 400, "invalid_size"),
        ({"model": "MiniMax-Hailuo-2.3-Fast"}, 400, "2013"),
        ({"metadata": "{not json"}, 400, "invalid_json"),
    ],
)
def test_28_task_validation_envelope_c(
    http: httpx.Client, body: dict[str, Any], status: int, code: str
) -> None:
    response = video(http, **body)
    assert response.status_code == status
    reply = response.json()
    assert (
        set(reply) == {"code", "message", "data"}
        and reply["data"] is None
        and reply["code"] == code
    )
    if code == "2013":
        assert reply["message"].startswith("hailuo api error: ")
    if code == "invalid_request":
        assert reply["message"] == "prompt is required"


def test_28_sora_pro_sizes_and_multipart(http: httpx.Client, sim: Simulator) -> None:
    assert video(http, "/v1/videos", model="sora-2-pro", size="1792x1024").status_code == 200
    form = http.post(
        "/v1/videos",
        data={"model": "sora-2", "prompt": "x", "seconds": "8", "size": "1280x720"},
        files=[("input_reference", ("r.png", PNG, "image/png"))],
    )
    assert (
        form.status_code == 200
        and form.json()["seconds"] == "8"
        and form.json()["size"] == "1280x720"
    )
    assert sim.requests[-1].files[0].name == "input_reference"


def test_29_happyhorse_documented_body_behind_a_switch(sim: Simulator, http: httpx.Client) -> None:
    documented = {
        "model": "happyhorse-1.0-i2v",
        "input": {
            "prompt": "The horse gallops",
            "media": [{"type": "first_frame", "url": "https://x/h.png"}],
        },
        "parameters": {"resolution": "720P", "duration": 5},
    }
    assert http.post("/v1/video/generations", json=documented).status_code == 200
    fallback = {
        "model": "happyhorse-1.0-i2v",
        "prompt": "The horse gallops",
        "duration": 5,
        "metadata": {"input": documented["input"], "parameters": documented["parameters"]},
    }
    sim.happyhorse_documented_body = False
    refused = http.post("/v1/video/generations", json=documented)
    assert refused.status_code == 400 and refused.json()["message"] == "prompt is required"
    assert http.post("/v1/video/generations", json=fallback).status_code == 200
    merged = sim.requests[-1].upstream
    assert merged["input"]["media"][0]["type"] == "first_frame" and merged["input"]["prompt"]
    assert merged["parameters"]["prompt_extend"] is True, "metadata merges over the built body"


def test_30_status_ladder_follows_the_clock(sim: Simulator, http: httpx.Client) -> None:
    task = video(http, seconds="5").json()["id"]
    seen = []
    for _ in range(8):
        generic, openai = poll(http, task)
        seen.append((generic["status"], generic["progress"], openai["status"], openai["progress"]))
        sim.clock.advance(15)
    assert seen[0] == ("NOT_START", "0%", "unknown", 0)
    assert seen[1] == ("QUEUED", "10%", "queued", 10)
    assert ("IN_PROGRESS", "50%", "in_progress", 50) in seen
    assert seen[6] == ("SUCCESS", "100%", "completed", 100), "60 s + 6 s x 5 = 90 s"


def test_30_hailuo_never_queued_and_sora_integer_progress(
    sim: Simulator, http: httpx.Client
) -> None:
    hailuo = video(http, model="MiniMax-Hailuo-02").json()["id"]
    sora = video(http, "/v1/videos", model="sora-2").json()["id"]
    statuses, progress = set(), []
    for _ in range(10):
        sim.clock.advance(15)
        statuses.add(poll(http, hailuo)[0]["status"])
        progress.append(poll(http, sora)[1]["progress"])
    assert "QUEUED" not in statuses and "IN_PROGRESS" in statuses
    assert all(isinstance(p, int) for p in progress) and any(0 < p < 100 for p in progress)


def test_30_video_duration_is_configurable(sim: Simulator, http: httpx.Client) -> None:
    sim.video_base, sim.video_per_second = 0.0, 3.0
    task = video(http, seconds="5").json()["id"]
    sim.clock.advance(15)
    assert poll(http, task)[0]["status"] == "SUCCESS", "3 s x 5 = 15 s: done at the first refresh"


def test_31_generic_poll_shape(sim: Simulator, http: httpx.Client) -> None:
    task = video(http).json()["id"]
    response = http.get(f"/v1/video/generations/{task}").json()
    assert response["code"] == "success" and response["message"] == ""
    data = response["data"]
    assert data["task_id"] == task and data["platform"] == "54" and "result_url" not in data
    assert data["data"]["id"].startswith("cgt-"), "before a refresh: the raw create reply"
    sim.clock.advance(600)
    data = http.get(f"/v1/video/generations/{task}").json()["data"]
    assert data["data"]["content"]["video_url"] == data["result_url"]
    assert data["properties"]["upstream_model_name"] == "doubao-seedance-2-0-260128"


def test_32_openai_poll_quirks(sim: Simulator, http: httpx.Client) -> None:
    seedance = video(http).json()["id"]
    hailuo = video(http, model="MiniMax-Hailuo-2.3").json()["id"]
    sora = video(http, "/v1/videos", model="sora-2").json()["id"]
    sim.clock.advance(30)
    running = http.get(f"/v1/videos/{seedance}").json()
    assert (
        running["metadata"] == {"url": ""}
        and running["completed_at"]
        and running["task_id"] == seedance
    )
    assert "task_id" not in http.get(f"/v1/videos/{hailuo}").json()
    sim.clock.advance(600)
    done = http.get(f"/v1/videos/{seedance}").json()
    assert done["metadata"]["url"].startswith(sim.base_url + "/__files/")
    sora_done = http.get(f"/v1/videos/{sora}").json()
    assert (
        sora_done["status"] == "completed"
        and "metadata" not in sora_done
        and sora_done["id"] == sora
    )
    assert "url" not in json.dumps(sora_done)
    assert (
        http.get(f"/v1/video/generations/{sora}")
        .json()["data"]["result_url"]
        .endswith(f"/v1/videos/{sora}/content")
    )


def test_33_cancelled_seedance_stays_in_progress_until_the_sweep(
    sim: Simulator, http: httpx.Client
) -> None:
    task = faulty(http, "task-stuck", "/v1/video/generations", DOUBAO).json()["id"]
    sim.clock.advance(6 * 3600)
    generic, _ = poll(http, task)
    assert (generic["status"], generic["progress"], generic["data"]["status"]) == (
        "IN_PROGRESS",
        "30%",
        "cancelled",
    )
    sim.clock.advance(18 * 3600)
    generic, openai = poll(http, task)
    assert generic["status"] == "FAILURE" and generic["fail_reason"] == "任务超时（1440分钟）"
    assert openai["status"] == "failed"


def test_34_unknown_or_foreign_task(http: httpx.Client) -> None:
    expected = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    unknown = http.get("/v1/video/generations/task_" + "x" * 32)
    assert unknown.status_code == 400 and unknown.json() == expected
    task = video(http).json()["id"]
    other = {"Authorization": "Bearer sk-someoneelse"}
    assert http.get(f"/v1/videos/{task}", headers=other).json() == expected
    assert http.get(f"/v1/videos/{task}/content", headers=other).status_code == 404


def test_35_content_route(sim: Simulator, http: httpx.Client) -> None:
    task = video(http, seconds="4").json()["id"]
    early = http.get(f"/v1/videos/{task}/content")
    assert early.status_code == 400
    assert early.json() == {
        "error": {
            "message": "Task is not completed yet, current status: NOT_START",
            "type": "invalid_request_error",
        }
    }
    sim.clock.advance(60)
    assert "IN_PROGRESS" in http.get(f"/v1/videos/{task}/content").json()["error"]["message"]
    missing = http.get("/v1/videos/task_" + "y" * 32 + "/content")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Task not found"
    sim.clock.advance(60)
    whole = http.get(f"/v1/videos/{task}/content", headers={"Range": "bytes=0-99"})
    assert whole.status_code == 200 and whole.headers["cache-control"] == "public, max-age=86400"
    info = mp4_info(whole.content)
    assert (
        info["codec"] == "avc1"
        and len(whole.content) > 100
        and info["duration"] == pytest.approx(4, abs=0.5)
    )
    sim.clock.advance(86400)
    gone = http.get(f"/v1/videos/{task}/content")
    assert gone.status_code == 502 and gone.json()["error"]["message"].startswith(
        "Upstream service returned status"
    )


def test_36_result_urls_expire(sim: Simulator, http: httpx.Client) -> None:
    task = video(http).json()["id"]
    sim.clock.advance(600)
    url = poll(http, task)[0]["result_url"]
    with httpx.Client(verify=NO_TLS) as anonymous:
        assert anonymous.get(url).status_code == 200
        sim.clock.advance(86400)
        assert anonymous.get(url).status_code == 403
    expired = http.post(
        "/v1/video/generations",
        json={"model": "doubao-seedance-2.0", "prompt": "x"},
        headers={"X-Sim-Fault": "expire-url"},
    ).json()["id"]
    sim.clock.advance(600)
    data = poll(http, expired)[0]
    assert data["status"] == "SUCCESS" and http.get(data["result_url"]).status_code == 403
    assert http.get(f"/v1/videos/{expired}/content").status_code == 502


def test_37_upstream_429_at_create(sim: Simulator, http: httpx.Client) -> None:
    sim.faults.add("upstream-429", path="/v1/video*", method="POST")
    response = video(http)
    assert response.status_code == 429
    assert response.json() == {
        "code": "fail_to_fetch_task",
        "message": "当前分组上游负载已饱和，请稍后再试",
        "data": None,
    }
    assert video(http).status_code == 200, "one fault, one request"


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("doubao-seedance-2.0", "/v1/video/generations"),
        ("MiniMax-Hailuo-02", "/v1/video/generations"),
        ("happyhorse-1.0-t2v", "/v1/video/generations"),
        ("sora-2", "/v1/videos"),
    ],
)
def test_38_failures_carry_reasons(
    sim: Simulator, http: httpx.Client, model: str, path: str
) -> None:
    task = http.post(
        path, json={"model": model, "prompt": "x"}, headers={"X-Sim-Fault": "task-fail"}
    ).json()["id"]
    sim.clock.advance(600)
    generic, openai = poll(http, task)
    assert generic["status"] == "FAILURE" and generic["fail_reason"]
    assert generic["result_url"] == generic["fail_reason"], "result_url falls back to the reason"
    assert openai["status"] == "failed" and openai["error"]["code"] and openai["error"]["message"]


def test_hailuo_failure_puts_the_reason_in_metadata_url(sim: Simulator, http: httpx.Client) -> None:
    body = {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "duration": 6}
    task = faulty(http, "task-fail", "/v1/video/generations", body).json()["id"]
    sim.clock.advance(600)
    generic, openai = poll(http, task)
    assert openai["metadata"]["url"] == generic["fail_reason"] == "input new_sensitive"
    assert openai["error"] == {"code": "1026", "message": "input new_sensitive"}
