"""The official ``openai`` SDK against the simulator (``base_url = <sim>/v1``), plus the CLI.

If the SDK can drive a route, so can any OpenAI-compatible client a notebook user tries.
Video polls advance the simulator's clock instead of sleeping.
"""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tokenhot_jupyter.simulator import Simulator
from tokenhot_jupyter.simulator.media import mp4_info, png, speech_wav

PNG = png("a blue circle", 32, 32)
SPEECH = "Hello there. How are you?"
SORA_DEPRECATED = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


@pytest.fixture
def sim(tokenhot_simulator: Simulator) -> Simulator:
    return tokenhot_simulator


@pytest.fixture
def client(sim: Simulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=sim.api_key, base_url=sim.base_url + "/v1", max_retries=0) as c:
        yield c


def test_models_list(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"gpt-5", "claude-opus-4-6", "sora-2", "whisper-1"} <= ids
    assert client.models.retrieve("sora-2").id == "sora-2"


def test_chat(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "Say hi"}]
    )
    assert reply.choices[0].message.content
    assert reply.choices[0].message.content.startswith("Simulated answer from gpt-5 to: Say hi")
    assert reply.usage is not None and reply.usage.total_tokens > 0


def test_chat_stream_with_the_default_usage_chunk(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(
        model="claude-opus-4-6", messages=[{"role": "user", "content": "Say hi"}]
    )
    chunks = list(
        client.chat.completions.create(
            model="claude-opus-4-6", messages=[{"role": "user", "content": "Say hi"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage, "on by default"


def test_chat_stream_include_usage_switch(client: openai.OpenAI) -> None:
    def last(include: bool) -> openai.types.chat.ChatCompletionChunk:
        stream = client.chat.completions.create(
            model="gpt-5.4-mini",
            messages=[{"role": "user", "content": "Say hi"}],
            stream=True,
            stream_options={"include_usage": include},
        )
        return list(stream)[-1]

    assert last(True).usage is not None
    off = last(False)
    assert off.usage is None and off.choices[0].finish_reason == "stop"


def test_responses_plain_and_stream(client: openai.OpenAI) -> None:
    plain = client.responses.create(model="gpt-5.4", input="What is 3+4?")
    assert plain.status == "completed" and plain.output_text.startswith("Simulated answer")
    events = list(client.responses.create(model="gpt-5.4", input="What is 3+4?", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == plain.output_text
    assert events[-1].response.usage == plain.usage


def test_images_generate_b64_and_url(client: openai.OpenAI) -> None:
    b64 = client.images.generate(model="gpt-image-1.5", prompt="a crane", size="1024x1024")
    assert b64.data and b64.data[0].b64_json
    assert base64.b64decode(b64.data[0].b64_json).startswith(b"\x89PNG")
    linked = client.images.generate(model="dall-e-3", prompt="a crane", response_format="url")
    assert linked.data and linked.data[0].url and linked.data[0].revised_prompt
    with httpx.Client() as anonymous:
        assert anonymous.get(linked.data[0].url).content.startswith(b"\x89PNG")


def test_images_edit_multipart(client: openai.OpenAI, sim: Simulator) -> None:
    edited = client.images.edit(
        model="gpt-image-2",
        image=("in.png", PNG, "image/png"),
        prompt="make it red",
        size="256x256",
    )
    assert edited.data and edited.data[0].url
    assert [f.name for f in sim.requests[-1].files] == ["image"]


def test_speech_wav(client: openai.OpenAI) -> None:
    audio = client.audio.speech.create(
        model="tts-1", voice="alloy", input=SPEECH, response_format="wav"
    )
    data = audio.read()
    assert data[:4] == b"RIFF" and audio.response.headers["content-type"] == "audio/wav"


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # translations.create
def test_transcriptions_in_every_format_and_translation(client: openai.OpenAI) -> None:
    audio = ("hello.wav", speech_wav(SPEECH), "audio/wav")
    transcribe = client.audio.transcriptions.create
    assert transcribe(model="whisper-1", file=audio).text == SPEECH
    text = transcribe(model="whisper-1", file=audio, response_format="text")
    assert str(text).strip() == SPEECH
    verbose = transcribe(model="whisper-1", file=audio, response_format="verbose_json")
    assert verbose.text == SPEECH and verbose.segments and verbose.duration > 0
    srt = transcribe(model="whisper-1", file=audio, response_format="srt")
    assert "-->" in str(srt)
    translated = client.audio.translations.create(model="whisper-1", file=audio)
    assert translated.text == SPEECH


@SORA_DEPRECATED
def test_sora_video_create_poll_download(client: openai.OpenAI, sim: Simulator) -> None:
    job = client.videos.create(model="sora-2", prompt="a cat surfing", seconds="4", size="720x1280")
    assert re.fullmatch(r"task_[A-Za-z0-9]{32}", job.id) and job.status == "queued"
    statuses = []
    for _ in range(20):
        job = client.videos.retrieve(job.id)
        statuses.append(job.status)
        if job.status == "completed":
            break
        sim.clock.advance(15)
    assert statuses[0] == "queued" and "in_progress" in statuses and job.status == "completed"
    content = client.videos.download_content(job.id)
    info = mp4_info(content.read())
    assert info["codec"] == "avc1" and info["width"] < info["height"]


@SORA_DEPRECATED
def test_sora_errors_reach_the_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.videos.create(model="sora-2", prompt="x", size="1792x1024")
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_size" and body["data"] is None


def test_gateway_errors_map_to_sdk_error_classes(sim: Simulator) -> None:
    say: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x"}]
    revoked = openai.OpenAI(api_key="sk-revoked1", base_url=sim.base_url + "/v1", max_retries=0)
    with revoked as c, pytest.raises(openai.AuthenticationError, match="Invalid token"):
        c.chat.completions.create(model="gpt-5", messages=say)
    with openai.OpenAI(api_key=sim.api_key, base_url=sim.base_url + "/v1", max_retries=0) as c:
        with pytest.raises(openai.InternalServerError, match="field messages is required"):
            c.chat.completions.create(model="gpt-5", messages=[])
        sim.faults.add("429:retry-after=1", path="/v1/chat/completions")
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model="gpt-5", messages=say)
        with pytest.raises(openai.InternalServerError, match="No available channel for model"):
            c.chat.completions.create(model="gpt-9", messages=say)


def test_cli_prints_its_url_first_and_stops_cleanly() -> None:
    for stop in (signal.SIGTERM, signal.SIGINT):
        command = [sys.executable, "-m", "tokenhot_jupyter.simulator", "--port", "0"]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            try:
                assert proc.stdout is not None and proc.stderr is not None
                base = proc.stdout.readline().strip()
                assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
                with openai.OpenAI(base_url=base + "/v1", api_key="sk-demo1", max_retries=0) as c:
                    assert c.models.list().data
                proc.send_signal(stop)
                assert proc.wait(timeout=60) == 0  # a bound for a loaded machine
                assert "sk-" in proc.stderr.read()
            finally:
                if proc.poll() is None:
                    proc.kill()
