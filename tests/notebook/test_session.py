"""The per-kernel session: settings precedence, threads, tally, files, keys, simulation."""

from __future__ import annotations

import os
import re
import types
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config, Configurable

from tokenhot_jupyter._config import SIMULATOR_KEY
from tokenhot_jupyter._notebook import _session as S
from tokenhot_jupyter._notebook._threads import Thread, Threads, Turn, as_messages
from tokenhot_jupyter._notebook._usage import Prices, Tally
from tokenhot_jupyter._types import Usage

pytest_plugins = ("magics_support",)


class FakeShell(Configurable):
    """Just enough of a shell: a config, a namespace."""

    def __init__(self) -> None:
        super().__init__(config=Config())
        self.user_ns: dict[str, Any] = {}


@pytest.fixture
def session(clean_env: Path) -> S.Session:
    return S.Session(FakeShell(), clock=lambda: 1_700_000_000.0)


def test_model_precedence(session: S.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    assert session.model_for("chat") == "gpt-5.4-mini"
    assert session.model_for("transcribe") == "whisper-1"
    monkeypatch.setenv("TOKENHOT_IMAGE_MODEL", "dall-e-3")
    assert session.model_for("image") == "dall-e-3"
    session.config.image_model = "gpt-image-1.5"
    assert session.model_for("image") == "gpt-image-1.5"
    assert session.model_for("image", "qwen-image-max") == "qwen-image-max"
    assert session.model_for("image", "  ") == "gpt-image-1.5"


def test_traitlets_validation(session: S.Session) -> None:
    with pytest.raises(TraitError):
        session.config.timeout = 0
    with pytest.raises(TraitError):
        session.config.history_turns = -1
    session.config.stream_interval = 0
    assert session.config.stream_interval == 0


def test_config_from_the_shell() -> None:
    shell = FakeShell()
    config = Config()
    config.Tokenhot.chat_model = "gpt-5"
    shell.update_config(config)
    assert S.Session(shell).model_for("chat") == "gpt-5"


def test_thread_context_and_replacement() -> None:
    thread = Thread("t")
    for key in "abc":
        thread.record(Turn(key=key, prompt=f"q{key}", answer=f"a{key}", model="m"))
    assert [t.key for t in thread.context("new", 10)] == ["a", "b", "c"]
    assert [t.key for t in thread.context("b", 10)] == ["a"]
    assert [t.key for t in thread.context("new", 2)] == ["b", "c"]
    assert thread.context("new", 0) == []
    thread.record(Turn(key="b", prompt="q2", answer="a2", model="m"))
    assert [(t.key, t.prompt) for t in thread.turns] == [("a", "qa"), ("b", "q2"), ("c", "qc")]


def test_as_messages() -> None:
    turns = [Turn(key="a", prompt="Q", answer="A", model="m")]
    assert as_messages(turns, "next") == [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "next"},
    ]


def test_threads_per_notebook() -> None:
    threads = Threads()
    threads.get("nb1", "x").record(Turn(key="k", prompt="q", answer="a", model="m"))
    threads.get("nb2", "x").record(Turn(key="k", prompt="q", answer="a", model="m"))
    assert threads.reset("nb1") == 1
    assert threads.get("nb1", "x").turns == [] and len(threads.get("nb2", "x").turns) == 1
    assert [t.name for t in threads.of("nb2")] == ["x"]


def test_turn_keys_follow_cells(session: S.Session) -> None:
    session.on_pre_run_cell(types.SimpleNamespace(cell_id="cell-1", raw_cell="%%chat\nhi"))
    assert session.turn_key("x") == "cell-1#1"
    assert session.turn_key("x") == "cell-1#2"  # a second call in the same cell
    session.on_pre_run_cell(types.SimpleNamespace(cell_id=None, raw_cell="%%chat\nhi"))
    first = session.turn_key("x")
    session.on_pre_run_cell(types.SimpleNamespace(cell_id=None, raw_cell="%%chat\nhi"))
    assert session.turn_key("x") == first and first.startswith("src:")


