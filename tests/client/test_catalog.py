"""The catalog is data: every spec model present, families resolvable, guesses in one place."""

from __future__ import annotations

import httpx
import pytest

from tokenhot_jupyter._catalog import (
    DEFAULTS,
    FAMILIES,
    MODELS,
    Catalog,
    Model,
    guess_family,
    guess_quirks,
    resolve_family,
)
from tokenhot_jupyter._client import Client
from tokenhot_jupyter._exceptions import InvalidInputError, UnknownModelError

SPEC_MODELS = {
    "chat": [
        "claude-sonnet-4-5-20250929",
        "claude-opus-4-6",
        "claude-opus-4-6-cc",
        "gpt-5",
        "gpt-5.2",
        "gpt-5.4",
        "gpt-5.4-mini",
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-3-flash-preview",
        "gemini-3.1-pro-preview",
        "gemini-3.1-pro",
        "grok-4.1",
    ],
    "image": [
        "doubao-seedream-4-0-250828",
        "doubao-seedream-4-5-251128",
        "doubao-seedream-5-0-260128",
        "gpt-image-1.5",
        "gpt-image-2",
        "dall-e-2",
        "dall-e-3",
        "gemini-3-pro-image-preview",
        "gemini-2.5-flash-image",
        "gemini-3.1-flash-image-preview",
        "wan2.6-image",
        "wan2.6-t2i",
        "qwen-image-max",
        "qwen-image-plus-2026-01-09",
        "qwen-image-edit-max-2026-01-16",
    ],
    "video": [
        "doubao-seedance-2-0-260128",
        "doubao-seedance-1-5-pro-251215",
        "doubao-seedance-2.0",
        "doubao-seedance-2.0-fast",
        "doubao-seedance-2.0-V2V",
        "doubao-seedance-2.0-fast-V2V",
        "sora-2",
        "MiniMax-Hailuo-02",
        "MiniMax-Hailuo-2.3",
        "MiniMax-Hailuo-2.3-Fast",
        "happyhorse-1.0-i2v",
        "happyhorse-1.0-r2v",
        "happyhorse-1.0-t2v",
        "happyhorse-1.0-video-edit",
    ],
    "audio": [
        "gemini-2.5-flash-preview-tts",
        "gemini-2.5-pro-preview-tts",
        "whisper-1",
        "mimo-v2.5-tts-voicedesign",
        "mimo-v2.5-tts-voiceclone",
    ],
}


@pytest.mark.parametrize("kind", list(SPEC_MODELS))
def test_every_spec_model_is_in_the_catalog_with_its_kind(kind: str) -> None:
    catalog = Catalog()
    for mid in SPEC_MODELS[kind]:
        model = catalog.get(mid)
        assert model.kind == kind, mid
        assert FAMILIES[model.family].kind == kind, mid


def test_ids_are_unique_and_defaults_exist() -> None:
    ids = [m.id for m in MODELS]
    assert len(ids) == len(set(ids))
    catalog = Catalog()
    for kind, mid in DEFAULTS.items():
        assert catalog.get(mid).kind == kind


def test_unknown_model_suggests_close_ids_and_is_a_key_error() -> None:
    with pytest.raises(UnknownModelError) as info:
        Catalog().get("gpt-5.44")
    assert isinstance(info.value, KeyError)
    assert "gpt-5.4" in info.value.suggestions
    assert "Did you mean" in str(info.value)
    assert str(info.value).startswith("Unknown model 'gpt-5.44'")


def test_wrong_kind_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="sora-2 is a video model, not a chat model"):
        Catalog().get("sora-2", "chat")


def test_case_insensitive_lookup() -> None:
    assert Catalog().get("minimax-hailuo-2.3").id == "MiniMax-Hailuo-2.3"


def test_param_check_reports_choices() -> None:
    model = Catalog().get("dall-e-3")
    size = model.param("size")
    assert size is not None
    with pytest.raises(InvalidInputError, match="1024x1792"):
        size.check("512x512", model.id)
    assert model.param("n").check("1", model.id) == 1  # type: ignore[union-attr]


