"""Simulated speech: a 16-tone FSK signal that carries its text, in WAV, and read back.

``speech_pcm`` encodes the UTF-8 text itself (length, text, CRC-32), so ``transcribe_audio``
returns exactly what it was asked to say and can tell any other sound apart; ``to_srt`` and
``to_vtt`` turn a transcript into subtitles.
"""

from __future__ import annotations

import math
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Layout of speech_pcm audio, all tones at 0.3 of full scale:
#   preamble   100 ms of 440 Hz, faded in over 10 ms
#   symbols    10 ms each, two per byte (high nibble first), nibble v at 600 + 200*v Hz,
#              for the frame: 4-byte big-endian length, the UTF-8 text, 4-byte CRC-32
#   tail       60 ms of 500 Hz, faded out over 30 ms
# Every tone fits a whole number of cycles into its slot and starts at phase 0, so the
# signal is phase-continuous (no clicks) and each symbol can be rendered once per rate and
# reused. The decoder counts zero crossings, which only needs bytes.translate/count.

_AMPLITUDE = 0.3 * 32767
_SYMBOL_SECONDS = 0.01
_BASE_HZ = 600
_STEP_HZ = 200
_PREAMBLE = (440, 0.1)  # Hz, seconds
_TAIL = (500, 0.06)
_MIN_RATE, _MAX_RATE = 8000, 192000
_DEFAULT_RATE = 24000
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Sign of each 16-bit little-endian sample, from its high byte.
_SIGN = bytes.maketrans(bytes(range(256)), b"+" * 128 + b"-" * 128)
# Whether a sample is louder than 1024 (about -30 dBFS), from its high byte.
_LOUD = bytes.maketrans(bytes(range(256)), b"q" * 4 + b"L" * 248 + b"q" * 4)


def _gain(n: int, samples: int, fade_in: int, fade_out: int) -> float:
    """Raised-cosine fade envelope at sample n of a tone."""
    if n < fade_in:
        return 0.5 - 0.5 * math.cos(math.pi * n / fade_in)
    if samples - n <= fade_out:
        return 0.5 - 0.5 * math.cos(math.pi * (samples - n) / fade_out)
    return 1.0


def _tone(hz: int, samples: int, rate: int, fade_in: int = 0, fade_out: int = 0) -> bytes:
    """A sine tone starting at phase 0, as 16-bit little-endian PCM."""
    step = 2 * math.pi * hz / rate
    values = [
        round(_AMPLITUDE * _gain(n, samples, fade_in, fade_out) * math.sin(step * n))
        for n in range(samples)
    ]
    return struct.pack(f"<{samples}h", *values)


@dataclass(frozen=True)
class _Voice:
    """The prerendered pieces of speech at one sample rate."""

    preamble: bytes
    pairs: tuple[bytes, ...]  # the two symbols for each byte value
    tail: bytes
    symbol: int  # samples per symbol
    onset: int  # index of the first loud sample of the preamble


def _check_rate(rate: int) -> None:
    """Refuse rates the tone plan cannot be sampled at."""
    if not _MIN_RATE <= rate <= _MAX_RATE:
        raise ValueError(f"speech sample rate must be {_MIN_RATE}..{_MAX_RATE} Hz, not {rate}")


@lru_cache(maxsize=8)
def _voice(rate: int) -> _Voice:
    """Render the preamble, the 16 symbols and the tail once for a sample rate."""
    symbol = round(rate * _SYMBOL_SECONDS)
    symbols = [_tone(_BASE_HZ + _STEP_HZ * v, symbol, rate) for v in range(16)]
    hz, seconds = _PREAMBLE
    preamble = _tone(hz, round(rate * seconds), rate, fade_in=round(rate * 0.01))
    hz, seconds = _TAIL
    tail = _tone(hz, round(rate * seconds), rate, fade_out=round(rate * 0.03))
    pairs = tuple(symbols[b >> 4] + symbols[b & 15] for b in range(256))
    onset = preamble[1::2].translate(_LOUD).find(b"L")
    return _Voice(preamble, pairs, tail, symbol, onset)


def speech_pcm(text: str, rate: int = _DEFAULT_RATE) -> bytes:
    """16-bit little-endian mono PCM that carries the UTF-8 text, readable by transcribe_audio."""
    _check_rate(rate)
    payload = text.encode("utf-8", "surrogatepass")
    frame = struct.pack(">I", len(payload)) + payload + struct.pack(">I", zlib.crc32(payload))
    voice = _voice(rate)
    return voice.preamble + b"".join(map(voice.pairs.__getitem__, frame)) + voice.tail


def wav(pcm: bytes, rate: int = _DEFAULT_RATE, channels: int = 1) -> bytes:
    """16-bit PCM wrapped in the standard 44-byte RIFF/WAVE header."""
    if channels < 1 or len(pcm) % (2 * channels):
        raise ValueError("PCM length must be a whole number of 16-bit frames")
    if not 1 <= rate < 2**32 // (2 * channels):
        raise ValueError(f"unsupported sample rate {rate}")
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        1,  # WAVE_FORMAT_PCM
        channels,
        rate,
        rate * channels * 2,
        channels * 2,
        16,
        b"data",
        len(pcm),
    )
    return header + pcm


