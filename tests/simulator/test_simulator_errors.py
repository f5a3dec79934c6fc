"""The simulator's error envelopes, model and quota errors (spec §12 #7-#13)."""

from __future__ import annotations

import httpx

from tokenhot_jupyter.simulator import Simulator

from simulator_support import HI, RID_SUFFIX, bare, chat, envelope_a, faulty, video


def test_7_missing_model_400_and_validation_500(http: httpx.Client) -> None:
    missing = http.post("/v1/chat/completions", json={"messages": HI})
    assert missing.status_code == 400 and "param" not in envelope_a(missing)
    no_messages = http.post("/v1/chat/completions", json={"model": "gpt-5"})
    assert no_messages.status_code == 500
    error = envelope_a(no_messages)
    assert error["code"] == "invalid_request" and error["type"] == "new_api_error"
    assert error["param"] == "" and error["message"].startswith("field messages is required")
    broken = http.post(
        "/v1/chat/completions",
        content=b'{"model": "gpt-5",',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 500 and envelope_a(broken)["code"] == "invalid_request"
    no_model_image = http.post("/v1/images/generations", json={"prompt": "x"})
    assert (
        no_model_image.status_code == 500
        and "model is required" in envelope_a(no_model_image)["message"]
    )


def test_8_unknown_model_is_503_model_not_found(http: httpx.Client) -> None:
    response = chat(http, model="gpt-9")
    assert response.status_code == 503
    error = envelope_a(response)
    assert error["code"] == "model_not_found"
    assert error["message"].startswith(
        "No available channel for model gpt-9 under group default (distributor)"
    )


def test_9_rate_limit_shapes(http: httpx.Client) -> None:
    empty = faulty(http, "429")
    assert empty.status_code == 429 and empty.content == b"" and "Retry-After" not in empty.headers
    hinted = faulty(http, "429:retry-after=2")
    assert hinted.status_code == 429 and hinted.headers["Retry-After"] == "2"
    redis = http.post(
        "/v1/chat/completions",
        json={"model": "gpt-5", "messages": HI},
        headers={"X-Sim-Fault": "429:redis"},
    )
    assert redis.status_code == 429 and "您已达到请求数限制" in envelope_a(redis)["message"]


def test_10_gemini_errors_are_envelope_a_with_numeric_code(http: httpx.Client) -> None:
    response = http.post("/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": []})
    assert response.status_code == 400
    error = envelope_a(response)
    assert (
        error["code"] == 400
        and isinstance(error["code"], int)
        and error["type"] == "upstream_error"
    )
    bad_ratio = {
        "contents": [{"parts": [{"text": "x"}]}],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": "7:0"},
        },
    }
    wrong = http.post("/v1beta/models/gemini-2.5-flash-image:generateContent", json=bad_ratio)
    assert wrong.status_code == 400 and envelope_a(wrong)["code"] == 400
    failed = http.post(
        "/v1beta/models/gemini-2.5-flash:generateContent",
        json={"contents": [{"parts": [{"text": "x"}]}]},
        headers={"X-Sim-Fault": "500"},
    )
    assert failed.status_code == 500 and envelope_a(failed)["code"] == 500


def test_11_messages_errors_b_inside_the_relay_a_before(sim: Simulator, http: httpx.Client) -> None:
    relay = http.post("/v1/messages", json={"model": "claude-opus-4-6"})
    assert relay.status_code == 500
    body = relay.json()
    assert body["type"] == "error" and body["error"]["type"] == "new_api_error"
    assert RID_SUFFIX.search(body["error"]["message"])
    with bare(sim) as c:
        auth = c.post("/v1/messages", json={"model": "claude-opus-4-6", "messages": HI})
    assert auth.status_code == 401 and "error" in auth.json() and "type" not in auth.json()
    unknown = http.post("/v1/messages", json={"model": "claude-9", "messages": HI})
    assert unknown.status_code == 503 and envelope_a(unknown)["code"] == "model_not_found"


def test_12_endpoints_a_channel_cannot_convert(http: httpx.Client) -> None:
    claude = http.post("/v1/responses", json={"model": "claude-opus-4-6", "input": "hi"})
    assert claude.status_code == 500 and envelope_a(claude)["code"] == "convert_request_failed"
    image = http.post(
        "/v1/images/generations", json={"model": "gemini-2.5-flash-image", "prompt": "x"}
    )
    assert image.status_code == 500 and envelope_a(image)["code"] == "convert_request_failed"
    assert "only imagen models are supported" in envelope_a(image)["message"]


def test_13_broke_balance_403_and_exhausted_token_401(sim: Simulator, http: httpx.Client) -> None:
    broke = {"Authorization": "Bearer sk-broke1"}
    response = http.post(
        "/v1/chat/completions", json={"model": "gpt-5", "messages": HI}, headers=broke
    )
    assert response.status_code == 403 and envelope_a(response)["code"] == "insufficient_user_quota"
    assert envelope_a(response)["message"].startswith("用户额度不足, 剩余额度:")
    task_create = http.post(
        "/v1/video/generations", json={"model": "sora-2", "prompt": "x"}, headers=broke
    )
    assert task_create.status_code == 403
    assert task_create.json() == {
        "code": "insufficient_user_quota",
        "message": task_create.json()["message"],
        "data": None,
    }
    assert http.get("/v1/models", headers=broke).status_code == 200, "reads are not charged"
    task = video(http).json()["id"]
    sim.exhaust_token(sim.api_key)
    for path in (f"/v1/video/generations/{task}", f"/v1/videos/{task}", "/v1/models"):
        assert http.get(path).status_code == 401
    sim.exhaust_token(sim.api_key, exhausted=False)
    assert http.get(f"/v1/videos/{task}").status_code == 200


def test_13_token_exhaustion_over_http(sim: Simulator, http: httpx.Client) -> None:
    assert http.post("/__sim__/tokens", json={"key": sim.api_key}).status_code == 200
    assert http.get("/v1/models").status_code == 401
