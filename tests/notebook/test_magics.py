"""Every magic and option, driven through a real InteractiveShell against the simulator."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tokenhot_jupyter import (
    ChatResult,
    ImageResult,
    InvalidInputError,
    StreamIncompleteError,
    Transcript,
)
from tokenhot_jupyter._media import encode_png

if TYPE_CHECKING:
    from magics_support import Gate, Shell

pytest_plugins = ("magics_support",)

PNG = encode_png(2, 2, bytes(12))


def _plain(out: dict[str, Any]) -> str:
    return str(out["data"].get("text/plain", ""))


def _md(out: dict[str, Any]) -> str:
    return str(out["data"].get("text/markdown", ""))


def _meta(out: dict[str, Any]) -> dict[str, Any]:
    return out["metadata"]["tokenhot"]  # type: ignore[no-any-return]


def _last_json(sh: Shell, path: str) -> dict[str, Any]:
    hits = [r for r in sh.sim.requests if r.path.startswith(path)]
    assert hits, f"no request to {path}"
    return hits[-1].json  # type: ignore[no-any-return]


# --- loading ---------------------------------------------------------------------------------


def test_load_ext_registers_every_magic(shell: Shell) -> None:
    manager = shell.ip.magics_manager.magics
    for name in ("chat", "image", "video", "speak"):
        assert name in manager["cell"]
    for name in ("transcribe", "tokenhot"):
        assert name in manager["line"]


def test_unload_removes_the_magics(shell: Shell) -> None:
    shell.ip.run_line_magic("unload_ext", "tokenhot_jupyter")
    assert "chat" not in shell.ip.magics_manager.magics["cell"]
    shell.ip.run_line_magic("load_ext", "tokenhot_jupyter")
    assert "chat" in shell.ip.magics_manager.magics["cell"]
    shell.session.config.stream_interval = 0.0


def test_loading_is_lazy_and_cheap() -> None:
    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "from traitlets.config import Config\n"
        "c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
        "ip = InteractiveShell.instance(config=c)\n"
        "ip.run_line_magic('load_ext', 'tokenhot_jupyter')\n"
        "names = ('httpx', 'tokenhot_jupyter._client', 'tokenhot_jupyter._notebook._tasks')\n"
        "print(sorted(m for m in names "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_help_documents_options_and_the_escape(shell: Shell) -> None:
    doc = shell.ip.find_cell_magic("chat").__doc__
    for option in ("--model", "--system", "--temperature", "--max-tokens", "--reasoning", "--image",
                   "--thread", "--new", "--out", "--no-stream", "--vars"):  # fmt: skip
        assert option in doc
    assert "{{name}}" in doc
    for magic, option in (("image", "--mask"), ("video", "--wait"), ("speak", "--voice")):
        assert option in shell.ip.find_cell_magic(magic).__doc__
    assert "--translate" in shell.ip.find_line_magic("transcribe").__doc__


def test_question_mark_shows_help(shell: Shell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.ok("%%chat?")
    assert "--max-tokens" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("magic", "first", "option"),
    [("%%chat", "%%chat [-m MODEL]", "--model"), ("%%image", "%%image [-m MODEL]", "--size"),
     ("%%video", "%%video [-m MODEL]", "--wait"), ("%%speak", "%%speak [-m MODEL]", "--voice"),
     ("%transcribe", "%transcribe [-m MODEL]", "--translate"),
     ("%tokenhot", "Manage the Tokenhot session.", "%tokenhot tasks")],
)  # fmt: skip
def test_every_help_starts_with_its_usage_and_has_no_markup(
    shell: Shell, capsys: pytest.CaptureFixture[str], magic: str, first: str, option: str
) -> None:
    capsys.readouterr()
    shell.ok(f"{magic}?")
    out = capsys.readouterr().out
    doc = out[out.index("Docstring:") :].splitlines()[1:]
    assert doc[0].startswith(first), doc[:3]  # %%chat [-m MODEL] ..., not "::" then %chat
    assert "::" not in [line.strip() for line in doc]  # IPython's reST marker, shown raw
    assert option in out


# --- %%chat -------------------------------------------------------------------------------


def test_chat_final_output_is_markdown_and_plain_with_provenance(shell: Shell) -> None:
    shell.ok("%%chat -o answer\nSay hello", cell_id="c1")
    final = shell.final()
    assert set(final["data"]) == {"text/markdown", "text/plain"}
    assert "Say hello" in _plain(final)
    meta = _meta(final)
    assert meta["model"] == "gpt-5.4-mini" and meta["kind"] == "chat"
    assert meta["usage"]["output_tokens"] > 0 and meta["latency"] >= 0 and meta["time"]
    assert meta["estimated_cost_usd"] > 0
    assert isinstance(shell.ip.user_ns["answer"], ChatResult)
    assert _last_json(shell, "/v1/chat/completions")["stream"] is True


def test_chat_streams_into_one_output_updated_in_place(shell: Shell) -> None:
    shell.ok("%%chat\nWrite a long answer please " + "x " * 50)  # stream_interval 0: every delta
    first, *updates = shell.outputs
    assert not first["update"] and all(u["update"] for u in updates)
    ids = {o["transient"]["display_id"] for o in shell.outputs}
    assert len(ids) == 1
    tokens = len(shell.final()["data"]["text/plain"].split())
    assert len(updates) >= tokens / 2  # live: an update per piece of the stream
    shell.session.config.stream_interval = 3600.0  # the throttle (its clock: test_display)
    shell.ok("%%chat\nWrite a long answer please " + "y " * 50)
    # The first, the first words (at once: the placeholder's interval is not waited out, issue
    # 10; unless the whole answer came in one go) and the final.
    assert [o["update"] for o in shell.outputs] in ([False, True], [False, True, True])


def test_no_stream_sends_one_output(shell: Shell) -> None:
    shell.ok("%%chat --no-stream\nHello")
    assert len(shell.outputs) == 1 and not shell.outputs[0]["update"]
    assert _last_json(shell, "/v1/chat/completions").get("stream") in (None, False)


def test_chat_options_reach_the_request(shell: Shell) -> None:
    shell.ok('%%chat -m gpt-5 -s "Be terse" --temperature 0.3 --max-tokens 50 --reasoning low\nHi')
    body = _last_json(shell, "/v1/chat/completions")
    assert body["model"] == "gpt-5"
    assert body["messages"][0]["role"] in ("system", "developer")
    assert "Be terse" in json.dumps(body["messages"][0])
    assert body["temperature"] == 0.3
    assert 50 in (body.get("max_tokens"), body.get("max_completion_tokens"))
    assert body["reasoning_effort"] == "low"
    assert _meta(shell.final())["params"]["system"] == "Be terse"


def test_extra_param_passes_through(shell: Shell) -> None:
    shell.ok("%%chat -p seed=7 -p user=abc\nHi")
    body = _last_json(shell, "/v1/chat/completions")
    assert body["seed"] == 7 and body["user"] == "abc"


@pytest.mark.parametrize("kind", ["variable", "path", "array"])
def test_image_input_for_vision(shell: Shell, kind: str, tmp_path: Path) -> None:
    if kind == "variable":
        shell.ip.user_ns["pic"] = PNG
        ref = "pic"
    elif kind == "path":
        (tmp_path / "pic.png").write_bytes(PNG)
        ref = "pic.png"  # relative to the kernel's folder
    else:
        np = pytest.importorskip("numpy")
        shell.ip.user_ns["arr"] = np.zeros((2, 2, 3), dtype="uint8")
        ref = "arr"
    shell.ok(f"%%chat --image {ref}\nWhat is this?")
    body = json.dumps(_last_json(shell, "/v1/chat/completions"))
    assert "data:image/png;base64," in body


def test_missing_image_is_one_short_line(shell: Shell, capsys: pytest.CaptureFixture[str]) -> None:
    result = shell.run("%%chat --image nowhere.png\nWhat?")
    assert result.error_in_exec is not None
    err = capsys.readouterr()
    text = err.out + err.err
    assert "InvalidInputError: No image file at 'nowhere.png'" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("cell", "said", "paid_path"),
    [
        ("%%video -m doubao-seedance-2.0 --image notimage.png\nAnimate it",
         "The image file 'notimage.png' is text, not a PNG", "/v1/video"),
        ("%%chat --image empty.png\nWhat?", "The image file 'empty.png' is empty", "/v1/chat"),
        ("%%image -m gpt-image-1.5 --input notimage.png\nBluer", "is text", "/v1/images"),
        ("%%image -m gpt-image-1.5 --input pic.png --mask page.html\nBluer",
         "The mask file 'page.html' is an HTML page", "/v1/images"),
        ("%%video -m doubao-seedance-2.0 --video pic.png\nLike this",
         "The video file 'pic.png' is a PNG image, not an MP4", "/v1/video"),
        ("%transcribe pic.png", "The audio file 'pic.png' is a PNG image, not WAV", "/v1/audio"),
        ("%%chat --image huge.png\nWhat?", "is 2,048 MB", "/v1/chat"),
    ],
)  # fmt: skip
def test_a_wrong_input_is_one_line_and_nothing_is_paid(
    shell: Shell, tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str, said: str,
    paid_path: str,
) -> None:  # fmt: skip
    (tmp_path / "notimage.png").write_text("this is a shopping list, not a picture\n")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "page.html").write_text("<!doctype html><html><body>Not found</body></html>")
    (tmp_path / "pic.png").write_bytes(PNG)
    with (tmp_path / "huge.png").open("wb") as sparse:  # 2 GiB that use no disk
        sparse.write(PNG[:8])
        sparse.truncate(2 * 2**30)
    result = shell.run(cell)
    assert isinstance(result.error_in_exec, InvalidInputError)
    err = capsys.readouterr()
    lines = [line for line in (err.out + err.err).splitlines() if line.strip()]
    assert len(lines) == 1 and said in lines[0], lines
    assert not [r for r in shell.sim.requests if r.path.startswith(paid_path)]
    assert shell.session.tasks().tracked() == []


@pytest.mark.parametrize(
    ("cell", "said"),
    [
        ("%%chat -p seed=NaN\nHi", "seed is nan"),
        ("%%chat -m gpt-5,claude-opus-4-6 -p x=Infinity\nHi", "x is inf"),
        ("%%chat -p 'extra={\"scale\": [1, -Infinity]}'\nHi", r"extra\.scale\[1\] is -inf"),
        ("%%image -p seed=NaN\nA cat", "seed is nan"),
        ("%%video -p seed=NaN\nA cat", "seed is nan"),
        ("%%speak -p speed=NaN\nHello", "speed is nan"),
        ("%%chat --vars\nSummarise {title}", r"\{title\} has a lone surrogate"),
    ],
)
def test_a_value_json_cannot_carry_is_one_line_and_nothing_is_sent(
    shell: Shell, capsys: pytest.CaptureFixture[str], cell: str, said: str
) -> None:
    shell.ip.user_ns["title"] = "caf\udce9 menu"  # e.g. a file name read with surrogateescape
    result = shell.run(cell)
    assert isinstance(result.error_in_exec, InvalidInputError)
    err = capsys.readouterr()
    lines = [line for line in (err.out + err.err).splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(said, lines[0]), lines
    assert not [r for r in shell.sim.requests if r.method == "POST"]
    assert shell.session.tasks().tracked() == []


@pytest.mark.parametrize("models", ["gpt-5", "gpt-5,claude-opus-4-6"])
def test_a_stream_that_ends_early_keeps_its_text_and_fails_the_cell(
    shell: Shell, capsys: pytest.CaptureFixture[str], models: str
) -> None:
    shell.sim.faults.add("end-early", path="/v1/chat/completions", method="POST")
    result = shell.run(f"%%chat -m {models}\nTell me about the sea in a few sentences.")
    error = result.error_in_exec
    assert isinstance(error, StreamIncompleteError) and error.result.model == "gpt-5"
    shown = _plain(shell.final())
    assert "ended early" in shown
    assert error.result.text.split()[0] in shown  # the text that arrived is still there
    if "," in models:
        assert "── claude-opus-4-6 · " in shown and "⚠" in shown  # the other column is whole
    err = capsys.readouterr()
    lines = [line for line in (err.out + err.err).splitlines() if "Error" in line]
    assert len(lines) == 1 and lines[0].startswith("StreamIncompleteError: The gpt-5 stream")
    assert shell.session.thread(None).turns == []  # a cut answer is not kept as context


# --- memory ------------------------------------------------------------------------------------


def test_threads_send_earlier_turns_and_rerun_replaces(shell: Shell) -> None:
    shell.ok("%%chat\nFirst question", cell_id="a")
    assert "no earlier turns sent" in _plain(shell.final())
    shell.ok("%%chat\nSecond question", cell_id="b")
    assert "1 earlier turn sent" in _plain(shell.final())
    messages = _last_json(shell, "/v1/chat/completions")["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "First question"
    shell.ok("%%chat\nFirst question, edited", cell_id="a")
    assert "no earlier turns sent" in _plain(shell.final())
    thread = shell.session.thread(None)
    assert [t.prompt for t in thread.turns] == ["First question, edited", "Second question"]
    assert _meta(shell.final())["turns_sent"] == 0


def test_rerun_without_cell_ids_uses_the_source(shell: Shell) -> None:
    shell.ok("%%chat\nSame cell")
    shell.ok("%%chat\nSame cell")
    assert len(shell.session.thread(None).turns) == 1


def test_named_threads_and_new(shell: Shell) -> None:
    shell.ok("%%chat --thread math\nOne", cell_id="m1")
    shell.ok("%%chat --thread math\nTwo", cell_id="m2")
    assert "1 earlier turn sent" in _plain(shell.final()) and "thread math" in _plain(shell.final())
    shell.ok("%%chat\nElsewhere", cell_id="d1")
    assert "no earlier turns sent" in _plain(shell.final())
    shell.ok("%%chat --thread math --new\nFresh start", cell_id="m3")
    assert "no earlier turns sent" in _plain(shell.final())
    assert len(shell.session.thread("math").turns) == 1


def test_history_and_reset(shell: Shell) -> None:
    shell.ok("%%chat\nRemember <b>this</b>", cell_id="h1")
    shell.ok("%tokenhot history")
    bundle = shell.final()["data"]
    assert "Remember <b>this</b>" in bundle["text/plain"]
    assert "&lt;b&gt;" in bundle["text/html"] and "<b>this" not in bundle["text/html"]
    shell.ok("%tokenhot history --reset")
    assert "Forgot 1 turn" in _plain(shell.final())
    assert shell.session.thread(None).turns == []


# --- variables ---------------------------------------------------------------------------------


def test_vars_only_on_request(shell: Shell) -> None:
    shell.ip.user_ns["city"] = "Paris"
    shell.ok('%%chat\nTell me about {city} and {"json": 1}')
    assert _last_json(shell, "/v1/chat/completions")["messages"][-1]["content"].startswith(
        "Tell me about {city}"
    )
    shell.ok('%%chat --vars\nTell me about {city}, {{city}}, {"json": 1}, $\\frac{a}{b}$')
    content = _last_json(shell, "/v1/chat/completions")["messages"][-1]["content"]
    assert content == 'Tell me about Paris, {city}, {"json": 1}, $\\frac{a}{b}$'
    assert _meta(shell.final())["vars"] == ["city"]


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "%%chat --temperature hot\nHi",
        "%%chat --bogus\nHi",
        "%%chat\n   ",
        "%%chat -o 1abc\nHi",
        '%%chat -s "unclosed\nHi',
        "%%image -n 0\nA cat",
        "%%video --duration five\nA dog",
        "%transcribe",
        "%tokenhot frobnicate",
        "%tokenhot use chat",
        "%tokenhot models nonsense",
        "%%chat -p novalue\nHi",
    ],
)
def test_bad_arguments_are_usage_errors(
    shell: Shell, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.error import UsageError

    result = shell.run(source)
    assert isinstance(result.error_in_exec, UsageError)
    out = capsys.readouterr()
    assert "UsageError" in out.out + out.err and "Traceback" not in out.out + out.err


def test_gateway_error_is_one_line_and_fails_the_cell(
    shell: Shell, capsys: pytest.CaptureFixture[str]
) -> None:
    from tokenhot_jupyter import RateLimitError

    shell.session.client()  # built before the fault, so retries are the client's own
    shell.sim.faults.add("429", path="/v1/chat/completions", method="POST", times=-1)
    shell.session.client()._async._conn.max_retries = 0
    result = shell.run("%%chat\nHi")
    assert isinstance(result.error_in_exec, RateLimitError)
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("RateLimitError:")
    assert shell.sim.api_key not in out.out + out.err


def test_unknown_model_suggests(shell: Shell) -> None:
    result = shell.run("%%chat -m gpt-5.4-mimi\nHi")
    assert "gpt-5.4-mini" in str(result.error_in_exec)


def test_stream_cut_midway_keeps_text_and_fails(shell: Shell) -> None:
    shell.sim.faults.add("drop-mid-stream", path="/v1/chat/completions", method="POST", times=-1)
    shell.session.client()._async._conn.max_retries = 0
    result = shell.run("%%chat\nTell me a story")
    assert result.error_in_exec is not None
    assert "stopped:" in _plain(shell.final())


# --- inert output ------------------------------------------------------------------------------


def test_html_in_a_reply_is_inert(shell: Shell) -> None:
    payload = '<script>alert(1)</script><img src=x onerror="alert(2)"> [x](javascript:alert(3))'
    shell.ok(f"%%chat\n{payload}")
    markdown = _md(shell.final())
    assert payload in _plain(shell.final())  # the plain text keeps the reply as is
    assert "<script" not in markdown and "<img" not in markdown
    assert (
        "](javascript:" not in markdown.replace("\u200b", "") or "](j\u200bavascript:" in markdown
    )


# --- comparison --------------------------------------------------------------------------------


def test_compare_streams_columns_and_shows_errors_in_place(shell: Shell) -> None:
    shell.ok(
        "%%chat -m gpt-5.4-mini,claude-opus-4-6,gemini-2.5-flash,no-such-model -o cmp\n"
        "Compare <i>me</i>"
    )
    final = shell.final()
    html = final["data"]["text/html"]
    for model in ("gpt-5.4-mini", "claude-opus-4-6", "gemini-2.5-flash", "no-such-model"):
        assert model in html and model in final["data"]["text/plain"]
    assert "Unknown chat model" in html and "<i>me" not in html and "&lt;i&gt;me" in html
    assert html.count("est.") == 3 and html.count(" s · ") >= 3
    results = shell.ip.user_ns["cmp"]
    assert isinstance(results["gpt-5.4-mini"], ChatResult)
    assert isinstance(results["no-such-model"], Exception)
    assert len({o["transient"]["display_id"] for o in shell.outputs}) == 1
    meta = _meta(final)
    assert meta["kind"] == "chat-compare"
    by_model = {c["model"]: c for c in meta["columns"]}
    assert by_model["claude-opus-4-6"]["usage"]["output_tokens"] > 0
    assert by_model["gpt-5.4-mini"]["latency"] > 0
    assert "estimated_cost_usd" in by_model["gemini-2.5-flash"]
    assert "Unknown chat model" in by_model["no-such-model"]["error"]


def test_compare_runs_concurrently(shell: Shell, gate: Callable[[int], Gate]) -> None:
    shell.ok("%%chat -m gpt-5.4-mini,gpt-5,claude-opus-4-6\nWarm up")  # pool and model list
    all_at_once = gate(3)  # the three requests get through only when all three are in flight
    shell.ok("%%chat -m gpt-5.4-mini,gpt-5,claude-opus-4-6\nHi")
    columns = shell.final()["metadata"]["tokenhot"]["columns"]
    assert all_at_once.arrived == 3 and all("error" not in c for c in columns), columns


def test_compare_fails_only_when_every_model_fails(shell: Shell) -> None:
    result = shell.run("%%chat -m nope-one,nope-two\nHi")
    assert result.error_in_exec is not None


# --- %%image ---------------------------------------------------------------------------------


def test_image_inline_and_saved(shell: Shell, tmp_path: Path) -> None:
    shell.ok("%%image -n 2 --size 1024x1024 -o pics\nA red fox")
    images = [o for o in shell.outputs if "image/png" in o["data"]]
    assert len(images) == 2
    meta = _meta(images[0])
    assert meta["params"] == {"size": "1024x1024", "n": 2}
    saved = sorted((tmp_path / "tokenhot_outputs").glob("*.png"))
    assert len(saved) == 2 and re.fullmatch(r"\d{8}-\d{6}-gpt-image-2-1\.png", saved[0].name)
    assert meta["file"] == f"tokenhot_outputs/{saved[0].name}"
    assert isinstance(shell.ip.user_ns["pics"], ImageResult)


def test_image_edit_with_input_and_mask(shell: Shell, tmp_path: Path) -> None:
    (tmp_path / "in.png").write_bytes(PNG)
    shell.ip.user_ns["mask_img"] = PNG
    shell.ok("%%image -m gpt-image-1.5 --input in.png --mask mask_img\nMake it blue")
    request = shell.sim.requests[-1]
    assert request.path == "/v1/images/edits"
    assert {f.name for f in request.files} >= {"mask"}
    assert any(f.name.startswith("image") for f in request.files)


def test_image_output_dir_setting(shell: Shell, tmp_path: Path) -> None:
    shell.ok("%config Tokenhot.output_dir = 'pictures'")
    shell.ok("%%image\nA boat")
    assert list((tmp_path / "pictures").glob("*.png"))


def test_image_compare(shell: Shell) -> None:
    shell.ok(
        "%%image -m gpt-image-2,doubao-seedream-4-0-250828,dall-e-3 --size 1024x1024 -o many\n"
        "A tree"
    )
    html = shell.final()["data"]["text/html"]
    assert html.count("<img ") == 2  # seedream has no 1024x1024
    assert "doubao-seedream-4-0-250828" in html and "size=" in html
    assert isinstance(shell.ip.user_ns["many"]["gpt-image-2"], ImageResult)


# --- %%video -----------------------------------------------------------------------------------


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_video_returns_at_once_and_the_card_updates(shell: Shell) -> None:
    shell.ok(
        "%%video --duration 5 --resolution 720p --ratio 16:9 -o job\nA dog on a beach", cell_id="v"
    )
    assert not shell.ip.user_ns["job"].done  # returned while the task runs: its clock is still
    card = shell.final()
    display_id = card["transient"]["display_id"]
    assert "queued" in _plain(card) or "running" in _plain(card)
    job = shell.ip.user_ns["job"]
    body = _last_json(shell, "/v1/video/generations")
    assert body["model"] == "doubao-seedance-2.0-fast"
    shell.ok("x = 1 + 1")  # another cell runs meanwhile
    shell.sim.clock.advance(600)
    _wait_for(lambda: job.phase == "done")
    _wait_for(
        lambda: any(
            o["update"] and "<video" in o["data"].get("text/html", "") for o in shell.outputs
        )
    )
    done = [o for o in shell.outputs if o["update"] and "<video" in o["data"].get("text/html", "")][
        -1
    ]
    assert done["transient"]["display_id"] == display_id
    assert job.file.exists()


def test_video_rerun_reuses_and_new_forces(shell: Shell) -> None:
    shell.ok("%%video\nA cat", cell_id="v1")
    first = shell.session.tasks().tracked()[-1].task_id
    shell.ok("%%video\nA cat", cell_id="v1")
    assert shell.session.tasks().tracked()[-1].task_id == first
    assert f"showing task {first} again" in _plain(shell.outputs[0])
    shell.ok("%%video --new\nA cat", cell_id="v1")
    assert shell.session.tasks().tracked()[-1].task_id != first


def test_video_wait_blocks_and_failure_fails_the_cell(shell: Shell) -> None:
    shell.sim.clock.speed = 2000
    shell.ok("%%video --wait --timeout 90 -o done_job\nA bird")  # a bound, not a speed
    assert shell.ip.user_ns["done_job"].phase == "done"
    shell.sim.faults.add("task-fail", path="/v1/video/generations", method="POST", times=1)
    result = shell.run("%%video --wait --timeout 90\nA broken bird")
    assert result.error_in_exec is not None and "failed" in str(result.error_in_exec)


def test_video_inputs(shell: Shell, tmp_path: Path) -> None:
    (tmp_path / "first.png").write_bytes(PNG)
    shell.ok("%%video -m doubao-seedance-2.0 --image first.png\nAnimate it")
    assert "data:image/png;base64," in json.dumps(_last_json(shell, "/v1/video/generations"))


def test_tasks_attach_cancel(shell: Shell) -> None:
    shell.ok("%%video\nA horse", cell_id="t1")
    task_id = shell.session.tasks().tracked()[-1].task_id
    shell.ok("%tokenhot tasks")
    assert task_id in _plain(shell.final())
    shell.ok(f"%tokenhot cancel {task_id}")
    assert "Stopped polling" in _plain(shell.final())
    shell.ok(f"%tokenhot attach {task_id}")
    assert task_id in _plain(shell.final())
    assert shell.run("%tokenhot attach task_unknown").error_in_exec is not None


# --- audio -------------------------------------------------------------------------------------


def test_speak_player_and_wav(shell: Shell, tmp_path: Path) -> None:
    shell.ok("%%speak -m tts-1 --voice nova -o wav\nHello from the notebook")
    final = shell.final()
    assert final["data"]["text/html"].startswith("<audio controls src='data:audio/wav;base64,")
    assert list((tmp_path / "tokenhot_outputs").glob("*-tts-1-1.wav"))
    assert _meta(final)["params"]["voice"] == "nova"
    assert shell.ip.user_ns["wav"][:4] == b"RIFF"


def test_transcribe_variable_path_translate(shell: Shell, tmp_path: Path) -> None:
    shell.ok("%%speak\nThe quick brown fox", cell_id="s")
    wav = next((tmp_path / "tokenhot_outputs").glob("*.wav"))
    shell.ip.user_ns["clip"] = wav.read_bytes()
    shell.ok("%transcribe clip -o said")
    said = shell.ip.user_ns["said"]
    assert isinstance(said, Transcript) and "quick brown fox" in said.text.lower()
    assert "quick brown fox" in _plain(shell.final()).lower()
    shell.ok(f"%transcribe {wav.relative_to(tmp_path)} --translate --language de")
    request = shell.sim.requests[-1]
    assert request.path == "/v1/audio/translations" or "translat" in request.path


# --- %tokenhot ---------------------------------------------------------------------------------


def test_status(shell: Shell) -> None:
    shell.ok("%tokenhot status")
    text = _plain(shell.final())
    assert shell.sim.base_url in text and "Reachable" in text and "yes" in text
    assert shell.sim.api_key not in shell.dump()


def test_status_unreachable(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHOT_BASE_URL", "http://127.0.0.1:9")
    shell.ok("%tokenhot status")
    assert "Reachable         no" in _plain(shell.final())


def test_login_keeps_the_key_out_of_the_notebook(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-loginsecret1234567890"
    monkeypatch.delenv("TOKENHOT_API_KEY")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": secret)
    shell.ok("%tokenhot login")
    assert "sk-…7890" in _plain(shell.final()) and "not used" not in _plain(shell.final())
    import os

    assert "TOKENHOT_API_KEY" not in os.environ, "kept in this process, not its environment"
    shell.ok("%%chat\nHi")
    assert secret not in shell.dump()
    assert shell.session.credentials().source == "login"
    assert "answers are simulated" not in shell.dump().lower(), "a real key: not the simulator"


def test_login_says_when_another_key_comes_first(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "sk-loginsecret1234567890")
    shell.ok("%tokenhot login")
    note = _plain(shell.final())
    assert "not used while the key" in note and "TOKENHOT_API_KEY" in note
    assert shell.session.credentials().source == "environment"


def test_models_and_use(shell: Shell) -> None:
    shell.ok("%tokenhot models image")
    text = _plain(shell.final())
    assert "gpt-image-2" in text and "gpt-5.4-mini" not in text
    shell.ok("%tokenhot use chat=gpt-5 image=dall-e-3")
    shell.ok("%%chat\nHi")
    assert _meta(shell.final())["model"] == "gpt-5"
    result = shell.run("%tokenhot use chat=dall-e-3")
    assert result.error_in_exec is not None and "not a chat model" in str(result.error_in_exec)


def test_config_precedence(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHOT_CHAT_MODEL", "claude-opus-4-6")
    assert shell.session.model_for("chat") == "claude-opus-4-6"
    shell.ok("%config Tokenhot.chat_model = 'gpt-5'")
    assert shell.session.model_for("chat") == "gpt-5"
    assert shell.session.model_for("chat", "gemini-2.5-pro") == "gemini-2.5-pro"


def test_usage(shell: Shell) -> None:
    shell.ok("%%chat\nHi")
    shell.ok("%tokenhot usage")
    text = _plain(shell.final())
    assert "gpt-5.4-mini" in text and "estimates" in text and "total" in text
    shell.ok("%tokenhot usage --reset")
    assert "gpt-5.4-mini" not in _plain(shell.final())


def test_usage_today_and_all_read_every_kernels_ledger(shell: Shell) -> None:
    from tokenhot_jupyter._store._ledger import Call, Ledger
    from tokenhot_jupyter._types import Usage

    shell.ok("%%chat -m gpt-5\nHi")
    shell.ok("%%chat -m gpt-5\nAgain")
    other_kernel = Ledger()  # another notebook's kernel, same TOKENHOT_HOME
    other_kernel.append(Call(model="claude-opus-4-6", kind="chat", usage=Usage(1000, 100, 1100),
                             cost=0.0075))  # fmt: skip
    other_kernel.append(Call(model="gpt-5", kind="chat", cost=3.0, simulated=True))
    shell.ok("%tokenhot usage --today")
    text = _plain(shell.final())
    assert "every kernel" in text and "live calls" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert rows["gpt-5"][2] == "2", "each call recorded once"
    assert rows["claude-opus-4-6"][2:5] == ["1", "1,000", "100"]
    assert rows["total"][1] == "3" and not rows["total"][-1].startswith("3."), "no simulated spend"
    shell.ok("%tokenhot usage --reset")  # this session's count only
    shell.ok("%tokenhot usage --all")
    assert "gpt-5" in _plain(shell.final()) and "all time" in _plain(shell.final())
    result = shell.run("%tokenhot usage --reset --today")
    assert result.error_in_exec is not None and "every kernel" in str(result.error_in_exec)
    result = shell.run("%tokenhot usage --today --all")
    assert result.error_in_exec is not None or result.error_before_exec is not None


def test_status_says_where_the_key_comes_from(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenhot_jupyter._store._credentials import store

    shell.ok("%tokenhot status")
    assert "from TOKENHOT_API_KEY" in _plain(shell.final())
    monkeypatch.delenv("TOKENHOT_API_KEY")
    store().write("sk-storedinthepanel1234")  # the panel, while this kernel runs
    shell.ok("%tokenhot status")
    text = _plain(shell.final())
    assert "sk-…1234, stored from the Tokenhot panel" in text and str(store().path) in text
    assert "sk-storedinthepanel1234" not in shell.dump()
    shell.ok("%%chat\nHi")
    assert "answers are simulated" not in shell.dump().lower()
    store().delete()  # forgotten: a loopback gateway and no key is the simulator again
    shell.ok("%%chat\nHi")
    assert "answers are simulated" in shell.dump().lower()


def test_simulated_banner_once(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHOT_SIMULATED", "1")
    shell.ok("%%chat\nHi")
    assert "answers are simulated" in _plain(shell.outputs[0]).lower()
    shell.ok("%%chat\nAgain")
    assert all("answers are simulated" not in _plain(o).lower() for o in shell.outputs)
    shell.ok("%tokenhot status")
    assert "answers are simulated" in _plain(shell.final())


def test_simulated_without_key_uses_the_stand_in(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOKENHOT_API_KEY")
    shell.ok("%%chat\nHi")
    assert "answers are simulated" in _plain(shell.outputs[0]).lower()


# --- completion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected", "absent"),
    [
        ("%%chat -m gpt-5.4-m", "gpt-5.4-mini", "gpt-image-2"),
        ("%%chat --model claude-op", "claude-opus-4-6", "gpt-5"),
        ("%%chat -m gpt-5,claude-op", "claude-opus-4-6", "gpt-5.4"),
        ("%%image -m gpt-im", "gpt-image-2", "gpt-5"),
        ("%%video -m sora", "sora-2-pro", "gpt-5"),
        ("%tokenhot use chat=gemini-2.5-p", "gemini-2.5-pro", "gemini-2.5-pro-preview-tts"),
    ],
)
def test_tab_completes_model_ids(shell: Shell, line: str, expected: str, absent: str) -> None:
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():
        completions = list(shell.ip.Completer.completions(line, len(line)))
    texts = {c.text for c in completions}
    assert expected in texts and absent not in texts
    fragment = line.rsplit(",", 1)[-1].split("=")[-1].split()[-1]
    assert all(line[c.start : c.end] == fragment for c in completions)


# --- terminal and leaks ---------------------------------------------------------------------------


def test_terminal_gets_plain_text(shell: Shell, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.displaypub import DisplayPublisher

    capturing = shell.ip.display_pub
    # IPython's display publishers have no annotations.
    shell.ip.display_pub = DisplayPublisher(shell=shell.ip)  # type: ignore[no-untyped-call]
    try:
        result = shell.ip.run_cell("%%chat\nHello terminal <b>")
        assert result.error_in_exec is None
        out = capsys.readouterr().out
        assert "Hello terminal <b>" in out and "est.]" in out and "&lt;" not in out
        shell.ip.run_cell("%%chat -m gpt-5,gpt-5.4-mini\nHi")
        assert "── gpt-5 ·" in capsys.readouterr().out
    finally:
        shell.ip.display_pub = capturing


def test_terminal_messages_speak_of_the_terminal(
    shell: Shell, capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.displaypub import DisplayPublisher

    capturing = shell.ip.display_pub
    # IPython is untyped.
    shell.ip.display_pub = DisplayPublisher(shell=shell.ip)  # type: ignore[no-untyped-call]
    try:
        shell.ip.run_cell("%%video --duration 5\nA dog running")
        tracked = shell.session.tasks().tracked()[-1]
        waited = shell.ip.run_cell("%%video --duration 5 --wait --timeout 0.01\nA dog running")
        shell.sim.clock.advance(600)
        tracked.wait(timeout=20)
        assert tracked.done
        missing = shell.ip.run_cell("%%chat --image nosuchvariable\nWhat is it?")
        out = capsys.readouterr().out
    finally:
        shell.ip.display_pub = capturing
    said = out + str(waited.error_in_exec) + str(missing.error_in_exec)
    assert "Saved to" in out and "made in" in out, out  # says what the time is
    assert not re.search(r"(?i)notebook|card|\bcell", said), said


def test_notebook_cards_say_how_they_update(shell: Shell) -> None:
    shell.ok("%%video --duration 5\nA dog running")
    card = shell.final()["data"]["text/plain"]
    result = shell.run("%%video --duration 5 --wait --timeout 0.01\nA dog running")
    assert "If this card stops updating" in card
    assert "its card will update" in str(result.error_in_exec)


def test_the_key_never_appears(shell: Shell) -> None:
    key = shell.sim.api_key
    shell.ok("%%chat\nHi")
    shell.ok("%%image\nA cat")
    shell.ok("%%speak\nHi")
    shell.ok("%tokenhot status")
    shell.ok("%tokenhot usage")
    shell.ok("%%video\nA cat")
    assert key not in shell.dump()
    assert key not in repr(shell.session.client())
    assert key not in json.dumps(shell.session.tasks().list()[0].params, default=str)


def test_output_bundles_are_json_mime_bundles(shell: Shell) -> None:
    shell.ok("%%chat -m gpt-5,claude-opus-4-6\nHi")
    shell.ok("%%image\nA cat")
    for output in shell.outputs:
        json.dumps(output["data"]), json.dumps(output["metadata"])
        assert "text/plain" in output["data"]


def test_video_with_a_variable_image_reuses_on_rerun(shell: Shell) -> None:
    np = pytest.importorskip("numpy")
    shell.ip.user_ns["frame"] = np.zeros((4, 4, 3), dtype="uint8")
    shell.ok("%%video -m doubao-seedance-2.0 --image frame\nAnimate", cell_id="vf")
    first = shell.session.tasks().tracked()[-1].task_id
    shell.ok("%%video -m doubao-seedance-2.0 --image frame\nAnimate", cell_id="vf")
    assert shell.session.tasks().tracked()[-1].task_id == first
    shell.ip.user_ns["frame"] = np.ones((4, 4, 3), dtype="uint8")
    shell.ok("%%video -m doubao-seedance-2.0 --image frame\nAnimate", cell_id="vf")
    assert shell.session.tasks().tracked()[-1].task_id != first


# --- review findings: links, keys, reserved parameters, timeouts, interrupts ---------------------


def test_a_script_link_in_a_reply_is_not_a_link_in_exported_html(shell: Shell) -> None:
    pytest.importorskip("nbconvert")
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    for prompt in (
        "[Open the report](javascript\\:alert(document.domain))",
        "[x](&#x6A;avascript:1)",
    ):
        shell.ok(f"%%chat\n{prompt}")  # the simulator echoes the prompt's first line
        assert prompt in _plain(shell.final())
        rendered = markdown2html_mistune(_md(shell.final()))
        hrefs = re.findall(r"""(?:href|src)=["']([^"']*)""", rendered)
        assert all(h.startswith(("https://", "http://")) for h in hrefs), hrefs
        assert "[Open the report](" in rendered or "[x](" in rendered


KEY = "sk-" + "Qx7Lm2Pv9Rt4Wz8Kc3Hn6Bj1Fy5Dg0Sa" + "e2Tu4Io6Pl8Mk0Nj"


@pytest.fixture
def keyed(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> Shell:
    """The shell with a realistic key (the simulator takes any key)."""
    monkeypatch.setenv("TOKENHOT_API_KEY", KEY)
    shell.ok("%%chat\nwarm up")  # the client registers the key
    return shell


def test_a_key_in_prompt_or_reply_is_redacted_in_every_output(keyed: Shell) -> None:
    keyed.ip.user_ns["K"] = KEY
    keyed.ok("%%chat --vars\nmy key {K}")
    assert "sk-***" in _md(keyed.final()) and KEY[3:20] not in keyed.dump()
    keyed.ok(f"%%chat --no-stream\nwhy does {KEY} fail")
    assert "sk-***" in _md(keyed.final()) and KEY[3:20] not in keyed.dump()
    keyed.ok("%tokenhot history")
    assert "sk-***" in _plain(keyed.final()) and KEY[3:20] not in keyed.dump()


def test_a_key_in_a_comparison_is_redacted(keyed: Shell) -> None:
    keyed.ok(f"%%chat -m gpt-5.4-mini,claude-opus-4-6\nwhy does {KEY} fail")
    assert KEY[3:20] not in keyed.dump() and "sk-***" in keyed.final()["data"]["text/html"]


@pytest.mark.parametrize(
    ("source", "flag"),
    [
        ("%%chat -p model=gpt-5\nHi", "-m/--model"),
        ("%%chat -p messages=5\nHi", "the cell body"),
        ("%%chat -p prompt=x\nHi", "the cell body"),
        ("%%chat -p system=x\nHi", "-s/--system"),
        ("%%chat -p images=x\nHi", "--image"),
        ("%%chat -p stream=false\nHi", "--no-stream"),
        ("%%image -p prompt=x\nA cat", "the cell body"),
        ("%%image -p model=dall-e-3\nA cat", "-m/--model"),
        ("%%image -p mask=m.png\nA cat", "--mask"),
        ("%%video -p model=x\nA dog", "-m/--model"),
        ("%%video -p prompt=x\nA dog", "the cell body"),
        ("%%video -p image=x.png\nA dog", "--image"),
        ("%%speak -p input=x\nHello", "the cell body"),
        ("%%speak -p model=tts-1\nHello", "-m/--model"),
    ],
)
def test_param_may_not_set_what_the_magic_sets(
    shell: Shell, source: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.error import UsageError

    sent = len(shell.sim.requests)
    result = shell.run(source)
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert flag in str(result.error_in_exec)
    assert len(shell.sim.requests) == sent
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err


@pytest.mark.parametrize("timeout", ["0", "-5", "nan"])
def test_video_timeout_must_be_positive(shell: Shell, timeout: str) -> None:
    from IPython.core.error import UsageError

    sent = len(shell.sim.requests)
    result = shell.run(f"%%video --wait --timeout {timeout}\nA dog")
    assert isinstance(result.error_in_exec, UsageError) and "--timeout" in str(result.error_in_exec)
    assert len(shell.sim.requests) == sent


def test_video_wait_that_times_out_fails_the_cell(
    shell: Shell, capsys: pytest.CaptureFixture[str]
) -> None:
    from tokenhot_jupyter import TaskTimeoutError

    result = shell.run("%%video --wait --timeout 0.2 -o slow\nA slow dog")  # the clock stands
    job = shell.ip.user_ns["slow"]
    assert isinstance(result.error_in_exec, TaskTimeoutError) and job.phase == "polling"
    message = str(result.error_in_exec)
    assert "background" in message and f"%tokenhot attach {job.task_id}" in message
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err


def _interrupt_at_once(*args: Any, **kwargs: Any) -> bool:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "source",
    [
        "%%chat -m gpt-5.4-mini,claude-opus-4-6,gemini-2.5-flash\nCompare",
        "%%image -m gpt-image-2,dall-e-3\nA tree",
    ],
)
def test_an_interrupted_comparison_says_stopped(
    shell: Shell, source: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tokenhot_jupyter._notebook import _actions

    monkeypatch.setattr(_actions, "_drain", _interrupt_at_once)
    result = shell.run(source)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    final = shell.final()
    assert final["update"] and "running…" not in json.dumps(final["data"], ensure_ascii=False)
    assert _plain(final).count("stopped: interrupted") == len(source.split()[2].split(","))
    assert all(c["stopped"] == "interrupted" for c in _meta(final)["columns"])
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.strip()]
    assert lines == [f"KeyboardInterrupt: {source.split()[0]} was interrupted."]


def test_an_interrupted_chat_is_one_line(
    shell: Shell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tokenhot_jupyter._notebook import _display

    monkeypatch.setattr(_display.ChatView, "feed", _interrupt_at_once)
    result = shell.run("%%chat\nTell me a story")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "stopped: interrupted" in _plain(shell.final())
    out = capsys.readouterr()
    assert (out.out + out.err).strip() == "KeyboardInterrupt: %%chat was interrupted."


def test_an_undefined_variable_as_input_is_named_as_such(shell: Shell) -> None:
    result = shell.run("%%chat --image gradient\nWhat colours?")
    assert "No variable or file named 'gradient'" in str(result.error_in_exec)


# --- video tasks across folders and the task table -------------------------------------------


def _reload(shell: Shell) -> None:
    """A new kernel for the same user: a new session, the same journal."""
    shell.ip.run_line_magic("unload_ext", "tokenhot_jupyter")
    shell.ip.run_line_magic("load_ext", "tokenhot_jupyter")
    shell.session.config.video_poll_interval = 0.05
    assert shell.time is not None
    shell.session.poll_clock = shell.time.clock()


def test_a_video_made_in_another_folder_plays_from_this_notebook(
    shell: Shell, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell.ok("%%video -o job\nA cat on a roof")
    job = shell.ip.user_ns["job"]
    shell.sim.clock.advance(600)
    _wait_for(lambda: job.phase == "done")
    other = clean_env / "elsewhere" / "notebooks"
    other.mkdir(parents=True)
    monkeypatch.chdir(other)  # Notebook 7 opened a notebook in another folder
    _reload(shell)
    for source in ("%%video\nA cat on a roof", f"%tokenhot attach {job.task_id}"):
        shell.ok(source)
        card = shell.final()["data"]
        assert f'src="tokenhot_outputs/{job.task_id}.mp4"' in card["text/html"], source
        assert (other / "tokenhot_outputs" / f"{job.task_id}.mp4").exists()
    assert len([r for r in shell.sim.requests if r.method == "POST"]) == 1, "paid once"


def test_tasks_is_an_html_table_with_a_text_twin(shell: Shell) -> None:
    shell.ok("%%video\nA horse <b>galloping</b> for $5")
    task_id = shell.session.tasks().tracked()[-1].task_id
    shell.ok(f"%tokenhot cancel {task_id}")
    shell.ok("%tokenhot tasks")
    data = shell.final()["data"]
    assert "<table" in data["text/html"] and task_id in data["text/html"]
    assert "A horse &lt;b&gt;galloping&lt;/b&gt; for $5" in data["text/html"], "escaped prompt"
    row = next(line for line in _plain(shell.final()).splitlines() if line.startswith(task_id))
    assert row.split()[2] == "stopped" and "A horse <b>galloping</b>" in row
    assert "queued" not in _plain(shell.final())
