"""Our client against the gateway simulator over loopback: every model in the catalog.

Video waits advance the simulator's clock instead of sleeping, so no test waits on
wall-clock video timings.
"""

from __future__ import annotations

import asyncio
import io
import signal
import sys
import threading
import time
import wave
from collections.abc import Callable
from typing import Any

import pytest

import tokenhot_jupyter as th
from tokenhot_jupyter._catalog import MODELS
from tokenhot_jupyter.simulator.media import mp4_info, png

CHAT = [m.id for m in MODELS if m.kind == "chat"]
IMAGE = [m.id for m in MODELS if m.kind == "image"]
VIDEO = [m.id for m in MODELS if m.kind == "video"]
SPEECH = [m.id for m in MODELS if m.kind == "audio" and m.family != "whisper"]
PNG = png("a red square", 64, 64)


@pytest.fixture
def sim(tokenhot_simulator: Any) -> Any:
    tokenhot_simulator.token_delay = 0
    return tokenhot_simulator


@pytest.fixture
def client(sim: Any) -> th.Client:
    async def sleep(seconds: float) -> None:
        sim.clock.advance(seconds)

    return th.Client(sim.api_key, sim.base_url, max_retries=1, backoff=0.01, sleep=sleep)


@pytest.mark.parametrize("model", CHAT)
def test_chat_every_model_plain_and_streamed(client: th.Client, model: str) -> None:
    whole = client.chat("Name three primes.", model=model, max_tokens=200)
    assert whole.text and whole.model == model
    assert whole.usage is not None and whole.usage.output_tokens > 0
    assert whole.latency > 0
    chunks = list(client.chat_stream("Name three primes.", model=model, max_tokens=200))
    assert len(chunks) > 2, "a streamed answer arrives in pieces"
    final = chunks[-1].result
    assert final is not None and final.usage is not None
    assert "".join(c.text for c in chunks[:-1]) == final.text == whole.text


@pytest.mark.parametrize("model", ["gpt-5.4", "grok-4.1"])
def test_responses_api(client: th.Client, model: str) -> None:
    result = client.chat("What is 3+4?", model=model, api="responses")
    assert result.text and result.usage is not None
    streamed = list(client.chat_stream("What is 3+4?", model=model, api="responses"))
    assert streamed[-1].result is not None and streamed[-1].result.text == result.text


@pytest.mark.parametrize("model", ["gpt-5", "claude-opus-4-6", "gemini-2.5-flash"])
def test_vision_input_reaches_every_family(client: th.Client, model: str, tmp_path: Any) -> None:
    path = tmp_path / "square.png"
    path.write_bytes(PNG)
    result = client.chat("What is in this picture?", model=model, images=[path, PNG])
    assert "2 image" in result.text


def test_system_prompt_and_history(client: th.Client, sim: Any) -> None:
    messages = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    client.chat(messages, model="claude-sonnet-4-5-20250929", system="Be brief.")
    sent = sim.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.json["system"] == "Be brief." and len(sent.json["messages"]) == 3


def test_reasoning_is_read_apart_from_the_answer(client: th.Client) -> None:
    result = client.chat("Think first: 17*23?", model="gpt-5", reasoning="high")
    assert result.reasoning and result.text and result.reasoning not in result.text


