"""Simulator faults over raw HTTP that tests of the client's stream handling rely on."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tokenhot_jupyter.simulator import Simulator
from tokenhot_jupyter.simulator._faults import parse_fault

NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # loopback is plain HTTP: skip loading CAs
HI = [{"role": "user", "content": "Say hi to the sea"}]
# (path, body, what the last event of a whole stream contains: the family's end marker)
STREAMS: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/chat/completions", {"model": "gpt-5", "messages": HI, "stream": True}, "[DONE]"),
    (
        "/v1/responses",
        {"model": "gpt-5.4", "input": "Say hi", "stream": True},
        "response.completed",
    ),
    (
        "/v1/messages",
        {"model": "claude-opus-4-6", "messages": HI, "max_tokens": 64, "stream": True},
        "message_stop",
    ),
    (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]},
        "finishReason",
    ),
]


@pytest.fixture
def http(tokenhot_simulator: Simulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {tokenhot_simulator.api_key}"}
    with httpx.Client(
        base_url=tokenhot_simulator.base_url, headers=headers, timeout=10, verify=NO_TLS
    ) as client:
        yield client


def _events(text: str) -> list[str]:
    return [block for block in text.split("\n\n") if block.strip()]


def test_end_early_parses() -> None:
    assert parse_fault("end-early").end_early
    assert parse_fault("ping,end-early").ping


@pytest.mark.parametrize(("path", "body", "marker"), STREAMS)
def test_end_early_ends_the_stream_cleanly_without_its_end_marker(
    http: httpx.Client, path: str, body: dict[str, Any], marker: str
) -> None:
    whole = http.post(path, json=body)
    cut = http.post(path, json=body, headers={"X-Sim-Fault": "end-early"})  # read to the end
    assert whole.status_code == cut.status_code == 200
    events, cut_events = _events(whole.text), _events(cut.text)
    assert marker in events[-1]
    assert len(cut_events) == len(events) - 1 and marker not in cut.text  # ids differ per reply
