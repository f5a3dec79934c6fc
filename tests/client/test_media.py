"""Inputs are sniffed by their bytes and sized before they are read (`_media`)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

import tokenhot_jupyter as th
from tokenhot_jupyter import _media
from tokenhot_jupyter._media import describe, encode_png, load_media, pcm_to_wav, sniff_mime

KEY = "sk-mediaTESTkey0123456789abcdef"
PNG = encode_png(2, 2, bytes(12))
WAV = pcm_to_wav(bytes(480))
HTML = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head></html>"

SAMPLES: list[tuple[bytes, str]] = [
    (PNG, "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    (b"GIF89a\x01\x00\x01\x00", "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00", "image/bmp"),
    (b"II*\x00\x08\x00\x00\x00", "image/tiff"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00", "image/heic"),
    (b"\x00\x00\x00\x1cftypavif\x00\x00", "image/avif"),
    (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
    (b"\x00\x00\x00\x14ftypqt  \x20\x05", "video/quicktime"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "video/webm"),
    (WAV, "audio/wav"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x23", "audio/mpeg"),
    (b"\xff\xfb\x90\x64\x00", "audio/mpeg"),
    (b"\xff\xf1\x50\x80\x02", "audio/aac"),
    (b"OggS\x00\x02\x00\x00", "audio/ogg"),
    (b"fLaC\x00\x00\x00\x22", "audio/flac"),
    (b"\x00\x00\x00\x20ftypM4A \x00\x00", "audio/mp4"),
]


@pytest.mark.parametrize(("data", "mime"), SAMPLES)
def test_every_format_is_known_by_its_first_bytes(data: bytes, mime: str) -> None:
    assert sniff_mime(data) == mime


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"", "empty"),
        (b"just some notes\n", "text"),
        (HTML, "an HTML page"),
        (b'{"error": "not found"}', "JSON text"),
        ("caf\u00e9 ".encode() * 300, "text"),  # a character cut at the 1 KiB window is text
        (bytes(range(256)), "data of an unknown format"),
    ],
)
def test_what_an_unknown_input_is_said_plainly(data: bytes, what: str) -> None:
    assert describe(data) == what


@pytest.mark.parametrize(
    ("data", "what", "said"),
    [
        (b"hello, I am text", "image", "is text, not a PNG, JPEG, GIF, WebP"),
        (b"", "image", "is empty, not a PNG"),
        (HTML, "mask", "is an HTML page, not a PNG"),
        (PNG, "audio", "is a PNG image, not WAV, MP3"),
        (WAV, "video", "is a WAV audio file, not an MP4, MOV, WebM or AVI video"),
        (PNG, "video", "is a PNG image, not an MP4"),
    ],
)
def test_an_input_of_the_wrong_kind_is_one_clear_line(
    tmp_path: Path, data: bytes, what: str, said: str
) -> None:
    path = tmp_path / "input.png"
    path.write_bytes(data)
    for given in (path, str(path), data, io.BytesIO(data)):
        with pytest.raises(th.InvalidInputError, match=said) as info:
            load_media(given, what=what)
        assert "\n" not in str(info.value)
    with pytest.raises(th.InvalidInputError, match=f"The {what} file '.*input.png' is"):
        load_media(path, what=what)


@pytest.mark.parametrize(
    ("data", "what"), [(PNG, "image"), (WAV, "audio"), (SAMPLES[8][0], "video")]
)
def test_the_right_kind_passes_with_its_sniffed_type(data: bytes, what: str) -> None:
    media = load_media(data, what=what)
    assert media.data == data and media.mime == sniff_mime(data)


def test_an_mp4_or_webm_is_audio_enough_for_whisper() -> None:
    assert load_media(SAMPLES[8][0], what="audio").mime == "video/mp4"
    assert load_media(SAMPLES[10][0], what="audio").mime == "video/webm"


# --- size before reading ---------------------------------------------------------------------


@pytest.fixture
def huge_file(tmp_path: Path) -> Path:
    """A 2 GiB sparse file: no disk used, and reading it would take many seconds."""
    path = tmp_path / "huge.png"
    with path.open("wb") as f:
        f.write(PNG[:8])
        f.truncate(2 * 2**30)
    return path


def test_a_huge_file_is_refused_by_its_size_before_it_is_read(
    huge_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(self: Path) -> bytes:
        raise AssertionError(f"{self} was read before its size was checked")

    monkeypatch.setattr(Path, "read_bytes", never)
    with pytest.raises(th.InvalidInputError, match=r"is 2,048 MB; .* at most 96 MB") as info:
        load_media(huge_file)
    assert "huge.png" in str(info.value)


def test_a_huge_file_object_is_read_only_up_to_the_limit(
    huge_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_media, "MAX_MEDIA_BYTES", 2**20)
    with huge_file.open("rb") as f:
        with pytest.raises(th.InvalidInputError, match="at most 1 MB"):
            load_media(f)
        assert f.tell() == 2**20 + 1


def test_chat_with_a_huge_image_sends_nothing(huge_file: Path) -> None:
    host = Gateway(httpx.Response(500))
    with pytest.raises(th.InvalidInputError, match=r"huge\.png"):
        _client(host).chat("What is this?", model="gpt-5", images=[huge_file])
    assert host.gateway == []


# --- URLs the client fetches itself (Gemini inlines images; edits upload them) ---------------


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> th.Client:
    return th.Client(
        KEY, "https://gw.example", transport=httpx.MockTransport(handler), live_models=False
    )


class Gateway:
    """The gateway and one file host: the host's answer is scripted, gateway calls counted."""

    def __init__(self, answer: httpx.Response) -> None:
        self.answer = answer
        self.reply = httpx.Response(
            200, json={"candidates": [{"content": {"parts": [{"text": "ok"}]}}]}
        )
        self.gateway: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "files.example":
            assert "authorization" not in request.headers
            return self.answer
        self.gateway.append(request)
        return self.reply


