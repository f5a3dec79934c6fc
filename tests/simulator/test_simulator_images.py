"""The simulator's image routes, every family (spec §12 #21-#24)."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from tokenhot_jupyter.simulator import Simulator

from simulator_support import NO_TLS, PNG, datas, envelope_a


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
