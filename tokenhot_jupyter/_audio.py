"""Speech (Gemini PCM, OpenAI speech, chat audio) and transcription (Whisper)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from . import _exceptions as E
from ._catalog import Model
from ._chat import download_media, gemini_parts
from ._http import Connection, form_fields, json_body
from ._media import Media, pcm_to_wav, rate_from_mime, sniff_mime
from ._types import Transcript

TEXT_FORMATS = ("text", "srt", "vtt")
FORMATS = ("json", "verbose_json", *TEXT_FORMATS)


async def speak(
    conn: Connection, model: Model, text: str, voice: str | None, extra: Mapping[str, Any]
) -> bytes:
    """WAV bytes of ``text`` spoken by ``model``."""
    if not text or not text.strip():
        raise E.InvalidInputError("There is no text to speak.", model=model.id)
    speakers = {"gemini-tts": _gemini, "openai-tts": _openai, "chat-audio": _chat_audio}
    if model.family not in speakers:
        raise E.InvalidInputError(
            f"{model.id} cannot speak; pick a speech model such as gemini-2.5-flash-preview-tts.",
            model=model.id,
        )
    return await speakers[model.family](conn, model, text, voice, dict(extra))


async def _gemini(
    conn: Connection, model: Model, text: str, voice: str | None, extra: dict[str, Any]
) -> bytes:
    config: dict[str, Any] = {"responseModalities": ["AUDIO"]}
    if voice:
        config["speechConfig"] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}}
    body = {"contents": [{"parts": [{"text": text}]}], "generationConfig": config, **extra}
    response = await conn.request(
        "POST", f"/v1beta/models/{model.id}:generateContent", mode="write", model=model.id,
        what="speech", json=body,
    )  # fmt: skip
    raw = json_body(response, model=model.id, what="speech")
    for part in gemini_parts(raw):
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, Mapping) and inline.get("data"):
            mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
            audio = base64.b64decode(inline["data"])
            return audio if audio[:4] == b"RIFF" else pcm_to_wav(audio, rate_from_mime(mime))
    raise E.ServerError(f"{model.id} answered without audio.", status_code=200, model=model.id)


async def _openai(
    conn: Connection, model: Model, text: str, voice: str | None, extra: dict[str, Any]
) -> bytes:
    body = {
        "model": model.id,
        "input": text,
        "voice": voice or "alloy",
        "response_format": "wav",
        **extra,
    }
    response = await conn.request(
        "POST", "/v1/audio/speech", mode="write", model=model.id, what="speech", json=body
    )
    if "json" in response.headers.get("content-type", "") or "html" in response.headers.get(
        "content-type", ""
    ):
        json_body(response, model=model.id, what="speech")  # raises for HTML
        raise E.ServerError(
            f"{model.id} sent JSON instead of audio.", status_code=200, model=model.id
        )
    return response.content


async def _chat_audio(
    conn: Connection, model: Model, text: str, voice: str | None, extra: dict[str, Any]
) -> bytes:
    audio: dict[str, Any] = {"format": "wav"}
    if voice:
        audio["voice"] = voice
    body = {
        "model": model.id,
        "messages": [{"role": "user", "content": text}],
        "audio": audio,
        **extra,
    }
    response = await conn.request(
        "POST", "/v1/chat/completions", mode="write", model=model.id, what="speech", json=body
    )
    raw = json_body(response, model=model.id, what="speech")
    message = ((raw.get("choices") or [{}])[0]).get("message") or {}
    data = (message.get("audio") or {}).get("data")
    if not data:
        raise E.ServerError(f"{model.id} answered without audio.", status_code=200, model=model.id)
    return base64.b64decode(data)


async def transcribe(
    conn: Connection,
    model: Model,
    audio: Media,
    *,
    translate: bool,
    language: str | None,
    response_format: str,
    extra: Mapping[str, Any],
) -> Transcript:
    """The text of ``audio`` (English when ``translate``)."""
    if response_format not in FORMATS:
        raise E.InvalidInputError(
            f"response_format={response_format!r} is not one of {', '.join(FORMATS)}.",
            model=model.id,
        )
    if model.family != "whisper":
        raise E.InvalidInputError(f"{model.id} cannot transcribe; use whisper-1.", model=model.id)
    audio = await download_media(conn, audio)  # a URL is fetched and checked like a file
    data = audio.as_bytes()
    fields = {"model": model.id, "response_format": response_format}
    if language and not translate:
        fields["language"] = language
    fields.update(form_fields(extra, model=model.id))
    path = "/v1/audio/translations" if translate else "/v1/audio/transcriptions"
    files = {"file": (audio.name or "audio.wav", data, sniff_mime(data, audio.mime))}
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
        return Transcript(response.text.strip(), model, format=response_format, raw=response.text)
    raw = json_body(response, model=model, what="transcription")
    return Transcript(
        str(raw.get("text", "")).strip(), model, raw.get("language"), raw.get("duration"),
        list(raw.get("segments") or []), response_format, raw,
    )  # fmt: skip
