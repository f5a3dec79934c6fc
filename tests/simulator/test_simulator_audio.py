"""The simulator's audio: Gemini TTS, speech, transcription (spec §12 #25-#26)."""

from __future__ import annotations

import base64
import io
import wave

import httpx
import pytest

from tokenhot_jupyter.simulator.media import speech_wav, transcribe_audio, wav

from simulator_support import envelope_a


def test_25_gemini_tts_is_base64_pcm(http: httpx.Client) -> None:
    body = {
        "contents": [{"parts": [{"text": "Welcome back!"}]}],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
        },
    }
    reply = http.post(
        "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent", json=body
    ).json()
    inline = reply["candidates"][0]["content"]["parts"][0]["inlineData"]
    assert inline["mimeType"] == "audio/L16;codec=pcm;rate=24000"
    pcm = base64.b64decode(inline["data"])
    assert not pcm.startswith(b"RIFF") and transcribe_audio(wav(pcm)).text == "Welcome back!"
    text_only = http.post(
        "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent",
        json={"contents": body["contents"]},
    )
    assert text_only.status_code == 400 and envelope_a(text_only)["code"] == 400
    speech_route = http.post(
        "/v1/audio/speech",
        json={"model": "gemini-2.5-flash-preview-tts", "input": "x", "voice": "Kore"},
    )
    assert (
        speech_route.status_code == 500
        and envelope_a(speech_route)["code"] == "convert_request_failed"
    )


def test_26_speech_is_raw_audio_bytes(http: httpx.Client) -> None:
    response = http.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "Hello there", "voice": "alloy", "response_format": "wav"},
    )
    assert response.headers["content-type"] == "audio/wav" and response.content[:4] == b"RIFF"
    with wave.open(io.BytesIO(response.content)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
    assert transcribe_audio(response.content).text == "Hello there"
    missing = http.post("/v1/audio/speech", json={"input": "x"})
    assert missing.status_code == 500 and "model is required" in envelope_a(missing)["message"]


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_26_transcription_formats(http: httpx.Client, fmt: str) -> None:
    audio = speech_wav("Hello there. How are you?")
    response = http.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1", "response_format": fmt},
        files=[("file", ("a.wav", audio, "audio/wav"))],
    )
    assert response.status_code == 200
    if fmt == "json":
        assert response.json() == {"text": "Hello there. How are you?"}
    elif fmt == "text":
        assert response.text.strip() == "Hello there. How are you?"
    elif fmt == "srt":
        assert "-->" in response.text and response.text.startswith("1\n")
    elif fmt == "vtt":
        assert response.text.startswith("WEBVTT")
    else:
        body = response.json()
        assert body["task"] == "transcribe" and body["segments"] and body["duration"] > 0


def test_26_translation_and_missing_file(http: httpx.Client) -> None:
    audio = speech_wav("Bonjour")
    translated = http.post(
        "/v1/audio/translations",
        data={"model": "whisper-1", "response_format": "verbose_json"},
        files=[("file", ("a.wav", audio, "audio/wav"))],
    ).json()
    assert translated["task"] == "translate" and translated["language"] == "english"
    missing = http.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files=[("other", ("a", b"x", "text/plain"))],
    )
    assert missing.status_code == 500 and "file is required" in envelope_a(missing)["message"]