def speech_wav(text: str, rate: int = _DEFAULT_RATE) -> bytes:
    """A WAV file of speech_pcm(text, rate)."""
    return wav(speech_pcm(text, rate), rate)


# --------------------------------------------------------------------------- transcription


@dataclass(frozen=True)
class Transcript:
    """What the simulated speech-to-text heard, shaped like Whisper's verbose_json."""

    text: str
    duration: float  # seconds, 0.0 if unknown
    language: str  # 'en', or 'zh' when the text has Han characters
    segments: list[dict[str, Any]]


@dataclass(frozen=True)
class _Wav:
    """The parts of a RIFF/WAVE file the decoder needs."""

    tag: int  # 1 for integer PCM (WAVE_FORMAT_EXTENSIBLE resolved to its sub-format)
    channels: int
    rate: int
    byte_rate: int
    bits: int
    data: bytes


def _wav_format(chunk: bytes) -> tuple[int, int, int, int, int] | None:
    """(tag, channels, rate, byte_rate, bits) from a fmt chunk, or None if too short."""
    if len(chunk) < 16:
        return None
    tag, channels, rate, byte_rate, _align, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == 0xFFFE and len(chunk) >= 26:
        tag = struct.unpack_from("<H", chunk, 24)[0]  # first two bytes of the sub-format GUID
    return tag, channels, rate, byte_rate, bits


