"""The four chat families in the simulator: chat completions, Responses, Anthropic messages
and Gemini (spec §12 #15-#20), with vision inputs and speech in chat.
"""

from __future__ import annotations

import base64
import json
import re

import httpx

from tokenhot_jupyter.simulator import Simulator
from tokenhot_jupyter.simulator.media import transcribe_audio

from simulator_support import HI, PNG, blocks, chat, datas, envelope_a


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
