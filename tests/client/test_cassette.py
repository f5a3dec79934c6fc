"""Record/replay cassettes with httpx.MockTransport: matching, order, streams, errors, secrets.

A replaying client gets a transport that fails the test if it is ever called, so every
replay here proves that nothing reached the "network". Clocks and sleeps are fakes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import tokenhot_jupyter as th
from tokenhot_jupyter import _canonical, _cassette
from tokenhot_jupyter._cassette import Cassette
from tokenhot_jupyter.simulator.media import png

KEY = "sk-cassetteUNITkey0123456789abcdefXY"
GATEWAY = "https://gw.example"
PNG = png("a paper crane", 64, 64)
Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    """A fake monotonic clock that the fake server moves on."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Sleeps(list[float]):
    """A fake sleep that only notes what it was asked to wait."""

    async def __call__(self, seconds: float) -> None:
        self.append(round(seconds, 6))


class Server:
    """A MockTransport handler: answers from a function and counts the requests."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a replay reached the network: {request.method} {request.url}")


def _recorder(path: Path, answer: Handler, clock: Clock | None = None, **kw: Any) -> th.Client:
    cassette = Cassette(path, "record", clock=clock or Clock())
    return th.Client(
        KEY, GATEWAY, transport=httpx.MockTransport(Server(answer)), cassette=cassette,
        live_models=False, max_retries=0, **kw,
    )  # fmt: skip


def _player(
    path: Path, *, speed: float = 0, sleeps: Sleeps | None = None, mode: str = "replay",
    key: str | None = None, base: str = "https://elsewhere.example", answer: Handler = _never,
) -> th.Client:  # fmt: skip
    cassette = Cassette(path, mode, speed=speed, sleep=sleeps if sleeps is not None else Sleeps())
    return th.Client(
        key, base, transport=httpx.MockTransport(answer), cassette=cassette, live_models=False,
        max_retries=0, sleep=Sleeps(),
    )  # fmt: skip


def _chat_reply(text: str) -> httpx.Response:
    body = {"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}
    return httpx.Response(200, json=body, headers={"x-oneapi-request-id": "rid-1"})


def _echo(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return _chat_reply(f"{body['model']} says: {body['messages'][-1]['content']}")


def _files(path: Path) -> list[Path]:
    return [f for f in path.rglob("*") if f.is_file()]


# --- a session recorded, then replayed --------------------------------------------------------


def test_a_recorded_session_replays_with_no_network_and_no_key(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "files.vendor.example":  # a vendor file host, not the gateway
            return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
        if request.url.path == "/v1/images/generations":
            data = [{"url": "https://files.vendor.example/x.png?sig=abc"}]
            return httpx.Response(200, json={"data": data})
        return _echo(request)

    recorder = _recorder(tmp_path, answer)
    said = recorder.chat("Hello there", model="gpt-5.4").text
    image = recorder.image("a crane", model="gpt-image-2").images[0].data
    player = _player(tmp_path)  # no key, another base URL, a transport that must not be used
    assert player.chat("Hello there", model="gpt-5.4").text == said == "gpt-5.4 says: Hello there"
    assert player.image("a crane", model="gpt-image-2").images[0].data == image == PNG


def test_identical_requests_replay_in_recorded_order_then_the_last_repeats(tmp_path: Path) -> None:
    answers = iter(["one", "two", "three"])
    recorder = _recorder(tmp_path, lambda request: _chat_reply(next(answers)))
    assert [recorder.chat("again", model="gpt-5").text for _ in range(3)] == ["one", "two", "three"]
    player = _player(tmp_path)
    got = [player.chat("again", model="gpt-5").text for _ in range(4)]
    assert got == ["one", "two", "three", "three"]


def test_a_comparison_gets_each_model_its_own_answer(tmp_path: Path) -> None:
    models = ["gpt-5.4", "gpt-5.4-mini", "grok-4.1"]  # one wire, so only the model differs
    recorder = _recorder(tmp_path, _echo)
    recorded = {m: recorder.chat("Same question", model=m).text for m in models}
    player = _player(tmp_path)
    for model in reversed(models):  # another order than recorded
        assert player.chat("Same question", model=model).text == recorded[model]
    assert len(set(recorded.values())) == 3


# --- the canonical request --------------------------------------------------------------------


def _key(request: httpx.Request, gateway: str = GATEWAY) -> str:
    request.read()
    return _canonical.canonical(request, (gateway,), {}).key


def test_matching_ignores_key_order_volatile_fields_query_order_and_the_host() -> None:
    first = httpx.Request(
        "POST", f"{GATEWAY}/v1/chat/completions?b=1&a=2",
        json={"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}], "user": "u-1"},
    )  # fmt: skip
    second = httpx.Request(
        "POST", "http://127.0.0.1:8765/v1/chat/completions?a=2&b=1",
        json={"user": "u-2", "messages": [{"content": "hi", "role": "user"}], "model": "gpt-5"},
    )  # fmt: skip
    other = httpx.Request(
        "POST", f"{GATEWAY}/v1/chat/completions?a=2&b=1",
        json={"model": "gpt-5", "messages": [{"role": "user", "content": "hello"}]},
    )  # fmt: skip
    assert _key(first) == _key(second, "http://127.0.0.1:8765") != _key(other)
    assert "user" in _canonical.VOLATILE_FIELDS


def test_multipart_parts_match_by_content_hash_not_by_boundary() -> None:
    def upload(data: bytes) -> httpx.Request:
        files = {"file": ("clip.wav", data, "audio/wav")}
        return httpx.Request(
            "POST", f"{GATEWAY}/v1/audio/transcriptions", data={"model": "whisper-1"}, files=files
        )

    one, two = upload(b"RIFF....WAVEdata"), upload(b"RIFF....WAVEdata")
    assert one.headers["content-type"] != two.headers["content-type"]  # random boundaries
    assert _key(one) == _key(two) != _key(upload(b"RIFF....WAVEother"))
    blobs: dict[str, bytes] = {}
    body = _canonical.canonical(one, (GATEWAY,), blobs).body
    assert body["multipart"][0] == {"name": "model", "value": "whisper-1"}
    assert body["multipart"][1]["file"] == f"@@media:{next(iter(blobs))}@@"


# --- streams, timing and errors ---------------------------------------------------------------


class _Chunks(httpx.AsyncByteStream):
    """SSE chunks the fake server sends 0.1 s apart (on the fake clock), maybe breaking off."""

    def __init__(self, clock: Clock, chunks: list[bytes], error: Exception | None = None) -> None:
        self.clock, self.chunks, self.error = clock, chunks, error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.clock.now += 0.1
            yield chunk
        if self.error is not None:
            raise self.error


def _sse(*texts: str) -> list[bytes]:
    events = [{"choices": [{"delta": {"content": t}}]} for t in texts]
    return [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]


def _streaming(clock: Clock, error: Exception | None = None, cut: int = 99) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        clock.now += 0.3  # time to the first byte
        stream = _Chunks(clock, _sse("Once ", "upon ", "a time")[:cut], error)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    return answer


def test_streams_replay_chunk_by_chunk_with_recorded_pauses_scaled_by_speed(
    tmp_path: Path,
) -> None:
    clock = Clock()
    recorder = _recorder(tmp_path, _streaming(clock), clock)
    live = [c.text for c in recorder.chat_stream("A story", model="gpt-5") if not c.done]
    sleeps = Sleeps()
    player = _player(tmp_path, speed=2, sleeps=sleeps)
    replayed = [c.text for c in player.chat_stream("A story", model="gpt-5") if not c.done]
    assert replayed == live == ["Once ", "upon ", "a time"]
    assert sleeps == [0.15, 0.05, 0.05, 0.05, 0.05]  # first byte, then each chunk, at 2x
    fast = Sleeps()
    assert "".join(c.text for c in _player(tmp_path, speed=0, sleeps=fast).chat_stream(
        "A story", model="gpt-5")) == "Once upon a time"  # fmt: skip
    assert fast == []


def test_recorded_errors_replay_as_the_same_errors(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        if prompt == "limited":
            return httpx.Response(429, json={"error": {"message": "slow down", "code": ""}})
        raise httpx.ConnectError("connection refused", request=request)

    recorder = _recorder(tmp_path, answer)
    recorded: list[th.TokenhotError] = []
    for prompt in ("limited", "unreachable"):
        with pytest.raises(th.TokenhotError) as caught:
            recorder.chat(prompt, model="gpt-5")
        recorded.append(caught.value)
    player = _player(tmp_path, base=GATEWAY)
    for prompt, error in zip(("limited", "unreachable"), recorded, strict=True):
        with pytest.raises(type(error)) as again:
            player.chat(prompt, model="gpt-5")
        assert str(again.value) == str(error)
    assert isinstance(recorded[0], th.RateLimitError)
    assert isinstance(recorded[1], th.APIConnectionError)


def test_a_stream_that_broke_replays_its_chunks_then_the_same_break(tmp_path: Path) -> None:
    clock = Clock()
    broken = _streaming(clock, httpx.ReadError("peer went away"), cut=2)
    recorder = _recorder(tmp_path, broken, clock)

    def run(client: th.Client) -> tuple[list[str], str]:
        texts: list[str] = []
        with pytest.raises(th.APIConnectionError) as caught:
            texts.extend(c.text for c in client.chat_stream("A story", model="gpt-5"))
        return texts, str(caught.value)

    live = run(recorder)
    assert live == run(_player(tmp_path))
    assert live[0] == ["Once ", "upon "] and "broke after" in live[1]


# --- misses, auto mode, keys ------------------------------------------------------------------


def test_a_miss_in_replay_mode_sends_nothing_and_says_what_to_do_in_one_line(
    tmp_path: Path,
) -> None:
    _recorder(tmp_path / "class", _echo).chat("Recorded question", model="gpt-5")
    with pytest.raises(th.CassetteMissError) as caught:
        _player(tmp_path / "class").chat("Explain a monad in two sentences please", model="gpt-5.4")
    line = caught.value._render_traceback_()
    assert len(line) == 1 and "\n" not in line[0]
    wanted = ("POST /v1/chat/completions", "gpt-5.4", "'Explain a monad in two sentences",
              "class", "nothing was sent", "auto")  # fmt: skip
    for part in wanted:
        assert part in line[0], part


def test_auto_replays_what_is_recorded_and_records_the_rest(tmp_path: Path) -> None:
    _recorder(tmp_path, _echo).chat("old", model="gpt-5")
    server = Server(_echo)
    auto = _player(tmp_path, mode="auto", key=KEY, answer=server)
    assert auto.chat("old", model="gpt-5").text == "gpt-5 says: old"
    assert server.requests == []
    assert auto.chat("new", model="gpt-5").text == "gpt-5 says: new"
    assert (
        auto.chat("old", model="gpt-5").text == "gpt-5 says: old"
    )  # asked once more than recorded
    assert len(server.requests) == 2
    player = _player(tmp_path)
    assert [player.chat(p, model="gpt-5").text for p in ("new", "old", "old")] == [
        "gpt-5 says: new", "gpt-5 says: old", "gpt-5 says: old",
    ]  # fmt: skip


def test_auto_without_a_key_replays_but_refuses_a_miss_in_one_line(tmp_path: Path) -> None:
    _recorder(tmp_path, _echo).chat("old", model="gpt-5")
    auto = _player(tmp_path, mode="auto", base=GATEWAY)
    assert auto.chat("old", model="gpt-5").text == "gpt-5 says: old"
    with pytest.raises(th.CassetteMissError, match="no API key is set to record it"):
        auto.chat("new", model="gpt-5")


def test_recording_still_needs_a_key(tmp_path: Path) -> None:
    client = th.Client(None, GATEWAY, cassette=Cassette(tmp_path, "record"), live_models=False)
    with pytest.raises(th.ConfigurationError, match="No API key"):
        client.chat("hi", model="gpt-5")


# --- nothing secret; media kept apart ---------------------------------------------------------


def test_a_cassette_holds_no_key_and_only_allowlisted_headers(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        headers = {
            "set-cookie": f"session={KEY}; HttpOnly", "openai-organization": "org-secret",
            "openai-project": "proj_secret", "authorization": f"Bearer {KEY}",
            "x-ratelimit-remaining-requests": "99", "x-oneapi-request-id": "rid-7",
            "retry-after": "1", "x-new-api-other-ratios": "{}",
        }  # fmt: skip
        body = {"choices": [{"message": {"content": f"your key ends in {KEY[-8:]}, {KEY}"}}]}
        return httpx.Response(200, json=body, headers=headers)

    _recorder(tmp_path, answer).chat(f"is {KEY} my key?", model="gpt-5")
    for file in _files(tmp_path):
        data = file.read_bytes()
        assert KEY.encode() not in data and KEY[-8:].encode() not in data, file
    line = json.loads((tmp_path / "cassette.jsonl").read_text().splitlines()[1])
    assert set(line["response"]["headers"]) == {
        "content-type", "x-ratelimit-remaining-requests", "x-oneapi-request-id", "retry-after",
    }  # fmt: skip
    assert "headers" not in line["request"]


def test_media_is_stored_once_per_hash_and_base64_leaves_the_json(tmp_path: Path) -> None:
    b64 = base64.b64encode(PNG).decode()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/images/generations":
            return httpx.Response(200, json={"data": [{"b64_json": b64}]})
        return _chat_reply(f"Here: ![image](data:image/png;base64,{b64})")

    recorder = _recorder(tmp_path, answer)
    for prompt in ("a crane", "another crane"):
        assert recorder.image(prompt, model="gpt-image-2").images[0].data == PNG
    looked = recorder.chat("Describe it", model="gpt-5.4", images=[PNG])
    assert looked.images[0].data == PNG
    assert [f.name for f in (tmp_path / "media").iterdir()] == [_canonical.media_name(PNG)]
    index = (tmp_path / "cassette.jsonl").read_text()
    assert b64[:100] not in index and index.count("@@media:") == 4  # 2 replies, 1 request, 1 reply
    player = _player(tmp_path)
    assert player.chat("Describe it", model="gpt-5.4", images=[PNG]).images[0].data == PNG


# --- broken cassettes: one clear line each ----------------------------------------------------


def _one_line(path: Path, match: str) -> None:
    with pytest.raises(th.CassetteFormatError) as caught:
        Cassette(path, "replay")
    line = caught.value._render_traceback_()
    assert len(line) == 1 and "\n" not in line[0] and match in line[0], line


def test_missing_corrupt_older_and_newer_cassettes_each_give_one_clear_line(tmp_path: Path) -> None:
    _one_line(tmp_path / "nowhere", "No cassette at")
    _recorder(tmp_path / "ok", _echo).chat("hi", model="gpt-5")
    index = tmp_path / "ok" / "cassette.jsonl"
    head, line = index.read_text().splitlines()
    index.write_text(head + "\n" + line[:40] + "\n")  # a cut-off line
    _one_line(tmp_path / "ok", "is corrupt: line 2 of cassette.jsonl is not a valid exchange")
    index.write_text(json.dumps({"tokenhot_cassette": 0}) + "\n" + line + "\n")
    _one_line(tmp_path / "ok", "in an older format (0) than this tokenhot-jupyter reads (1)")
    index.write_text(json.dumps({"tokenhot_cassette": 2}) + "\n" + line + "\n")
    _one_line(tmp_path / "ok", "pip install -U tokenhot-jupyter")
    index.write_text(line + "\n")
    _one_line(tmp_path / "ok", "has no format version")
    broken = json.loads(line)
    broken["response"]["json"], broken["response"]["chunks"] = None, [["soon", 7]]
    index.write_text(head + "\n" + json.dumps(broken) + "\n")
    _one_line(tmp_path / "ok", "line 2 of cassette.jsonl is not a valid exchange")


def test_a_missing_or_edited_media_file_is_named(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, lambda r: httpx.Response(200, json={"data": [
        {"b64_json": base64.b64encode(PNG).decode()}]}))  # fmt: skip
    recorder.image("a crane", model="gpt-image-2")
    (media,) = (tmp_path / "media").iterdir()
    media.write_bytes(PNG + b"changed")
    with pytest.raises(th.CassetteFormatError, match=f"media/{media.name} was changed"):
        _player(tmp_path).image("a crane", model="gpt-image-2")
    media.unlink()
    _one_line(tmp_path, f"needs media/{media.name}, which is missing")


# --- settings ---------------------------------------------------------------------------------


def test_the_environment_chooses_the_cassette_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = httpx.MockTransport(_echo)
    monkeypatch.setenv("TOKENHOT_CASSETTE", str(tmp_path / "env"))
    monkeypatch.setenv("TOKENHOT_CASSETTE_MODE", "record")
    client = th.Client(KEY, GATEWAY, transport=transport, live_models=False)
    assert client.cassette is not None and client.cassette.mode == "record"
    client.chat("from the environment", model="gpt-5")
    assert th.Client(KEY, GATEWAY, live_models=False).cassette is client.cassette  # shared
    assert th.Client(KEY, GATEWAY, cassette=False).cassette is None
    monkeypatch.setenv("TOKENHOT_CASSETTE_MODE", "replay")
    monkeypatch.setenv("TOKENHOT_CASSETTE_SPEED", "0")
    player = th.Client(None, GATEWAY, transport=httpx.MockTransport(_never), live_models=False)
    assert player.chat("from the environment", model="gpt-5").text.endswith("environment")
    monkeypatch.setenv("TOKENHOT_CASSETTE_MODE", "playback")
    with pytest.raises(th.ConfigurationError, match="TOKENHOT_CASSETTE_MODE must be record"):
        th.Client(KEY, GATEWAY)


def test_bad_modes_and_speeds_are_refused() -> None:
    with pytest.raises(th.InvalidInputError, match="cassette_mode must be record, replay or auto"):
        th.Client(KEY, GATEWAY, cassette="x", cassette_mode="rewind")
    for speed in (-1, float("nan"), "fast"):
        with pytest.raises(th.InvalidInputError, match="0 or more"):
            Cassette("x", "replay", speed=speed)  # type: ignore[arg-type]


# --- video on a fast clock; which outputs were replayed ---------------------------------------


def _video_server() -> Handler:
    statuses = iter(["NOT_START", "IN_PROGRESS", "SUCCESS"])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"id": "task_abc", "status": "queued"})
        if request.url.path.endswith(".mp4"):
            return httpx.Response(200, content=b"\0\0\0\x18ftypmp42", headers={
                "content-type": "video/mp4"})  # fmt: skip
        status = next(statuses)
        data = {"task_id": "task_abc", "status": status, "progress": "50%"}
        if status == "SUCCESS":
            data["result_url"] = "https://cdn.vendor.example/v.mp4"
        return httpx.Response(
            200, json={"code": "success", "data": data}, headers={"openai-poll-after-ms": "9000"}
        )

    return answer


def test_video_tasks_replay_their_statuses_on_a_fast_clock(tmp_path: Path) -> None:
    sleeps = Sleeps()
    recorder = _recorder(tmp_path, _video_server(), sleep=sleeps)
    task = recorder.video("a cat", model="doubao-seedance-2.0")
    done = recorder.wait_video(task.id)
    video = recorder.download_video(done)
    assert sleeps == [9.0, 9.0]  # the live server's own hint
    player = _player(tmp_path, speed=4)
    replayed = player.video("a cat", model="doubao-seedance-2.0")
    assert replayed.poll_after == 0.125  # a short hint, so the first poll comes soon too
    poll_sleeps = Sleeps()
    player.aio._conn.sleep = poll_sleeps
    again = player.wait_video(replayed.id)
    assert poll_sleeps == [0.125, 0.125] and again.url == done.url
    assert player.download_video(again) == video


def test_watching_notes_replayed_calls_only(tmp_path: Path) -> None:
    _recorder(tmp_path, _echo).chat("hi", model="gpt-5")
    with _cassette.watching() as seen:
        th.Client(KEY, GATEWAY, transport=httpx.MockTransport(_echo), live_models=False).chat(
            "live", model="gpt-5"
        )
    assert seen.cassette is None
    with _cassette.watching() as seen:
        _player(tmp_path).chat("hi", model="gpt-5")
        assert _cassette.provenance() == {"replayed": True, "cassette": tmp_path.name}
    assert seen.cassette == tmp_path.name and _cassette.provenance() == {}


def test_recording_again_starts_afresh_and_prune_drops_unused_media(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["prompt"]
        picture = PNG if prompt == "first" else png("second", 32, 32)
        return httpx.Response(
            200, json={"data": [{"b64_json": base64.b64encode(picture).decode()}]}
        )

    _recorder(tmp_path, answer).image("first", model="gpt-image-2")
    again = _recorder(tmp_path, answer)
    again.image("second", model="gpt-image-2")
    assert again.cassette is not None and again.cassette.prune() == 1
    (kept,) = (tmp_path / "media").iterdir()
    assert kept.name == _canonical.media_name(png("second", 32, 32))
    with pytest.raises(th.CassetteMissError):
        _player(tmp_path).image("first", model="gpt-image-2")


def test_an_unwritable_cassette_still_hands_on_the_paid_answer(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, _echo)
    (tmp_path / "media").write_text("a file where the media folder belongs")
    assert recorder.chat("hi", model="gpt-5").text == "gpt-5 says: hi"
    assert recorder.cassette is not None
    assert "could not write to" in recorder.cassette.status()