def _parse_wav(data: bytes) -> _Wav | None:
    """The format and samples of a RIFF/WAVE file, or None if data is not one."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    fmt, body, pos = None, None, 12
    while pos + 8 <= len(data) and (fmt is None or body is None):
        kind, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        # A streamed WAV may say its data runs to 0xFFFFFFFF: slicing stops at the end.
        chunk = data[pos + 8 : pos + 8 + size]
        if kind == b"fmt ":
            fmt = _wav_format(chunk)
        elif kind == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        return None
    return _Wav(*fmt, data=body)


def _mono16(audio: _Wav) -> bytes | None:
    """The first channel of 16-bit PCM, or None for any other sample format."""
    if audio.tag != 1 or audio.bits != 16 or audio.channels not in (1, 2):
        return None
    if audio.channels == 1:
        return audio.data[: len(audio.data) // 2 * 2]
    frames = len(audio.data) // 4
    mono = bytearray(2 * frames)
    mono[0::2] = audio.data[0 : 4 * frames : 4]
    mono[1::2] = audio.data[1 : 4 * frames : 4]
    return bytes(mono)


def _wav_seconds(audio: _Wav) -> float:
    """How long a WAV file plays, from its data size and byte rate."""
    byte_rate = audio.byte_rate or audio.rate * audio.channels * audio.bits // 8
    return len(audio.data) / byte_rate if byte_rate > 0 else 0.0


class _Reader:
    """Reads speech_pcm symbols by counting zero crossings on a fixed time grid."""

    def __init__(self, pcm: bytes, rate: int, voice: _Voice, origin: int) -> None:
        self.signs = pcm[1::2].translate(_SIGN)
        self.rate = rate
        self.voice = voice
        self.start = origin + len(voice.preamble) // 2  # first symbol, in samples
        self.margin = max(1, voice.symbol // 20)  # skip the edges where tones meet

    def crossings(self, a: int, b: int) -> int:
        """Sign changes between samples a and b; '+-' and '-+' cannot overlap themselves."""
        window = self.signs[a:b]
        return window.count(b"+-") + window.count(b"-+")

    def fits(self, symbols: int) -> bool:
        """Whether the audio is long enough to hold that many symbols."""
        return self.start + symbols * self.voice.symbol <= len(self.signs)

    def nibble(self, k: int) -> int | None:
        """The value of symbol k, or None if its tone is not one of the 16."""
        a = self.start + k * self.voice.symbol + self.margin
        b = self.start + (k + 1) * self.voice.symbol - self.margin
        hz = self.crossings(a, b) * self.rate / (2 * (b - a))
        estimate = (hz - _BASE_HZ) / _STEP_HZ
        value = round(estimate)
        return value if 0 <= value <= 15 and abs(estimate - value) < 0.45 else None

    def read(self, first: int, count: int) -> bytes | None:
        """count bytes starting at byte index first, or None at the first unreadable symbol."""
        out = bytearray()
        for k in range(2 * first, 2 * (first + count), 2):
            high, low = self.nibble(k), self.nibble(k + 1)
            if high is None or low is None:
                return None
            out.append(high << 4 | low)
        return bytes(out)

    def byte_time(self, index: int) -> float:
        """When byte index of the frame starts, in seconds."""
        return (self.start + 2 * index * self.voice.symbol) / self.rate


def _preamble_ok(reader: _Reader, origin: int) -> bool:
    """Whether the 440 Hz lead-in is where the onset says it is."""
    hz = _PREAMBLE[0]
    a, b = origin + round(0.02 * reader.rate), reader.start - reader.margin
    if b <= a:
        return False
    expected = 2 * hz * (b - a) / reader.rate
    return abs(reader.crossings(a, b) - expected) <= 3


def _decode(pcm: bytes, rate: int) -> tuple[str, _Reader] | None:
    """The text carried by speech_pcm audio and the reader that found it, or None."""
    if not _MIN_RATE <= rate <= _MAX_RATE:
        return None
    voice = _voice(rate)
    # Align on the first loud sample so leading silence does not matter.
    onset = pcm[1::2].translate(_LOUD).find(b"L")
    origin = onset - voice.onset
    if onset < 0 or origin < 0:
        return None
    reader = _Reader(pcm, rate, voice, origin)
    if not _preamble_ok(reader, origin) or not reader.fits(8):
        return None
    head = reader.read(0, 4)
    length = int.from_bytes(head, "big") if head else -1
    if length < 0 or not reader.fits(2 * (length + 8)):
        return None
    body = reader.read(4, length + 4)
    if body is None or zlib.crc32(body[:length]) != int.from_bytes(body[length:], "big"):
        return None
    try:
        return body[:length].decode("utf-8", "surrogatepass"), reader
    except UnicodeDecodeError:  # a CRC collision on foreign audio, vanishingly rare
        return None


# Sentence ends: . ! ? … followed by space or the end, any CJK full stop, or a line break.
_SENTENCE = re.compile(r"\S[^\n]*?(?:[.!?…]+(?=\s|$)|[。！？]+|(?=\n)|$)")


def _segment(index: int, start: float, end: float, text: str, no_speech: float) -> dict[str, Any]:
    """One Whisper-style segment."""
    return {
        "id": index,
        "seek": 0,
        "start": round(start, 3),
        "end": round(end, 3),
        "text": text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": -0.1,
        "compression_ratio": 1.0,
        "no_speech_prob": no_speech,
    }


def _segments(text: str, byte_time: Callable[[int], float]) -> list[dict[str, Any]]:
    """One segment per sentence, timed by where its bytes were spoken."""
    segments: list[dict[str, Any]] = []
    offset, position = 4, 0  # the frame starts with the 4-byte length
    for match in _SENTENCE.finditer(text):
        offset += len(text[position : match.start()].encode("utf-8", "surrogatepass"))
        start = byte_time(offset)
        offset += len(match.group().encode("utf-8", "surrogatepass"))
        position = match.end()
        sentence = match.group().strip()
        segments.append(_segment(len(segments), start, byte_time(offset), sentence, 0.0))
    return segments


def _heard(text: str, duration: float, reader: _Reader) -> Transcript:
    """The transcript of decoded speech."""
    language = "zh" if _HAN.search(text) else "en"
    return Transcript(text, duration, language, _segments(text, reader.byte_time))


def _unheard(what: str, duration: float) -> Transcript:
    """The transcript of audio that carries no text the simulator can read."""
    text = f"[simulated transcript: {what}]"
    return Transcript(text, duration, "en", [_segment(0, 0.0, duration, text, 1.0)])


def transcribe_audio(data: bytes, rate_hint: int | None = None) -> Transcript:
    """Read back the text of speech_pcm/speech_wav audio; other audio gets a clear placeholder."""
    data = bytes(data)
    audio = _parse_wav(data)
    if audio is None:
        rate = rate_hint or _DEFAULT_RATE
        found = _decode(data[: len(data) // 2 * 2], rate)
        if found is None:
            return _unheard(f"unreadable audio ({len(data)} bytes)", 0.0)
        return _heard(found[0], len(data) // 2 / rate, found[1])
    duration = _wav_seconds(audio)
    pcm = _mono16(audio)
    found = _decode(pcm, audio.rate) if pcm is not None else None
    if found is None:
        what = f"{duration:.1f} s of audio with no speech the simulator can read"
        return _unheard(what, duration)
    return _heard(found[0], duration, found[1])


def _timestamp(seconds: float, separator: str) -> str:
    """HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (WebVTT)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _cue_text(text: str) -> str:
    """Segment text safe inside a cue: no blank lines, no arrow that looks like timing."""
    return " ".join(text.split()).replace("-->", "->")


def to_srt(t: Transcript) -> str:
    """The transcript as SubRip subtitles, one cue per segment."""
    cues = [
        f"{n}\n{_timestamp(s['start'], ',')} --> {_timestamp(s['end'], ',')}\n"
        f"{_cue_text(s['text'])}\n"
        for n, s in enumerate(t.segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(t: Transcript) -> str:
    """The transcript as WebVTT subtitles, one cue per segment."""
    cues = [
        f"{_timestamp(s['start'], '.')} --> {_timestamp(s['end'], '.')}\n{_cue_text(s['text'])}\n"
        for s in t.segments
    ]
    return "\n".join(["WEBVTT\n", *cues])