@pytest.mark.parametrize("model", IMAGE)
def test_image_every_model_returns_bytes(client: th.Client, model: str) -> None:
    kwargs: dict[str, Any] = {}
    if model == "qwen-image-edit-max-2026-01-16":
        kwargs["images"] = [PNG]
    result = client.image("a paper crane at dawn", model=model, **kwargs)
    assert len(result) >= 1
    image = result[0]
    assert image.mime in ("image/png", "image/jpeg") and len(image.data) > 100
    assert image.data[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0"[:4])


@pytest.mark.parametrize(
    "model", ["gpt-image-2", "doubao-seedream-4-0-250828", "gemini-2.5-flash-image", "wan2.6-image"]
)
def test_image_edits(client: th.Client, model: str, sim: Any) -> None:
    result = client.image("make it blue", model=model, images=[PNG])
    assert result[0].data.startswith(b"\x89PNG")
    sent = sim.requests[-2] if sim.requests[-1].method == "GET" else sim.requests[-1]
    if model == "gpt-image-2":
        assert sent.path == "/v1/images/edits" and sent.files
    if model.startswith("doubao"):
        assert sent.json["image"].startswith("data:image/png;base64,")


def test_gpt_image_mask_and_n(client: th.Client, sim: Any) -> None:
    result = client.image("two cranes", model="gpt-image-1.5", n=2)
    assert len(result) == 2
    client.image("fill", model="gpt-image-1.5", images=[PNG], mask=PNG)
    names = [f[0] for f in sim.requests[-1].files]
    assert "mask" in names


def test_wan_shape_two_is_parsed(client: th.Client, sim: Any) -> None:
    sim.wan_shape2 = True
    result = client.image("a poster of a cat", model="wan2.6-image")
    assert result[0].data.startswith(b"\x89PNG")


def _video_inputs(model: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if model in ("MiniMax-Hailuo-2.3-Fast", "happyhorse-1.0-i2v", "happyhorse-1.0-r2v"):
        kwargs["image"] = PNG
    if model.endswith(("V2V", "video-edit")):
        kwargs["video"] = "https://example.com/ref.mp4"
    return kwargs


@pytest.mark.parametrize("model", VIDEO)
def test_video_every_model_to_mp4_bytes(client: th.Client, model: str) -> None:
    task = client.video("a cat surfing at sunset", model=model, **_video_inputs(model))
    assert task.id.startswith("task_") and len(task.id) == 37
    assert task.status == "queued"
    seen: list[str] = []
    done = client.wait_video(task.id, on_update=lambda t: seen.append(t.status), poll_interval=15)
    assert done.status == "succeeded" and done.progress == 100
    assert seen[0] == "queued" and seen[-1] == "succeeded"
    data = client.download_video(done)
    info = mp4_info(data)
    assert info["codec"] == "avc1" and info["frames"] >= 1


def test_video_failure_raises_with_reason(client: th.Client, sim: Any) -> None:
    sim.faults.add("task-fail", path="/v1/video/generations", method="POST")
    task = client.video("a cat", model="doubao-seedance-2.0")
    with pytest.raises(th.TaskFailedError) as info:
        client.wait_video(task.id, poll_interval=15)
    assert task.id in str(info.value) and "refunded" in str(info.value)


def test_video_deadline_keeps_the_task(client: th.Client, sim: Any) -> None:
    sim.faults.add("task-stuck", path="/v1/video/generations", method="POST")
    task = client.video("a cat", model="doubao-seedance-2.0")
    with pytest.raises(th.TaskTimeoutError) as info:
        client.wait_video(task.id, timeout=600, poll_interval=15)
    assert info.value.task_id == task.id and "attach" in str(info.value)


def test_video_expired_url_is_a_clear_error(client: th.Client, sim: Any) -> None:
    sim.faults.add("expire-url", path="/v1/video/generations", method="POST")
    task = client.video("a cat", model="doubao-seedance-2.0")
    done = client.wait_video(task.id, poll_interval=15)
    with pytest.raises(th.ResultUnavailableError, match="expire"):
        client.download_video(done)


def test_seedance_body_is_what_the_adaptor_reads(client: th.Client, sim: Any) -> None:
    client.video(
        "a cat", model="doubao-seedance-2.0", duration=5, resolution="720p", ratio="16:9", image=PNG
    )
    body = sim.requests[-1].json
    assert body["seconds"] == "5" and "duration" not in body
    assert body["metadata"]["resolution"] == "720p" and body["metadata"]["ratio"] == "16:9"
    assert body["metadata"]["content"][0]["role"] == "first_frame"


def test_happyhorse_falls_back_once_when_the_documented_body_is_refused(
    client: th.Client, sim: Any
) -> None:
    sim.happyhorse_documented_body = False
    task = client.video("the horse gallops", model="happyhorse-1.0-t2v", duration=5)
    posts = [r for r in sim.requests if r.method == "POST"]
    assert (
        len(posts) == 2
        and "input" in posts[0].json
        and posts[1].json["prompt"] == "the horse gallops"
    )
    assert task.id.startswith("task_")


def _posted(sim: Any) -> Any:
    """The last POST the simulator saw (image URLs are downloaded after it)."""
    return [r for r in sim.requests if r.method == "POST"][-1]


def test_opus_takes_the_effort_in_its_name_and_sonnet_a_thinking_budget(
    client: th.Client, sim: Any
) -> None:
    client.chat("hi", model="claude-opus-4-6", reasoning="high")
    body = _posted(sim).json
    assert body["model"] == "claude-opus-4-6-high" and "thinking" not in body
    client.chat("hi", model="claude-sonnet-4-5-20250929", reasoning="high", temperature=0.5)
    body = _posted(sim).json
    assert body["model"] == "claude-sonnet-4-5-20250929"
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 16000}
    assert body["max_tokens"] == 18048 and "temperature" not in body


def test_dall_e_asks_for_base64_and_gpt_image_does_not(client: th.Client, sim: Any) -> None:
    client.image("a crane", model="dall-e-3")
    assert _posted(sim).json["response_format"] == "b64_json"
    client.image("a crane", model="gpt-image-1.5")
    assert "response_format" not in _posted(sim).json


def test_wan_interleaves_when_generating_and_qwen_edits_on_the_edits_route(
    client: th.Client, sim: Any
) -> None:
    client.image("a poster", model="wan2.6-image", n=2)
    params = _posted(sim).json["parameters"]
    assert params["enable_interleave"] is True and params["max_images"] == 2 and "n" not in params
    client.image("a poster", model="wan2.6-image", images=PNG)
    sent = _posted(sim)
    assert sent.path == "/v1/images/generations"
    assert sent.json["parameters"]["enable_interleave"] is False
    assert sent.json["parameters"]["n"] == 1
    client.image("a poster", model="qwen-image-max")
    assert "enable_interleave" not in _posted(sim).json["parameters"]
    client.image("bluer", model="qwen-image-edit-max-2026-01-16", images=PNG)
    assert _posted(sim).path == "/v1/images/edits"


@pytest.mark.parametrize(
    ("model", "media", "params"),
    [
        ("happyhorse-1.0-t2v", [], {"duration", "ratio"}),
        ("happyhorse-1.0-i2v", ["first_frame"], {"duration"}),
        ("happyhorse-1.0-r2v", ["reference_image"], {"duration", "ratio"}),
        ("happyhorse-1.0-video-edit", ["video", "reference_image"], set()),
    ],
)
def test_happyhorse_body_per_variant(
    client: th.Client, sim: Any, model: str, media: list[str], params: set[str]
) -> None:
    inputs: dict[str, Any] = {"image": PNG} if media else {}
    if "video" in media:
        inputs["video"] = "https://example.com/ref.mp4"
    client.video("a horse", model=model, duration=5, resolution="720P", ratio="16:9", **inputs)
    body = _posted(sim).json
    assert [m["type"] for m in body["input"].get("media", [])] == media
    assert set(body["parameters"]) - {"resolution", "watermark"} == params


def test_required_video_inputs_are_checked_before_paying(client: th.Client, sim: Any) -> None:
    before = len(sim.requests)
    with pytest.raises(th.InvalidInputError, match="first"):
        client.video("x", model="MiniMax-Hailuo-2.3-Fast")
    with pytest.raises(th.InvalidInputError, match="prompt"):
        client.video("  ", model="sora-2")
    assert len(sim.requests) == before


@pytest.mark.parametrize("model", SPEECH)
def test_speech_every_model_is_wav_that_transcribes_back(client: th.Client, model: str) -> None:
    text = "Welcome back to the lab."
    wav = client.speak(text, model=model)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getsampwidth() == 2 and w.getnframes() > 0
    assert client.transcribe(wav).text == text


def test_transcription_formats_and_translation(client: th.Client) -> None:
    wav = client.speak(
        "Hello there. How are you?", model="gemini-2.5-flash-preview-tts", voice="Puck"
    )
    verbose = client.transcribe(wav, response_format="verbose_json")
    assert verbose.text == "Hello there. How are you?" and verbose.segments
    srt = client.transcribe(wav, response_format="srt")
    assert "-->" in srt.text
    assert client.transcribe(wav, translate=True).text


# --- the bad-input table ------------------------------------------------------------------


def test_unknown_model(client: th.Client) -> None:
    with pytest.raises(th.UnknownModelError, match=r"Did you mean 'gpt-5\.4'"):
        client.chat("hi", model="gpt-5.44")


def test_bad_size(client: th.Client) -> None:
    with pytest.raises(th.InvalidInputError, match="choose one of"):
        client.image("x", model="dall-e-3", size="100x100")
    with pytest.raises(th.InvalidInputError, match="plain x"):
        client.image("x", model="dall-e-3", size="1024×1024")


def test_missing_key(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENHOT_API_KEY", raising=False)
    with pytest.raises(th.ConfigurationError, match="No API key"):
        th.Client(base_url=sim.base_url).chat("hi", model="gpt-5")


def test_unreachable_host() -> None:
    client = th.Client("sk-abc", "http://127.0.0.1:9", max_retries=0)
    with pytest.raises(th.APIConnectionError, match="Could not reach the gateway"):
        client.chat("hi", model="gpt-5")


def test_html_page_instead_of_json(client: th.Client, sim: Any) -> None:
    sim.faults.add("html", path="/v1/chat/completions", method="POST")
    with pytest.raises(th.NotAnAPIResponseError, match="HTML"):
        client.chat("hi", model="gpt-5")


@pytest.mark.parametrize(
    ("key_or_fault", "cls"),
    [
        ("sk-revoked1", th.AuthenticationError),
        ("sk-broke1", th.InsufficientQuotaError),
        ("429", th.RateLimitError),
        ("500", th.ServerError),
        ("503", th.ServerError),
        ("503:model", th.ModelUnavailableError),
    ],
)
def test_gateway_errors_are_one_clear_error_each(sim: Any, key_or_fault: str, cls: type) -> None:
    key = sim.api_key
    if key_or_fault.startswith("sk-"):
        key = key_or_fault
    else:
        sim.faults.add(key_or_fault, path="/v1/chat/completions", method="POST", times=10)
    client = th.Client(key, sim.base_url, max_retries=0)
    with pytest.raises(cls) as info:
        client.chat("hi", model="gpt-5")
    text = str(info.value)
    assert "\n" not in text and len(text) < 400 and "gpt-5" in text
    assert key not in text


def test_429_is_retried_and_then_succeeds(client: th.Client, sim: Any) -> None:
    sim.faults.add("429", path="/v1/chat/completions", method="POST", times=1)
    assert client.chat("hi", model="gpt-5").text
    posts = [r for r in sim.requests if r.path == "/v1/chat/completions"]
    assert len(posts) == 2


def test_models_merges_the_live_list(client: th.Client) -> None:
    models = client.models()
    ids = {m.id for m in models}
    assert {"gpt-5", "sora-2", "whisper-1"} <= ids
    assert all(m.live for m in models if m.id == "gpt-5")
    assert {m.kind for m in client.models("video")} == {"video"}


def test_wait_follows_the_servers_poll_hint(sim: Any) -> None:
    import asyncio

    sim.clock.speed = 500  # a gateway refresh (15 simulated s) every 30 real ms
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(seconds)

    client = th.Client(sim.api_key, sim.base_url, sleep=sleep)
    task = client.video("a cat", model="doubao-seedance-2.0")
    assert client.wait_video(task.id).status == "succeeded"
    assert len(sleeps) >= 2 and all(s == pytest.approx(0.03) for s in sleeps)


@pytest.mark.parametrize("model", ["gpt-5", "claude-opus-4-6", "gemini-2.5-flash", "gpt-5.4"])
def test_vision_accepts_pil_images_and_urls(client: th.Client, model: str) -> None:
    from PIL import Image as PILImage

    url = client.image("a square", model="gpt-image-2").images[0].url  # served by the sim
    assert url and url.startswith("http")
    picture = PILImage.new("RGB", (32, 32), (200, 30, 30))
    api = "responses" if model == "gpt-5.4" else None
    result = client.chat("Describe both.", model=model, images=[picture, url], api=api)
    assert "2 image" in result.text


def test_gemini_image_through_chat_markdown_data_uris(sim: Any) -> None:
    from tokenhot_jupyter._catalog import Catalog

    client = th.Client(sim.api_key, sim.base_url, live_models=False)
    # What the live list says when an operator serves the model on chat only (spec §4.5).
    live = [{"id": "gemini-2.5-flash-image", "supported_endpoint_types": ["openai"]}]
    client.aio._catalog = Catalog().merge_live(live)
    result = client.image("a lighthouse", model="gemini-2.5-flash-image", size="16:9")
    assert result[0].data.startswith(b"\x89PNG") and "data:" not in result.text
    sent = sim.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["extra_body"]["google"]["image_config"] == {"aspect_ratio": "16:9"}


def _ctrl_c_when(*ready: Callable[[], bool]) -> threading.Thread:
    """Real SIGINTs to the main thread, as Ctrl-C (or a kernel interrupt) sends them: each
    one once ``ready`` holds and the main thread is blocked waiting (never on a timer, which
    a loaded machine can outrun; never a stray one into pytest)."""

    def main_thread_waits() -> bool:
        frame = sys._current_frames().get(threading.main_thread().ident or 0)
        return frame is not None and frame.f_code.co_name == "wait"  # a Condition/lock wait

    def send() -> None:
        for check in ready:
            deadline = time.monotonic() + 60
            while not (check() and main_thread_waits()):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.005)
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _held(sim: Any, path: str) -> Callable[[], bool]:
    """True while the simulator holds a request to ``path`` (received, not yet answered)."""
    return lambda: any(r.path == path and r.status is None for r in sim.requests)


class _Tee:
    """sys.stderr that also tells when ``text`` has been written."""

    def __init__(self, real: Any, text: str) -> None:
        self.real, self.text, self.seen = real, text, threading.Event()

    def write(self, data: str) -> int:
        if self.text in data:
            self.seen.set()
        return int(self.real.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_an_interrupt_during_video_create_waits_for_the_id(
    client: th.Client, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.faults.add("slow=3", path="/v1/video/generations", method="POST")
    sender = _ctrl_c_when(_held(sim, "/v1/video/generations"))  # while it is on the wire
    task = client.video("a cat", model="doubao-seedance-2.0")
    sender.join()
    assert task.id.startswith("task_") and len(sim.tasks()) == 1
    assert "waiting for its id" in capsys.readouterr().err


def test_a_second_interrupt_gives_up_with_maybe_created(
    client: th.Client, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.faults.add("slow=60", path="/v1/video/generations", method="POST")  # ends with the sim
    stderr = _Tee(sys.stderr, "waiting for its id")
    monkeypatch.setattr(sys, "stderr", stderr)
    sender = _ctrl_c_when(_held(sim, "/v1/video/generations"), stderr.seen.is_set)
    with pytest.raises(th.TaskMaybeCreatedError, match="may exist"):
        client.video("a cat", model="doubao-seedance-2.0")
    sender.join()


class _InterruptedAsItLands:
    """The video request's future, with a Ctrl-C landing as each of its first two waits ends.

    The race no real signal can be timed into: the id arrives in the same instant as the
    interrupt, so the future is done when the KeyboardInterrupt reaches the caller.
    """

    def __init__(self, future: Any, interrupts: int) -> None:
        self.future, self.interrupts = future, interrupts

    def result(self, timeout: float | None = None) -> Any:
        value = self.future.result(timeout)
        if self.interrupts:
            self.interrupts -= 1
            raise KeyboardInterrupt
        return value

    def cancel(self) -> bool:
        return bool(self.future.cancel())


def test_a_second_interrupt_as_the_id_lands_returns_the_task(
    client: th.Client, sim: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tokenhot_jupyter._runtime import runtime

    submit = runtime.submit
    monkeypatch.setattr(runtime, "submit", lambda coro: _InterruptedAsItLands(submit(coro), 2))
    task = client.video("a cat", model="doubao-seedance-2.0")
    assert task.id.startswith("task_") and [t["id"] for t in sim.tasks()] == [task.id]
    assert "waiting for its id" in capsys.readouterr().err


# --- streams that end before their end marker -------------------------------------------------

FAMILIES = [  # (model, api, the route the fault is aimed at)
    ("gpt-5", None, "/v1/chat/completions"),
    ("gpt-5.4", "responses", "/v1/responses"),
    ("claude-opus-4-6", None, "/v1/messages"),
    ("gemini-2.5-flash", None, "/v1beta/models/*"),
]


@pytest.mark.parametrize(("model", "api", "path"), FAMILIES)
def test_a_stream_without_its_end_marker_is_not_a_whole_answer(
    client: th.Client, sim: Any, model: str, api: str | None, path: str
) -> None:
    prompt = "Tell me about the sea in a few sentences."
    whole = client.chat(prompt, model=model, api=api, max_tokens=200).text
    sim.faults.add("end-early", path=path, method="POST")
    deltas: list[str] = []
    with pytest.raises(th.StreamIncompleteError, match="ended early") as info:
        for chunk in client.chat_stream(prompt, model=model, api=api, max_tokens=200):
            assert chunk.result is None, "a cut stream must not end in a result"
            deltas.append(chunk.text)
    partial = info.value.result
    assert partial.model == model and partial.text == "".join(deltas)
    assert partial.text and whole.startswith(partial.text)
    assert isinstance(info.value, th.APIConnectionError) and "\n" not in str(info.value)
    assert len([r for r in sim.requests if r.path.startswith(path.rstrip("*"))]) == 2  # not re-sent


@pytest.mark.parametrize(  # the families whose first two events carry text
    ("model", "path"), [("gpt-5", "/v1/chat/completions"), ("gemini-2.5-flash", "/v1beta/*")]
)
def test_a_stream_that_breaks_off_keeps_what_arrived(
    client: th.Client, sim: Any, model: str, path: str
) -> None:
    sim.faults.add("drop-mid-stream", path=path, method="POST")  # closes after two events
    deltas: list[str] = []
    with pytest.raises(th.StreamIncompleteError, match="broke after") as info:
        for chunk in client.chat_stream("Tell me about the sea.", model=model):
            deltas.append(chunk.text)
    assert info.value.result.text == "".join(deltas)


def test_a_stream_that_breaks_before_any_text_is_a_plain_connection_error(
    client: th.Client, sim: Any
) -> None:
    sim.faults.add("drop-mid-stream", path="/v1/messages", method="POST")  # no text in two events
    with pytest.raises(th.APIConnectionError, match="broke after") as info:
        list(client.chat_stream("Tell me about the sea.", model="claude-opus-4-6"))
    assert not isinstance(info.value, th.StreamIncompleteError)


def test_the_async_stream_ends_in_the_error_too(sim: Any) -> None:
    aclient = th.AsyncClient(sim.api_key, sim.base_url, max_retries=0)
    sim.faults.add("end-early", path="/v1/chat/completions", method="POST")
    got: list[str] = []

    async def read() -> None:
        async for chunk in aclient.chat_stream("Tell me about the sea.", model="gpt-5"):
            got.append(chunk.text)

    with pytest.raises(th.StreamIncompleteError):
        asyncio.run(read())
    assert got
