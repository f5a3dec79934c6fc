"""Helpers for the simulator's raw-HTTP tests (``tests/simulator/test_simulator_*.py``).

Each test there names the spec §12 checklist item it proves (``#N``). Video timings move
by advancing the simulator's manual clock; nothing here sleeps. The ``sim`` and ``http``
fixtures reach every test through ``pytest_plugins`` in ``conftest.py``.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tokenhot_jupyter.simulator import Simulator
from tokenhot_jupyter.simulator.media import png

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
