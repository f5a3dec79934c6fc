"""Structured answers in the simulator: every chat dialect's way of asking for JSON of a
schema gets deterministic JSON that matches it, in the family's own shape, streamed too;
the ``schema-mismatch`` fault gets JSON that does not."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from tokenhot_jupyter.simulator import Simulator
from tokenhot_jupyter.simulator._structured import example

from simulator_support import HI, datas, faulty

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3, "maxLength": 40},
        "count": {"type": "integer", "minimum": 5, "maximum": 9},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "ok": {"type": "boolean"},
        "level": {"enum": ["low", "high"]},
        "when": {"type": "string", "format": "date"},
        "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
        "rows": {
            "type": "array",
            "minItems": 3,
            "items": {"$ref": "#/$defs/Row"},
        },
    },
    "required": ["title", "count", "rows"],
    "additionalProperties": False,
    "$defs": {
        "Row": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "tags": {"type": "array"}},
            "required": ["name"],
        }
    },
}


def _valid(value: Any, schema: dict[str, Any] = SCHEMA) -> bool:
    return bool(jsonschema.Draft202012Validator(schema).is_valid(value))


def _gemini(http: httpx.Client, config: dict[str, Any], stream: bool = False) -> httpx.Response:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    body = {"contents": [{"parts": [{"text": "Say hi"}]}], "generationConfig": config}
    return http.post(f"/v1beta/models/gemini-2.5-flash:{action}", json=body)


def test_examples_match_their_schema() -> None:
    for seed in range(50):
        value = example(SCHEMA, seed)
        assert _valid(value), value
        assert len(value["rows"]) == 3 and 5 <= value["count"] <= 9
    assert example(SCHEMA, 7) == example(SCHEMA, 7)


def test_chat_completions_response_format(http: httpx.Client) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA, "strict": True}}
    body = {"model": "gpt-5", "messages": HI, "response_format": fmt}
    whole = http.post("/v1/chat/completions", json=body).json()
    text = whole["choices"][0]["message"]["content"]
    assert _valid(json.loads(text))
    again = http.post("/v1/chat/completions", json=body).json()
    assert again["choices"][0]["message"]["content"] == text  # deterministic
    events = datas(http.post("/v1/chat/completions", json={**body, "stream": True}).text)
    streamed = "".join(
        e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"]
    )
    assert streamed == text


def test_responses_text_format(http: httpx.Client) -> None:
    fmt = {"type": "json_schema", "name": "x", "schema": SCHEMA}
    body = {"model": "gpt-5.4", "input": "Say hi", "text": {"format": fmt}}
    output = http.post("/v1/responses", json=body).json()["output"]
    assert _valid(json.loads(output[-1]["content"][0]["text"]))


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_forced_tool_answers_with_tool_use(http: httpx.Client, stream: bool) -> None:
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "messages": HI,
        "tools": [{"name": "answer", "input_schema": SCHEMA}],
        "tool_choice": {"type": "tool", "name": "answer"},
        "stream": stream,
    }
    response = http.post("/v1/messages", json=body)
    if not stream:
        message = response.json()
        assert message["stop_reason"] == "tool_use"
        (block,) = message["content"]
        assert block["type"] == "tool_use" and block["name"] == "answer"
        assert _valid(block["input"])
        return
    events = datas(response.text)
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use"
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert {d["type"] for d in deltas} == {"input_json_delta"}
    assert _valid(json.loads("".join(d["partial_json"] for d in deltas)))
    stop = next(e for e in events if e["type"] == "message_delta")
    assert stop["delta"]["stop_reason"] == "tool_use"


def test_anthropic_output_format_answers_in_text(http: httpx.Client) -> None:
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "messages": HI,
        "output_format": {"type": "json_schema", "schema": SCHEMA},
    }
    message = http.post("/v1/messages", json=body).json()
    assert message["content"][0]["type"] == "text"
    assert _valid(json.loads(message["content"][0]["text"]))


def test_gemini_json_schema_and_openapi_schema(http: httpx.Client) -> None:
    config = {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}
    parts = _gemini(http, config).json()["candidates"][0]["content"]["parts"]
    assert _valid(json.loads(parts[0]["text"]))
    chunks = datas(_gemini(http, config, stream=True).text)
    streamed = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert streamed == parts[0]["text"]
    openapi = {  # Gemini's older responseSchema: OpenAPI types in capitals
        "type": "OBJECT",
        "properties": {"n": {"type": "INTEGER"}, "names": {"type": "ARRAY", "items": {}}},
    }
    config = {"response_mime_type": "application/json", "response_schema": openapi}
    parts = _gemini(http, config).json()["candidates"][0]["content"]["parts"]
    answer = json.loads(parts[0]["text"])
    assert isinstance(answer["n"], int) and isinstance(answer["names"], list)


def test_the_schema_mismatch_fault(sim: Simulator, http: httpx.Client) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}
    body = {"model": "gpt-5", "messages": HI, "response_format": fmt}
    broken = faulty(http, "schema-mismatch", body=body).json()
    answer = json.loads(broken["choices"][0]["message"]["content"])
    assert not _valid(answer) and "title" not in answer  # the first required field is gone
    sim.faults.add("schema-mismatch", path="/v1/messages", times=1)
    tool = {"name": "answer", "input_schema": SCHEMA}
    claude = {"model": "claude-sonnet-4-5-20250929", "messages": HI, "tools": [tool]}
    block = http.post("/v1/messages", json=claude).json()["content"][0]
    assert block["type"] == "tool_use" and not _valid(block["input"])
    whole = http.post("/v1/messages", json=claude).json()["content"][0]
    assert _valid(whole["input"])  # the fault was for one request only


def test_a_plain_request_is_unchanged(http: httpx.Client) -> None:
    text = http.post("/v1/chat/completions", json={"model": "gpt-5", "messages": HI}).json()
    assert text["choices"][0]["message"]["content"].startswith("Simulated answer from gpt-5")
