"""The simulator's model lists in every shape (spec §12 #14)."""

from __future__ import annotations

import httpx

from tokenhot_jupyter._catalog import MODELS
from tokenhot_jupyter.simulator import Simulator

from simulator_support import bare


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
