"""Settings: argument → environment → constant; base URLs with or without /v1."""

from __future__ import annotations

import pytest

from tokenhot_jupyter._config import DEFAULT_BASE_URL, resolve_api_key, resolve_base_url
from tokenhot_jupyter._exceptions import ConfigurationError
from tokenhot_jupyter._redact import register_secret


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, DEFAULT_BASE_URL),
        ("https://api.tokenhot.ai/v1", "https://api.tokenhot.ai"),
        ("https://api.tokenhot.ai/v1/", "https://api.tokenhot.ai"),
        ("https://api.tokenhot.cn", "https://api.tokenhot.cn"),
        ("http://127.0.0.1:8765/v1beta", "http://127.0.0.1:8765"),
    ],
)
def test_base_url(given: str | None, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENHOT_BASE_URL", raising=False)
    assert resolve_base_url(given) == expected


def test_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHOT_BASE_URL", "http://localhost:1234/v1")
    assert resolve_base_url(None) == "http://localhost:1234"
    assert resolve_base_url("https://x.example") == "https://x.example"


@pytest.mark.parametrize(
    "bad",
    [
        "api.tokenhot.ai/sk-abc",
        "ftp://sk-abc@x",
        "https://x.example/?key=sk-abc",
        "http://sk-abc@127.0.0.1:8765",
        "http://user:sk-abc@host",
        "http://127.0.0.1:99999",
        "http://[::1",
        "https://example.com:abc",
        "https://api.tokenhot.ai/sk-abc123def456/v1",
        "https://api.tokenhot.ai/sk-abc",
        "https://proxy.example/tokenhot/SK-abc/v1beta",
        "https://proxy.example/%73k-abc/v1",
    ],
)
def test_bad_base_url_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_base_url(bad)
    assert "sk-abc" not in str(info.value) and "TOKENHOT_BASE_URL" in str(info.value)


def test_api_key_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHOT_API_KEY", "sk-fromenv")
    assert resolve_api_key(None) == "sk-fromenv"
    assert resolve_api_key("sk-arg") == "sk-arg"
    monkeypatch.setenv("TOKENHOT_API_KEY", "  ")
    assert resolve_api_key(None) is None
    with pytest.raises(ConfigurationError, match="spaces or line breaks"):
        resolve_api_key("sk-a b")
    with pytest.raises(ConfigurationError, match="plain ASCII"):
        resolve_api_key("sk-abc\u200bdef")


def test_a_key_in_the_path_is_refused_even_without_its_sk_prefix() -> None:
    register_secret("tokenhotKEYwithoutprefix42")
    with pytest.raises(ConfigurationError, match="API key in its path") as info:
        resolve_base_url("https://api.tokenhot.ai/tokenhotKEYwithoutprefix42/v1")
    assert "tokenhotKEYwithoutprefix42" not in str(info.value)


def test_a_path_prefix_is_still_fine() -> None:
    assert resolve_base_url("https://corp.example/tokenhot/v1") == "https://corp.example/tokenhot"


def test_the_stand_in_key_is_the_simulators_own() -> None:
    # The simulator imports none of the package, so it spells its default key itself.
    from tokenhot_jupyter._config import SIMULATOR_KEY
    from tokenhot_jupyter.simulator import Simulator

    assert Simulator().api_key == SIMULATOR_KEY
