"""The gateway simulator over raw HTTP: every item of the spec's §12 checklist, and more.

Each test names the checklist item it proves (``#N``). Video timings move by advancing the
simulator's manual clock; nothing here sleeps.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import ssl
import threading
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tokenhot_jupyter._catalog import MODELS
from tokenhot_jupyter.simulator import FaultPlan, SimClock, Simulator
from tokenhot_jupyter.simulator._faults import parse_fault
from tokenhot_jupyter.simulator.media import mp4_info, png, speech_wav, transcribe_audio, wav

PNG = png("a red square", 32, 32)
TASK_ID = re.compile(r"^task_[A-Za-z0-9]{32}$")
RID_SUFFIX = re.compile(r" \(request id: (\w+)\)$")
HI = [{"role": "user", "content": "Say hi"}]
DOUBAO = {"model": "doubao-seedance-2.0", "prompt": "x"}
NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # loopback is plain HTTP: skip loading CAs


@pytest.fixture
def sim(tokenhot_simulator: Simulator) -> Simulator:
    return tokenhot_simulator


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    with httpx.Client(base_url=sim.base_url, headers=headers, timeout=10, verify=NO_TLS) as client:
        yield client


def bare(sim: Simulator) -> httpx.Client:
    """A client without any key."""
    return httpx.Client(base_url=sim.base_url, timeout=10, verify=NO_TLS)


def chat(http: httpx.Client, model: str = "gpt-5", **body: Any) -> httpx.Response:
    return http.post("/v1/chat/completions", json={"model": model, "messages": HI, **body})


def faulty(
    http: httpx.Client,
    spec: str,
    path: str = "/v1/chat/completions",
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    """POST with an ``X-Sim-Fault`` header."""
    body = body or {"model": "gpt-5", "messages": HI}
    return http.post(path, json=body, headers={"X-Sim-Fault": spec})


def blocks(text: str) -> list[dict[str, str]]:
    """SSE text → one dict per event: its ``event``, ``data`` and ``comment`` lines."""
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                fields["comment"] = line[1:].strip()
            else:
                name, _, value = line.partition(": ")
                fields[name] = value
        out.append(fields)
    return out


def datas(text: str) -> list[Any]:
    """The JSON of every ``data:`` line (the ``[DONE]`` sentinel kept as a string)."""
    return [
        b["data"] if b["data"] == "[DONE]" else json.loads(b["data"])
        for b in blocks(text)
        if "data" in b
    ]


def envelope_a(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


def video(http: httpx.Client, path: str = "/v1/video/generations", **body: Any) -> httpx.Response:
    body.setdefault("model", "doubao-seedance-2.0")
    body.setdefault("prompt", "a cat surfing at sunset")
    return http.post(path, json=body)


def poll(http: httpx.Client, task_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    generic = http.get(f"/v1/video/generations/{task_id}")
    openai = http.get(f"/v1/videos/{task_id}")
    assert generic.status_code == openai.status_code == 200
    return generic.json()["data"], openai.json()


# --- #1-#6 routing, auth, headers ---------------------------------------------------------


def test_1_bearer_is_honoured_everywhere_in_either_case(sim: Simulator) -> None:
    with bare(sim) as c:
        for scheme in ("Bearer", "bearer"):
            headers = {"Authorization": f"{scheme} {sim.api_key}"}
            assert (
                c.post(
                    "/v1/chat/completions", json={"model": "gpt-5", "messages": HI}, headers=headers
                ).status_code
                == 200
            )
            assert c.get("/v1/models", headers=headers).status_code == 200
            assert c.get("/v1beta/models", headers=headers).status_code == 200


def test_1_x_api_key_only_on_messages_and_models(sim: Simulator) -> None:
    key = {"x-api-key": sim.api_key}
    with bare(sim) as c:
        body = {"model": "claude-opus-4-6", "messages": HI}
        assert c.post("/v1/messages", json=body, headers=key).status_code == 200
        assert c.get("/v1/models", headers=key).status_code == 200
        assert c.get("/v1/models/gpt-5", headers=key).status_code == 200
        assert c.post("/v1/chat/completions", json=body, headers=key).status_code == 401
        assert c.post("/v1/video/generations", json=body, headers=key).status_code == 401


def test_1_google_key_only_on_gemini_paths_and_the_header_wins(sim: Simulator) -> None:
    body = {"contents": [{"parts": [{"text": "Say hi"}]}]}
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    with bare(sim) as c:
        assert c.post(path, json=body, headers={"x-goog-api-key": sim.api_key}).status_code == 200
        assert c.post(path, json=body, params={"key": sim.api_key}).status_code == 200
        alias = "/v1/models/gemini-2.5-flash:generateContent"
        assert c.post(alias, json=body, headers={"x-goog-api-key": sim.api_key}).status_code == 200
        good, bad = {"x-goog-api-key": sim.api_key}, {"x-goog-api-key": "sk-revoked1"}
        assert (
            c.post(path, json=body, headers=good, params={"key": "sk-revoked1"}).status_code == 200
        )
        assert c.post(path, json=body, headers=bad, params={"key": sim.api_key}).status_code == 401
        chat_body = {"model": "gpt-5", "messages": HI}
        assert c.post("/v1/chat/completions", json=chat_body, headers=good).status_code == 401
        assert (
            c.post("/v1/chat/completions", json=chat_body, params={"key": sim.api_key}).status_code
            == 401
        )


@pytest.mark.parametrize(
    "key", [None, "sk-revoked42", "sk-exhausted7", "sk-bad!key", "not-an-sk-key"]
)
def test_2_every_bad_key_is_the_same_401(sim: Simulator, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with bare(sim) as c:
        response = c.post(
            "/v1/chat/completions", json={"model": "gpt-5", "messages": HI}, headers=headers
        )
    assert response.status_code == 401
    error = envelope_a(response)
    assert set(error) == {"message", "type", "code"}, "middleware errors carry no param key"
    assert error["type"] == "new_api_error" and error["code"] == ""
    assert error["message"].startswith("Invalid token")
    match = RID_SUFFIX.search(error["message"])
    assert match and match.group(1) == response.headers["X-Oneapi-Request-Id"]


def test_2_only_the_configured_keys_when_api_keys_is_given() -> None:
    with Simulator(speed=0, token_delay=0, api_keys=["sk-alpha", "sk-beta"]) as sim, bare(sim) as c:
        assert sim.api_key == "sk-alpha"
        ok = c.get("/v1/models", headers={"Authorization": "Bearer sk-beta"})
        other = c.get("/v1/models", headers={"Authorization": "Bearer sk-gamma"})
    assert ok.status_code == 200 and other.status_code == 401


def test_3_channel_suffix_on_the_key_is_403(sim: Simulator) -> None:
    with bare(sim) as c:
        response = c.get("/v1/models", headers={"Authorization": f"Bearer {sim.api_key}-7"})
        revoked = c.get("/v1/models", headers={"Authorization": "Bearer sk-revoked-7"})
    assert response.status_code == 403
    assert envelope_a(response)["message"].startswith("普通用户不支持指定渠道")
    assert revoked.status_code == 401, "the token is checked before the suffix"


def test_4_unknown_paths(http: httpx.Client) -> None:
    for method, path in (("GET", "/v1/xyz"), ("POST", "/v1/chat/complete"), ("GET", "/api/nope")):
        response = http.request(method, path)
        assert response.status_code == 404
        assert envelope_a(response) == {
            "message": f"Invalid URL ({method} {path})",
            "type": "invalid_request_error",
            "param": "",
            "code": "",
        }
    for path in ("/", "/console/tokens", "/v1beta/models/gemini-2.5-flash:generateContent"):
        page = http.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<html" in page.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/images/variations"),
        ("GET", "/v1/files"),
        ("POST", "/v1/files"),
        ("GET", "/v1/files/file-1/content"),
        ("POST", "/v1/fine-tunes"),
        ("GET", "/v1/fine-tunes/ft-1/events"),
        ("DELETE", "/v1/models/gpt-5"),
    ],
)
def test_4_unimplemented_routes_are_501(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path)
    assert response.status_code == 501 and envelope_a(response)["code"] == "api_not_implemented"


def test_5_request_id_header_on_every_response(sim: Simulator, http: httpx.Client) -> None:
    task = video(http).json()["id"]
    responses = [
        chat(http),
        chat(http, stream=True),
        chat(http, model="nope"),
        http.get("/v1/xyz"),
        http.get("/"),
        http.get(f"/v1/videos/{task}/content"),
        http.get("/__files/missing.png"),
        http.get("/__sim__"),
    ]
    with bare(sim) as anonymous:
        responses.append(anonymous.get("/v1/models"))
    ids = [r.headers.get("X-Oneapi-Request-Id") for r in responses]
    assert all(ids) and len(set(ids)) == len(ids)
    error = envelope_a(chat(http, model="nope"))
    assert RID_SUFFIX.search(error["message"])


def test_6_non_json_content_type_reads_as_empty(http: httpx.Client) -> None:
    body = json.dumps({"model": "gpt-5", "messages": HI})
    response = http.post(
        "/v1/chat/completions", content=body, headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 400
    assert envelope_a(response)["message"].startswith("Model name not specified")


def test_6_body_over_the_cap_is_413() -> None:
    big = json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": "x" * 20_000}]})
    headers = {"Authorization": "Bearer sk-x1", "Content-Type": "application/json"}
    zipped = {**headers, "Content-Encoding": "gzip"}
    with Simulator(speed=0, token_delay=0, max_body_mb=0.01) as sim, bare(sim) as c:
        response = c.post("/v1/chat/completions", content=big, headers=headers)
        packed = c.post("/v1/chat/completions", content=gzip.compress(big.encode()), headers=zipped)
        small = c.post(
            "/v1/chat/completions", json={"model": "gpt-5", "messages": HI}, headers=headers
        )
    assert response.status_code == 413
    assert envelope_a(response)["code"] == "read_request_body_failed"
    assert packed.status_code == 413, "the cap applies after decompression"
    assert small.status_code == 200


def test_6_compressed_bodies_are_accepted(http: httpx.Client) -> None:
    packed = gzip.compress(json.dumps({"model": "gpt-5", "messages": HI}).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert http.post("/v1/chat/completions", content=packed, headers=headers).status_code == 200


# --- #7-#13 errors ------------------------------------------------------------------------


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


# --- #14 model list -----------------------------------------------------------------------


def test_14_openai_model_list(http: httpx.Client) -> None:
    body = http.get("/v1/models").json()
    assert body["success"] is True and body["object"] == "list"
    models = {m["id"]: m for m in body["data"]}
    assert {m.id for m in MODELS} <= set(models), "every model of the spec is served"
    assert all(m["created"] == 1626777600 and m["object"] == "model" for m in models.values())
    types = {mid: m["supported_endpoint_types"] for mid, m in models.items()}
    assert types["claude-opus-4-6"] == ["anthropic", "openai"]
    assert types["gemini-2.5-flash"] == ["gemini", "openai"]
    assert types["grok-4.1"] == ["openai", "openai-response"]
    assert types["sora-2"] == ["openai-video"]
    assert types["dall-e-3"] == ["image-generation", "openai"]
    assert types["gpt-image-1.5"] == ["image-generation", "openai"]
    assert types["gpt-image-2"] == ["openai"]
    assert types["doubao-seedance-2.0"] == ["openai"]


def test_14_other_list_shapes(sim: Simulator, http: httpx.Client) -> None:
    with bare(sim) as c:
        anthropic = c.get(
            "/v1/models", headers={"x-api-key": sim.api_key, "anthropic-version": "2023-06-01"}
        ).json()
    assert anthropic["has_more"] is False and anthropic["data"][0]["type"] == "model"
    assert (
        anthropic["first_id"] == anthropic["data"][0]["id"] and "created_at" in anthropic["data"][0]
    )
    gemini = http.get("/v1beta/models").json()
    assert gemini["nextPageToken"] is None
    assert "gemini-2.5-flash" in {m["name"] for m in gemini["models"]}
    assert not any(m["name"].startswith("models/") for m in gemini["models"])
    assert http.get("/v1beta/openai/models").json()["object"] == "list"


def test_14_single_model_lookup_and_the_google_key_trap(http: httpx.Client) -> None:
    assert http.get("/v1/models/sora-2").json()["supported_endpoint_types"] == ["openai-video"]
    unknown = http.get("/v1/models/nope")
    assert unknown.status_code == 200 and unknown.json()["error"]["code"] == "model_not_found"
    trap = http.get("/v1/models", params={"key": "sk-anything"})
    assert trap.status_code == 200 and "error" in trap.json()


# --- #15-#20 streams ----------------------------------------------------------------------


def test_15_chat_stream_framing(sim: Simulator, http: httpx.Client) -> None:
    plain = chat(http).json()
    sim.ping = True
    response = chat(http, stream=True)
    assert response.headers["content-type"] == "text/event-stream"
    assert (
        response.headers["cache-control"] == "no-cache"
        and response.headers["x-accel-buffering"] == "no"
    )
    parts = blocks(response.text)
    assert not any("event" in b for b in parts), "data: lines only"
    assert {"comment": "PING"} in parts
    events = datas(response.text)
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == plain["usage"]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-2])
    assert text == plain["choices"][0]["message"]["content"]
    assert len(events) > 10, "streamed word by word"


def test_15_include_usage_false_drops_the_usage_chunk(http: httpx.Client) -> None:
    events = datas(chat(http, stream=True, stream_options={"include_usage": False}).text)
    assert events[-1] == "[DONE]" and all(e["choices"] for e in events[:-1])
    assert all("usage" not in e for e in events[:-1])
    assert "PING" not in chat(http, stream=True).text, "no ping unless switched on"


def test_16_responses_stream(http: httpx.Client) -> None:
    plain = http.post("/v1/responses", json={"model": "gpt-5.4", "input": "What is 3+4?"}).json()
    assert plain["object"] == "response" and plain["status"] == "completed"
    text = plain["output"][-1]["content"][0]["text"]
    stream = http.post(
        "/v1/responses", json={"model": "gpt-5.4", "input": "What is 3+4?", "stream": True}
    )
    parts = blocks(stream.text)
    assert all(json.loads(b["data"])["type"] == b["event"] for b in parts)
    assert "[DONE]" not in stream.text
    assert parts[0]["event"] == "response.created" and parts[-1]["event"] == "response.completed"
    deltas = [
        json.loads(b["data"])["delta"] for b in parts if b["event"] == "response.output_text.delta"
    ]
    assert "".join(deltas) == text
    assert json.loads(parts[-1]["data"])["response"]["usage"] == plain["usage"]


def test_17_anthropic_stream(http: httpx.Client) -> None:
    plain = http.post(
        "/v1/messages", json={"model": "claude-sonnet-4-5-20250929", "messages": HI}
    ).json()
    assert plain["type"] == "message" and plain["stop_reason"] == "end_turn"
    stream = http.post(
        "/v1/messages", json={"model": "claude-sonnet-4-5-20250929", "messages": HI, "stream": True}
    )
    parts = blocks(stream.text)
    assert all(json.loads(b["data"])["type"] == b["event"] for b in parts)
    assert "[DONE]" not in stream.text and parts[-1]["event"] == "message_stop"
    assert parts[0]["event"] == "message_start"
    text = "".join(
        json.loads(b["data"])["delta"]["text"] for b in parts if b["event"] == "content_block_delta"
    )
    assert text == plain["content"][0]["text"]


def test_18_gemini_stream_is_sse_without_alt(http: httpx.Client) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
    plain = http.post("/v1beta/models/gemini-2.5-flash:generateContent", json=body).json()
    for query in ({}, {"alt": "sse"}):
        stream = http.post(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent", json=body, params=query
        )
        assert stream.headers["content-type"] == "text/event-stream"
        parts = blocks(stream.text)
        assert all(set(b) == {"data"} for b in parts) and "[DONE]" not in stream.text
        chunks = [json.loads(b["data"]) for b in parts]
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
        assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
        text = "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"])
        assert text == plain["candidates"][0]["content"]["parts"][0]["text"]
        assert chunks[-1]["usageMetadata"] == plain["usageMetadata"]


def test_19_reasoning_text(http: httpx.Client) -> None:
    asked = chat(http, reasoning_effort="high").json()["choices"][0]["message"]
    assert asked["reasoning_content"] and asked["reasoning_content"] not in asked["content"]
    assert "reasoning_content" not in chat(http).json()["choices"][0]["message"]
    suffix = datas(chat(http, model="gpt-5-high", stream=True).text)
    assert any("reasoning_content" in e["choices"][0]["delta"] for e in suffix[:-2])
    grok = datas(chat(http, model="grok-4.1", stream=True, reasoning_effort="low").text)
    assert any("reasoning" in e["choices"][0]["delta"] for e in grok[:-2]), (
        "xAI deltas say `reasoning`"
    )
    claude = http.post(
        "/v1/messages", json={"model": "claude-opus-4-6-high", "messages": HI}
    ).json()
    assert claude["content"][0]["type"] == "thinking"
    thoughts = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
    }
    gemini = http.post("/v1beta/models/gemini-2.5-pro:generateContent", json=thoughts).json()
    assert gemini["candidates"][0]["content"]["parts"][0]["thought"] is True


def test_20_gemini_image_model_through_chat(http: httpx.Client) -> None:
    reply = chat(http, model="gemini-2.5-flash-image").json()["choices"][0]["message"]["content"]
    match = re.search(r"!\[[^\]]*\]\((data:[^;]+;base64,[A-Za-z0-9+/=]+)\)", reply)
    assert match
    assert base64.b64decode(match.group(1).split(",", 1)[1]).startswith(b"\x89PNG")
    sized = chat(
        http,
        model="gemini-3-pro-image-preview",
        extra_body={"google": {"image_config": {"aspect_ratio": "16:9", "image_size": "1K"}}},
    )
    assert sized.status_code == 200
    camel = chat(
        http,
        model="gemini-3-pro-image-preview",
        extra_body={"google": {"imageConfig": {"aspectRatio": "16:9"}}},
    )
    assert camel.status_code == 400 and envelope_a(camel)["code"] == 400


# --- #21-#26 images and audio -------------------------------------------------------------


def test_21_openai_images_url_and_b64(http: httpx.Client) -> None:
    b64 = http.post(
        "/v1/images/generations", json={"model": "gpt-image-1.5", "prompt": "x", "size": "64x64"}
    ).json()
    assert base64.b64decode(b64["data"][0]["b64_json"]).startswith(b"\x89PNG") and "usage" in b64
    url = http.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x", "size": "64x64"}
    ).json()
    link = url["data"][0]["url"]
    assert "/v1/" not in link
    with httpx.Client(verify=NO_TLS) as anonymous:
        picture = anonymous.get(link)
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    dalle = http.post(
        "/v1/images/generations",
        json={"model": "dall-e-3", "prompt": "x", "response_format": "b64_json"},
    ).json()
    assert dalle["data"][0]["revised_prompt"] and dalle["data"][0]["b64_json"]
    many = http.post(
        "/v1/images/generations",
        json={"model": "dall-e-2", "prompt": "x", "n": 3, "size": "256x256"},
    )
    assert len(many.json()["data"]) == 3


@pytest.mark.parametrize(
    "body",
    [
        {"model": "gpt-image-2", "size": "1024×1024"},
        {"model": "dall-e-2", "size": "1024x1792"},
        {"model": "dall-e-3", "size": "512x512"},
        {"model": "gpt-image-1.5", "n": 129},
    ],
)
def test_21_image_validation(http: httpx.Client, body: dict[str, Any]) -> None:
    response = http.post("/v1/images/generations", json={"prompt": "x", **body})
    assert response.status_code == 500 and envelope_a(response)["code"] == "invalid_request"


def test_21_multipart_edits_with_every_file_name(sim: Simulator, http: httpx.Client) -> None:
    for name in ("image", "image[]", "image[0]"):
        files = [(name, ("a.png", PNG, "image/png")), ("mask", ("m.png", PNG, "image/png"))]
        response = http.post(
            "/v1/images/edits",
            data={"model": "gpt-image-1.5", "prompt": "blue", "size": "64x64"},
            files=files,
        )
        assert response.status_code == 200 and response.json()["data"][0]["b64_json"]
        assert [f.name for f in sim.requests[-1].files] == [name, "mask"]
    none = http.post(
        "/v1/images/edits",
        data={"model": "gpt-image-1.5", "prompt": "blue"},
        files=[("mask", ("m.png", PNG, "image/png"))],
    )
    assert none.status_code == 500 and "image is required" in envelope_a(none)["message"]
    assert (
        http.post(
            "/v1/edits",
            data={"model": "gpt-image-2", "prompt": "x", "size": "64x64"},
            files=[("image", ("a.png", PNG, "image/png"))],
        ).status_code
        == 200
    )


def test_22_seedream_drops_unknown_keys_and_refuses_multipart(
    sim: Simulator, http: httpx.Client
) -> None:
    body = {
        "model": "doubao-seedream-4-0-250828",
        "prompt": "x",
        "size": "64x64",
        "seed": 7,
        "sequential_image_generation": "auto",
        "sequential_image_generation_options": {"max_images": 3},
        "image": ["data:image/png;base64," + base64.b64encode(PNG).decode()],
    }
    response = http.post("/v1/images/generations", json=body).json()
    assert len(response["data"]) == 1 and response["data"][0]["size"] == "64x64"
    assert response["usage"]["generated_images"] == 1
    upstream = sim.requests[-1].upstream
    assert (
        "seed" not in upstream
        and "sequential_image_generation" not in upstream
        and upstream["image"]
    )
    edit = http.post("/v1/images/edits", json=body)
    assert edit.status_code == 200, "JSON edits go through"
    multipart = http.post(
        "/v1/images/edits",
        data={"model": "doubao-seedream-4-0-250828", "prompt": "x"},
        files=[("image", ("a.png", PNG, "image/png"))],
    )
    assert multipart.status_code == 400 and envelope_a(multipart)["type"] == "BadRequest"


def test_23_dashscope_shape_one_and_two(sim: Simulator, http: httpx.Client) -> None:
    flat = http.post(
        "/v1/images/generations",
        json={"model": "qwen-image-max", "prompt": "a crane", "size": "64x32"},
    ).json()
    item = flat["data"][0]
    assert set(item) >= {"url", "b64_json"} and item["url"] and item["b64_json"] == ""
    assert flat["metadata"]["output"]["choices"][0]["message"]["content"][0]["image"] == item["url"]
    assert sim.requests[-1].upstream["parameters"]["size"] == "64*32"
    native: dict[str, Any] = {
        "model": "wan2.6-image",
        "input": {"messages": [{"role": "user", "content": [{"text": "a poster"}]}]},
        "parameters": {"size": "64*64", "enable_interleave": True, "max_images": 1},
    }
    shape1 = http.post("/v1/images/generations", json=native).json()
    assert "data" in shape1
    assert "enable_interleave" not in sim.requests[-1].upstream["parameters"]
    sim.wan_shape2 = True
    shape2 = http.post("/v1/images/generations", json=native).json()
    content = shape2["output"][0]["content"]
    image = next(c for c in content if c["type"] == "image")
    assert image["text"].startswith("http") and http.get(image["text"]).content.startswith(
        b"\x89PNG"
    )
    streamed = http.post(
        "/v1/images/generations",
        json={**native, "parameters": {**native["parameters"], "stream": True}},
    )
    assert (
        streamed.headers["content-type"] == "text/event-stream" and len(datas(streamed.text)) == 2
    )


def test_23_dashscope_multipart_edit_becomes_data_urls(sim: Simulator, http: httpx.Client) -> None:
    response = http.post(
        "/v1/images/edits",
        data={"model": "qwen-image-edit-max-2026-01-16", "prompt": "blue", "size": "32x32"},
        files=[("image", ("a.png", PNG, "image/png"))],
    )
    assert response.status_code == 200
    content = sim.requests[-1].upstream["input"]["messages"][0]["content"]
    assert content[0]["image"].startswith("data:image/png;base64,") and content[-1] == {
        "text": "blue"
    }


def test_24_image_delay_is_configurable(sim: Simulator, http: httpx.Client) -> None:
    sim.image_delay = 0.1
    started = time.monotonic()
    http.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x", "size": "16x16"}
    )
    assert time.monotonic() - started >= 0.1


def test_25_gemini_tts_is_base64_pcm(http: httpx.Client) -> None:
    body = {
        "contents": [{"parts": [{"text": "Welcome back!"}]}],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
        },
    }
    reply = http.post(
        "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent", json=body
    ).json()
    inline = reply["candidates"][0]["content"]["parts"][0]["inlineData"]
    assert inline["mimeType"] == "audio/L16;codec=pcm;rate=24000"
    pcm = base64.b64decode(inline["data"])
    assert not pcm.startswith(b"RIFF") and transcribe_audio(wav(pcm)).text == "Welcome back!"
    text_only = http.post(
        "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent",
        json={"contents": body["contents"]},
    )
    assert text_only.status_code == 400 and envelope_a(text_only)["code"] == 400
    speech_route = http.post(
        "/v1/audio/speech",
        json={"model": "gemini-2.5-flash-preview-tts", "input": "x", "voice": "Kore"},
    )
    assert (
        speech_route.status_code == 500
        and envelope_a(speech_route)["code"] == "convert_request_failed"
    )


def test_26_speech_is_raw_audio_bytes(http: httpx.Client) -> None:
    response = http.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "Hello there", "voice": "alloy", "response_format": "wav"},
    )
    assert response.headers["content-type"] == "audio/wav" and response.content[:4] == b"RIFF"
    with wave.open(io.BytesIO(response.content)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
    assert transcribe_audio(response.content).text == "Hello there"
    missing = http.post("/v1/audio/speech", json={"input": "x"})
    assert missing.status_code == 500 and "model is required" in envelope_a(missing)["message"]


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_26_transcription_formats(http: httpx.Client, fmt: str) -> None:
    audio = speech_wav("Hello there. How are you?")
    response = http.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1", "response_format": fmt},
        files=[("file", ("a.wav", audio, "audio/wav"))],
    )
    assert response.status_code == 200
    if fmt == "json":
        assert response.json() == {"text": "Hello there. How are you?"}
    elif fmt == "text":
        assert response.text.strip() == "Hello there. How are you?"
    elif fmt == "srt":
        assert "-->" in response.text and response.text.startswith("1\n")
    elif fmt == "vtt":
        assert response.text.startswith("WEBVTT")
    else:
        body = response.json()
        assert body["task"] == "transcribe" and body["segments"] and body["duration"] > 0


def test_26_translation_and_missing_file(http: httpx.Client) -> None:
    audio = speech_wav("Bonjour")
    translated = http.post(
        "/v1/audio/translations",
        data={"model": "whisper-1", "response_format": "verbose_json"},
        files=[("file", ("a.wav", audio, "audio/wav"))],
    ).json()
    assert translated["task"] == "translate" and translated["language"] == "english"
    missing = http.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files=[("other", ("a", b"x", "text/plain"))],
    )
    assert missing.status_code == 500 and "file is required" in envelope_a(missing)["message"]


# --- #27-#38 video ------------------------------------------------------------------------


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


# --- faults, control routes, lifecycle ----------------------------------------------------


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


def test_vision_inputs_reach_every_family(http: httpx.Client) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    oa = chat(
        http,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    )
    assert "I see 1 image" in oa.json()["choices"][0]["message"]["content"]
    block = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": url[22:]},
    }
    claude = http.post(
        "/v1/messages",
        json={
            "model": "claude-opus-4-6",
            "messages": [{"role": "user", "content": [block, block]}],
        },
    )
    assert "I see 2 images" in claude.json()["content"][0]["text"]
    inline = {"inlineData": {"mimeType": "image/png", "data": url[22:]}}
    gemini = http.post(
        "/v1beta/models/gemini-2.5-flash:generateContent",
        json={"contents": [{"parts": [{"text": "What?"}, inline]}]},
    )
    assert "I see 1 image" in gemini.json()["candidates"][0]["content"]["parts"][0]["text"]
    responses = http.post(
        "/v1/responses",
        json={
            "model": "gpt-5",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What?"},
                        {"type": "input_image", "image_url": url},
                    ],
                }
            ],
        },
    )
    assert "I see 1 image" in responses.json()["output"][0]["content"][0]["text"]


def test_replies_are_deterministic_and_truncate(http: httpx.Client) -> None:
    first = chat(http, messages=[{"role": "user", "content": "Write a Python function"}]).json()
    again = chat(http, messages=[{"role": "user", "content": "Write a Python function"}]).json()
    text = first["choices"][0]["message"]["content"]
    assert text == again["choices"][0]["message"]["content"] and "```python" in text
    assert text.startswith("Simulated answer from gpt-5 to: Write a Python function")
    short = chat(http, max_tokens=5).json()
    assert (
        short["choices"][0]["finish_reason"] == "length"
        and short["usage"]["completion_tokens"] <= 5
    )


def test_mimo_speech_in_chat(http: httpx.Client) -> None:
    reply = chat(
        http,
        model="mimo-v2.5-tts-voicedesign",
        audio={"format": "wav"},
        messages=[{"role": "assistant", "content": "Good morning"}],
    ).json()
    audio = reply["choices"][0]["message"]["audio"]
    assert transcribe_audio(base64.b64decode(audio["data"])).text == "Good morning"
    assert audio["transcript"] == "Good morning" and audio["expires_at"] > 0


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
            started = time.monotonic()
            sim.stop()
            assert time.monotonic() - started < 1.0
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


def test_head_requests_get_headers_only(http: httpx.Client) -> None:
    response = http.head("/v1/models")
    assert response.headers["X-Oneapi-Request-Id"] and response.content == b""


def test_session_fixture_is_running(tokenhot_simulator_session: Simulator) -> None:
    assert tokenhot_simulator_session.running and tokenhot_simulator_session.clock.speed == 0


def test_less_common_routes(sim: Simulator, http: httpx.Client) -> None:
    legacy = http.post("/v1/completions", json={"model": "gpt-5", "prompt": "Say hi"}).json()
    assert legacy["object"] == "text_completion" and legacy["choices"][0]["text"]
    streamed = http.post(
        "/v1/images/generations",
        json={"model": "gpt-image-1.5", "prompt": "x", "size": "16x16", "stream": True},
    )
    assert blocks(streamed.text)[0]["event"] == "image_generation.completed"
    speech = http.post(
        "/v1/audio/speech", json={"model": "tts-1", "input": "Hi", "stream_format": "sse"}
    )
    assert [e["type"] for e in datas(speech.text)][-1] == "speech.audio.done"
    original = video(http, "/v1/videos", model="sora-2").json()["id"]
    remix = http.post(f"/v1/videos/{original}/remix", json={"prompt": "now in the rain"}).json()
    assert TASK_ID.match(remix["id"]) and remix["remixed_from_video_id"] == original
    seedance = video(http).json()["id"]
    assert http.post(f"/v1/videos/{seedance}/remix", json={"prompt": "x"}).status_code == 400


def test_hailuo_failure_puts_the_reason_in_metadata_url(sim: Simulator, http: httpx.Client) -> None:
    body = {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "duration": 6}
    task = faulty(http, "task-fail", "/v1/video/generations", body).json()["id"]
    sim.clock.advance(600)
    generic, openai = poll(http, task)
    assert openai["metadata"]["url"] == generic["fail_reason"] == "input new_sensitive"
    assert openai["error"] == {"code": "1026", "message": "input new_sensitive"}


def test_public_names_resolve() -> None:
    import tokenhot_jupyter.simulator as package

    assert package.__all__ == sorted(package.__all__)
    assert all(getattr(package, name) for name in package.__all__)
    with pytest.raises(AttributeError):
        _ = package.Nope