def test_notebook_name(session: S.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    assert session.notebook == "default"
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/a.ipynb")
    assert session.notebook == "/home/me/a.ipynb"


def test_costs_are_estimates_from_the_catalog() -> None:
    prices = Prices()
    assert prices.chat("gpt-5", Usage(1_000_000, 1_000_000, 2_000_000)) == pytest.approx(11.25)
    # Gemini reports thoughts apart from the answer: they are billed as output too.
    assert prices.chat("gemini-2.5-pro", Usage(0, 100, 150, 50)) == pytest.approx(150 * 10 / 1e6)
    assert prices.chat("unknown-model", Usage(1, 1, 2)) is None
    assert prices.chat("gpt-5", None) is None
    assert prices.pictures("gpt-image-2", 3) == pytest.approx(0.12)
    assert prices.pictures("nope", 3) is None


def test_tally() -> None:
    tally = Tally()
    tally.add("gpt-5", "chat", Usage(10, 20, 30), 0.5)
    tally.add("gpt-5", "chat", Usage(1, 2, 3), None)
    assert tally.models["gpt-5"].calls == 2 and tally.models["gpt-5"].usage.input_tokens == 11
    assert tally.total_cost == 0.5 and not tally.models["gpt-5"].priced
    tally.reset()
    assert tally.models == {}


def test_save_names_and_collisions(session: S.Session, clean_env: Path) -> None:
    first = session.save(b"1", "gpt/image 2", 1, ".png")
    second = session.save(b"2", "gpt/image 2", 1, ".png")
    assert first.parent == clean_env / "tokenhot_outputs"
    assert re.fullmatch(r"\d{8}-\d{6}-gpt_image_2-1\.png", first.name)
    assert second.name.endswith("-1-2.png") and second.read_bytes() == b"2"
    assert session.display_path(first) == f"tokenhot_outputs/{first.name}"


def test_output_dir_precedence(
    session: S.Session, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENHOT_OUTPUT_DIR", "env_out")
    assert session.output_dir() == clean_env / "env_out"
    session.config.output_dir = "cfg_out"
    assert session.output_dir() == clean_env / "cfg_out"


def test_save_failure_is_a_configuration_error(session: S.Session, clean_env: Path) -> None:
    from tokenhot_jupyter import ConfigurationError

    (clean_env / "blocked").write_text("a file, not a folder")
    session.config.output_dir = "blocked"
    with pytest.raises(ConfigurationError, match="Could not save"):
        session.save(b"x", "m", 1, ".png")


def test_simulated_detection(session: S.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not session.simulated()  # the public gateway, no key
    monkeypatch.setenv("TOKENHOT_BASE_URL", "http://127.0.0.1:8765")
    assert session.simulated() and session.api_key() == SIMULATOR_KEY
    monkeypatch.setenv("TOKENHOT_API_KEY", "sk-real")
    assert not session.simulated() and session.api_key() == "sk-real"
    monkeypatch.setenv("TOKENHOT_SIMULATED", "1")  # the launcher's simulator, but a real key
    assert not session.simulated() and session.client().base_url == "https://api.tokenhot.ai"
    monkeypatch.setenv("TOKENHOT_SIMULATED", "always")  # --simulate
    assert session.simulated() and session.api_key() == SIMULATOR_KEY
    assert session.client().base_url == "http://127.0.0.1:8765"


def test_client_follows_the_environment_and_timeout(
    session: S.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = session.client()
    assert session.client() is first
    monkeypatch.setenv("TOKENHOT_BASE_URL", "http://127.0.0.1:1234")
    assert session.client() is first and first.base_url == "http://127.0.0.1:1234"
    session.config.timeout = 12
    assert session.client() is not first


def test_login_sets_this_process_only(session: S.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from tokenhot_jupyter import ConfigurationError, InvalidInputError
    from tokenhot_jupyter._redact import redact
    from tokenhot_jupyter._store import _credentials

    monkeypatch.setattr(_credentials, "_login_key", None)
    monkeypatch.setenv("TOKENHOT_SIMULATED", "1")
    monkeypatch.setenv("TOKENHOT_BASE_URL", "http://127.0.0.1:9")
    creds = session.login("  sk-statesecret123456  ")
    assert "TOKENHOT_API_KEY" not in os.environ, "not an environment variable: nothing inherits it"
    assert (creds.key, creds.source, creds.simulated) == ("sk-statesecret123456", "login", False)
    assert session.client().base_url == "https://api.tokenhot.ai", (
        "the launcher's simulator no more"
    )
    assert "sk-statesecret123456" not in redact("oops sk-statesecret123456")
    monkeypatch.setenv("TOKENHOT_API_KEY", "sk-fromtheenvironment")
    assert session.api_key() == "sk-fromtheenvironment", "login comes last"
    monkeypatch.delenv("TOKENHOT_API_KEY")
    monkeypatch.setenv("TOKENHOT_SIMULATED", "always")
    session.login("sk-statesecret123456")  # logging in leaves --simulate's simulator
    assert "TOKENHOT_SIMULATED" not in os.environ and "TOKENHOT_BASE_URL" not in os.environ
    with pytest.raises(InvalidInputError):
        session.login("   ")
    with pytest.raises(ConfigurationError):
        session.login("sk-has space")


def test_use_checks_kind(session: S.Session) -> None:
    from tokenhot_jupyter import InvalidInputError

    assert (
        session.use("image", "dall-e-3").id == "dall-e-3"
        and session.config.image_model == "dall-e-3"
    )
    with pytest.raises(InvalidInputError, match="not a chat model"):
        session.use("chat", "dall-e-3")
    with pytest.raises(InvalidInputError, match="Unknown kind"):
        session.use("music", "x")


def test_known_models_for_completion(session: S.Session) -> None:
    assert "gpt-5" in session.known_models("chat") and "gpt-5" not in session.known_models("image")
    assert "sora-2" in session.known_models()


def test_the_live_list_joins_the_sessions_catalog(session: S.Session) -> None:
    from tokenhot_jupyter._catalog import Catalog

    live = Catalog().merge_live([{"id": "seedance-9-pro"}, {"id": "gpt-5"}]).of_kind(None)
    session.note_live(live)
    assert "seedance-9-pro" in session.known_models("video")
    assert session.catalog().models["gpt-5"].live and not Catalog().models["gpt-5"].live
    assert session.prices.chat("gpt-5", Usage(1_000_000, 0, 1_000_000)) == pytest.approx(1.25)
    session.note_live([m for m in live if not m.live])  # nothing live: the last list stays
    assert "seedance-9-pro" in session.known_models()