def test_an_html_error_page_from_a_url_is_not_an_image() -> None:
    host = Gateway(httpx.Response(200, content=HTML, headers={"content-type": "image/png"}))
    with pytest.raises(th.InvalidInputError, match=r"files\.example/cat\.png is an HTML page"):
        _client(host).chat(
            "What?", model="gemini-2.5-flash", images=["https://files.example/cat.png?sig=1"]
        )
    assert host.gateway == []


def test_a_url_image_that_is_an_image_is_sent_inline() -> None:
    host = Gateway(httpx.Response(200, content=PNG))
    assert (
        _client(host)
        .chat("What?", model="gemini-2.5-flash", images=["https://files.example/a"])
        .text
    )
    assert len(host.gateway) == 1 and b'"mimeType":"image/png"' in host.gateway[0].content


def test_a_url_declaring_a_huge_length_is_refused_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[int] = []

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            while True:
                read.append(1)
                yield bytes(2**16)

    declared = httpx.Response(200, headers={"content-length": str(3 * 2**30)}, stream=Endless())
    with pytest.raises(th.InvalidInputError, match="is 3,072 MB"):
        _client(Gateway(declared)).chat(
            "?", model="gemini-2.5-flash", images=["https://files.example/a"]
        )
    assert read == []
    monkeypatch.setattr(_media, "MAX_MEDIA_BYTES", 2**20)
    monkeypatch.setattr("tokenhot_jupyter._chat.MAX_MEDIA_BYTES", 2**20)
    with pytest.raises(th.InvalidInputError, match=r"is over 1 MB; .* at most 1 MB"):
        _client(Gateway(httpx.Response(200, stream=Endless()))).chat(
            "?", model="gemini-2.5-flash", images=["https://files.example/a"]
        )
    assert len(read) == 2**20 // 2**16 + 1  # it stopped one chunk past the limit


def test_a_url_to_transcribe_is_fetched_and_checked() -> None:
    host = Gateway(httpx.Response(200, content=PNG))
    with pytest.raises(
        th.InvalidInputError, match=r"The audio at https://files\.example/a is a PNG"
    ):
        _client(host).transcribe("https://files.example/a")
    assert host.gateway == []
    host.answer = httpx.Response(200, content=WAV)
    host.reply = httpx.Response(200, json={"text": "hello"})
    assert _client(host).transcribe("https://files.example/a").text == "hello"
    assert len(host.gateway) == 1 and host.gateway[0].url.path == "/v1/audio/transcriptions"