def test_live_list_wins_and_adds_unknown_models() -> None:
    live = [
        {"id": "claude-opus-4-6", "supported_endpoint_types": ["openai"]},
        {"id": "gemini-2.5-flash-image", "supported_endpoint_types": ["openai"]},
        {"id": "gpt-5", "supported_endpoint_types": ["openai", "openai-response"]},
        {"id": "brand-new-chat", "owned_by": "x", "supported_endpoint_types": ["openai"]},
        {"id": "sora-3", "supported_endpoint_types": ["openai-video"]},
    ]
    merged = Catalog().merge_live(live)
    assert merged.get("claude-opus-4-6").family == "chat-completions"
    assert merged.get("gemini-2.5-flash-image").family == "chat-image"
    assert merged.get("gpt-5").family == "chat-completions"
    assert merged.get("brand-new-chat").kind == "chat" and merged.get("brand-new-chat").live
    assert merged.get("sora-3").family == "sora"
    assert not Catalog().get("gpt-5").live


@pytest.mark.parametrize(
    ("mid", "types", "family"),
    [
        ("doubao-seedance-3-0", ["openai"], "seedance"),
        ("gemini-9-image", ["gemini", "openai"], "gemini-image"),
        ("gemini-9-tts", ["gemini"], "gemini-tts"),
        ("dall-e-4", ["image-generation", "openai"], "openai-image"),
        ("wan3-image", ["openai"], "dashscope-image"),
        ("claude-next", ["anthropic", "openai"], "anthropic"),
        ("some-llm", ["openai"], "chat-completions"),
        ("o9-pro", ["openai-response"], "responses"),
        ("o9", ["openai", "openai-response"], "chat-completions"),
    ],
)
def test_guess_family(mid: str, types: list[str], family: str) -> None:
    assert guess_family(mid, types) == family


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.id)
def test_the_rows_quirks_are_what_their_names_would_guess(model: Model) -> None:
    assert model.quirks == guess_quirks(model.id, model.family)


def test_a_live_only_model_gets_its_quirks_from_its_name() -> None:
    live = [{"id": mid} for mid in ("claude-opus-4-7", "happyhorse-2.0-i2v", "wan2.6-foo")]
    merged = Catalog().merge_live(live)
    assert merged.get("claude-opus-4-7").quirks == ("effort-in-name",)
    assert merged.get("happyhorse-2.0-i2v").quirks == ("first-frame", "no-ratio")
    assert merged.get("wan2.6-foo").quirks == ("interleave",)
    assert merged.get("claude-opus-4-6").quirks == ("effort-in-name",)  # the row's, kept


def test_resolve_family_keeps_native_route_when_offered() -> None:
    model = Catalog().get("claude-opus-4-6")
    assert resolve_family(model, ["anthropic", "openai"]) == "anthropic"
    assert resolve_family(model, []) == "anthropic"


@pytest.mark.parametrize(
    ("mid", "types", "family"),
    [
        ("gpt-5", ["openai-response"], "responses"),
        ("gpt-5", ["openai", "openai-response"], "chat-completions"),
        ("gemini-2.5-pro", ["openai"], "chat-completions"),
        ("gemini-2.5-flash-image", ["openai"], "chat-image"),
        ("sora-2", ["openai"], "sora"),
        ("doubao-seedance-2.0", ["openai"], "seedance"),
        ("dall-e-3", ["image-generation", "openai"], "openai-image"),
    ],
)
def test_resolve_family_moves_to_an_offered_route(mid: str, types: list[str], family: str) -> None:
    assert resolve_family(Catalog().get(mid), types) == family


def test_a_live_only_responses_model_is_sent_to_the_responses_api() -> None:
    sent: list[str] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path == "/v1/models":
            live = [
                {
                    "id": "o9-pro",
                    "owned_by": "openai",
                    "supported_endpoint_types": ["openai-response"],
                }
            ]
            return httpx.Response(200, json={"data": live})
        if request.url.path != "/v1/responses":
            return httpx.Response(400, json={"error": {"message": "not supported", "code": ""}})
        output = [{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}]
        return httpx.Response(200, json={"status": "completed", "output": output})

    client = Client("sk-catalogTESTkey0123456789", "https://gw.example",
                    transport=httpx.MockTransport(gateway), max_retries=0)  # fmt: skip
    assert client.chat("Hello", model="o9-pro").text == "hi"
    assert sent == ["/v1/models", "/v1/responses"]
