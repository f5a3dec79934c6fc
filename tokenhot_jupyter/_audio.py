"""Speech (Gemini PCM, OpenAI speech, chat audio) and transcription (Whisper).

Each speech family is a `SpeechWire`: how it builds a body (sent to the family's endpoint in
the catalog) and where the audio sits in its reply.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from . import _exceptions as E
from ._catalog import Model
from ._chat import download_media, gemini_parts
from ._http import Body, Connection, form_fields, json_body
from ._media import load_media, pcm_to_wav, rate_from_mime, sniff_mime
from ._types import Transcript

TEXT_FORMATS = ("text", "srt", "vtt")
FORMATS = ("json", "verbose_json", *TEXT_FORMATS)


async def speak(
    conn: Connection, model: Model, text: str, voice: str | None, extra: Mapping[str, Any]
) -> bytes:
    """WAV bytes of ``text`` spoken by ``model`` (``voice`` checked against the catalog)."""
    voice = model.check("voice", voice) if voice else voice
    if not text or not text.strip():
        raise E.InvalidInputError("There is no text to speak.", model=model.id)
    if model.family not in SPEECH_WIRES:
        raise E.InvalidInputError(
            f"{model.id} cannot speak; pick a speech model such as gemini-2.5-flash-preview-tts.",
            model=model.id,
        )
    wire = SPEECH_WIRES[model.family]
    body = wire.build(model, text, voice)
    body.update(extra)
    response = await conn.request(
        "POST", model.endpoint, mode="write", model=model.id, what="speech", json=body
    )
    return wire.read(response, model)


# --- the speech families ---------------------------------------------------------------------


def _gemini_body(model: Model, text: str, voice: str | None) -> Body:
    config: Body = {"responseModalities": ["AUDIO"]}
    if voice:
        config["speechConfig"] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}}
    return {"contents": [{"parts": [{"text": text}]}], "generationConfig": config}


def _gemini_audio(response: httpx.Response, model: Model) -> bytes:
    raw = json_body(response, model=model.id, what="speech")
    for part in gemini_parts(raw):
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, Mapping) and inline.get("data"):
            mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
            audio = base64.b64decode(inline["data"])
            return audio if audio[:4] == b"RIFF" else pcm_to_wav(audio, rate_from_mime(mime))
    raise E.ServerError(f"{model.id} answered without audio.", status_code=200, model=model.id)


def _openai_body(model: Model, text: str, voice: str | None) -> Body:
    return {"model": model.id, "input": text, "voice": voice or "alloy", "response_format": "wav"}


def _openai_audio(response: httpx.Response, model: Model) -> bytes:
    if "json" in response.headers.get("content-type", "") or "html" in response.headers.get(
        "content-type", ""
    ):
        json_body(response, model=model.id, what="speech")  # raises for HTML
        raise E.ServerError(
            f"{model.id} sent JSON instead of audio.", status_code=200, model=model.id
        )
    return response.content


def _chat_body(model: Model, text: str, voice: str | None) -> Body:
    audio: Body = {"format": "wav"}
    if voice:
        audio["voice"] = voice
    return {"model": model.id, "messages": [{"role": "user", "content": text}], "audio": audio}


def _chat_audio(response: httpx.Response, model: Model) -> bytes:
    raw = json_body(response, model=model.id, what="speech")
    message = ((raw.get("choices") or [{}])[0]).get("message") or {}
    data = (message.get("audio") or {}).get("data")
    if not data:
        raise E.ServerError(f"{model.id} answered without audio.", status_code=200, model=model.id)
    return base64.b64decode(data)


@dataclass(frozen=True, kw_only=True)
class SpeechWire:
    """How one speech family asks for audio, and where the audio sits in its reply."""

    build: Callable[[Model, str, str | None], Body]  # (model, text, voice)
    read: Callable[[httpx.Response, Model], bytes]  # WAV bytes


SPEECH_WIRES: dict[str, SpeechWire] = {
    "gemini-tts": SpeechWire(build=_gemini_body, read=_gemini_audio),  # PCM, wrapped as WAV
    "openai-tts": SpeechWire(build=_openai_body, read=_openai_audio),  # the body is the audio
    "chat-audio": SpeechWire(build=_chat_body, read=_chat_audio),  # message.audio (spec §4.6)
}


# --- transcription -----------------------------------------------------------------------------


async def transcribe(
    conn: Connection,
    model: Model,
    audio: Any,
    *,
    translate: bool,
    language: str | None,
    response_format: str,
    extra: Mapping[str, Any],
) -> Transcript:
    """The text of ``audio``, a path, URL, bytes or file object (English when ``translate``)."""
    media = load_media(audio, what="audio")
    if response_format not in FORMATS:
        raise E.InvalidInputError(
            f"response_format={response_format!r} is not one of {', '.join(FORMATS)}.",
            model=model.id,
        )
    if model.family != "whisper":
        raise E.InvalidInputError(f"{model.id} cannot transcribe; use whisper-1.", model=model.id)
    media = await download_media(conn, media)  # a URL is fetched and checked like a file
    data = media.as_bytes()
    fields = {"model": model.id, "response_format": response_format}
    if language and not translate:
        fields["language"] = language
    fields.update(form_fields(extra, model=model.id))
    path = "/v1/audio/translations" if translate else model.endpoint
    files = {"file": (media.name or "audio.wav", data, sniff_mime(data, media.mime))}
    response = await conn.request(
        "POST", path, mode="write", model=model.id, what="transcription", data=fields, files=files
    )
    return _transcript(response, model.id, response_format)


def _transcript(response: Any, model: str, response_format: str) -> Transcript:
    if response_format in TEXT_FORMATS or "json" not in response.headers.get(
        "content-type", "json"
    ):
        if "html" in response.headers.get("content-type", ""):
            json_body(response, model=model, what="transcription")
        text = response.text
        return Transcript(text=text.strip(), model=model, format=response_format, raw=text)
    raw = json_body(response, model=model, what="transcription")
    return Transcript(
        text=str(raw.get("text", "")).strip(),
        model=model,
        language=raw.get("language"),
        duration=raw.get("duration"),
        segments=list(raw.get("segments") or []),
        format=response_format,
        raw=raw,
    )
