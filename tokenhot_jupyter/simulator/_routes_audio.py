"""``/v1/audio/speech``, ``/transcriptions`` and ``/translations`` (spec §9)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from . import media
from ._context import Ctx
from ._errors import relay_error
from ._http import Reply, Result, Stream, json_reply, sse, text_reply

LANGUAGES = {"en": "english", "zh": "chinese", "ja": "japanese", "fr": "french", "de": "german"}
FORMATS = ("json", "text", "srt", "verbose_json", "vtt")


def speech(ctx: Ctx) -> Result:
    """Text to speech: raw audio bytes (WAV; ``pcm`` gives headerless PCM)."""
    f = ctx.fields
    if not f.get("model"):
        raise ctx.invalid("model is required")
    text = str(f.get("input") or "")
    if not text:
        raise ctx.invalid("input is required")
    pcm = media.speech_pcm(text)
    if f.get("stream_format") == "sse":
        return Stream(_speech_events(pcm, text))
    if f.get("response_format") == "pcm":
        return Reply(200, pcm, "audio/pcm")
    # mp3/opus/aac/flac cannot be encoded offline: every other format is served as WAV.
    return Reply(200, media.wav(pcm), "audio/wav")


def _speech_events(pcm: bytes, text: str) -> Iterator[bytes]:
    step = 48000  # one second of 24 kHz 16-bit audio
    for start in range(0, len(pcm), step):
        chunk = base64.b64encode(pcm[start : start + step]).decode()
        yield sse({"type": "speech.audio.delta", "audio": chunk})
    tokens = max(1, len(text) // 4)
    usage = {"input_tokens": tokens, "output_tokens": len(pcm) // 960, "total_tokens": tokens}
    yield sse({"type": "speech.audio.done", "usage": usage})


def transcriptions(ctx: Ctx) -> Result:
    """Speech to text in the language spoken."""
    return _stt(ctx, translate=False)


def translations(ctx: Ctx) -> Result:
    """Speech to English text."""
    return _stt(ctx, translate=True)


def _stt(ctx: Ctx, translate: bool) -> Result:
    f = ctx.fields
    if not f.get("model"):
        raise ctx.invalid("model is required")
    files = [p for p in ctx.req.files if p.name == "file"]
    if not files:
        raise ctx.invalid("file is required")
    fmt = str(f.get("response_format") or "json")
    if fmt not in FORMATS:
        message = f"'{fmt}' is not one of {list(FORMATS)} - 'response_format'"
        raise relay_error(
            400,
            message,
            ctx.rid,
            code="invalid_value",
            type_="invalid_request_error",
            param="response_format",
        )
    heard = media.transcribe_audio(files[0].data)
    return _formatted(ctx, heard, fmt, translate)


def _formatted(ctx: Ctx, heard: media.Transcript, fmt: str, translate: bool) -> Result:
    if fmt == "text":
        return text_reply(heard.text + "\n")
    if fmt == "srt":
        return text_reply(media.to_srt(heard))
    if fmt == "vtt":
        return text_reply(media.to_vtt(heard), "text/vtt; charset=utf-8")
    if fmt == "json":
        return json_reply({"text": heard.text})
    code = "en" if translate else str(ctx.fields.get("language") or heard.language)
    body: dict[str, Any] = {
        "task": "translate" if translate else "transcribe",
        "language": LANGUAGES.get(code, code),
        "duration": heard.duration,
        "text": heard.text,
        "segments": heard.segments,
    }
    if "word" in ctx.req.form_list("timestamp_granularities[]"):
        body["words"] = _words(heard.segments)
    return json_reply(body)


def _words(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Word timestamps spread evenly over each segment."""
    words = []
    for segment in segments:
        parts = str(segment.get("text", "")).split()
        start, end = float(segment["start"]), float(segment["end"])
        step = (end - start) / max(1, len(parts))
        words += [
            {
                "word": w,
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
            }
            for i, w in enumerate(parts)
        ]
    return words
