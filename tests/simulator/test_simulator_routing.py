"""The simulator's routing, keys and headers (spec §12 #1-#6), and the less common routes."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from tokenhot_jupyter.simulator import Simulator

from simulator_support import HI, RID_SUFFIX, TASK_ID, bare, blocks, chat, datas, envelope_a, video


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


def test_head_requests_get_headers_only(http: httpx.Client) -> None:
    response = http.head("/v1/models")
    assert response.headers["X-Oneapi-Request-Id"] and response.content == b""


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
