"""Real media for the gateway simulator: PNG pictures, speech audio and H.264 MP4 video.

Everything is made with the standard library, so the simulator needs no codecs at run time.

* Pictures and videos are painted from a *scene* (a gradient background and a few shapes)
  seeded from the SHA-256 of the prompt: the same prompt always gives the same bytes.
* Speech is a 16-tone FSK signal that carries the UTF-8 text itself (length, text, CRC-32),
  so ``transcribe_audio`` returns exactly what ``speech_pcm`` was asked to say and can tell
  any other sound apart.
* Video is a minimal H.264 Baseline stream whose macroblocks are all I_PCM (raw samples),
  one IDR picture per frame, in a fast-start MP4.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "Transcript",
    "image_size",
    "mp4",
    "mp4_info",
    "png",
    "speech_pcm",
    "speech_wav",
    "to_srt",
    "to_vtt",
    "transcribe_audio",
    "wav",
]

RGB = tuple[float, float, float]
Place = tuple[float, float, float]  # centre x, centre y, radius, in pixels
Channel = tuple[float, float, float, float]  # see _RED

# --------------------------------------------------------------------------- scenes


class _Rng:
    """Deterministic floats in [0, 1) drawn from SHA-256, identical on every Python version."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._pool = b""
        self._counter = 0

    def unit(self) -> float:
        """The next float in [0, 1)."""
        if len(self._pool) < 4:
            block = self._seed + self._counter.to_bytes(4, "big")
            self._pool = hashlib.sha256(block).digest()
            self._counter += 1
        value, self._pool = int.from_bytes(self._pool[:4], "big"), self._pool[4:]
        return value / 2**32

    def between(self, low: float, high: float) -> float:
        """The next float in [low, high)."""
        return low + (high - low) * self.unit()


@dataclass(frozen=True)
class _Shape:
    kind: str  # one of _KINDS
    x: float  # centre, as a fraction of the width
    y: float  # centre, as a fraction of the height
    radius: float  # fraction of the shorter side
    swing: float  # how far it travels in a video, fraction of the frame
    phase: float  # where on its path it starts, in turns
    colour: RGB  # top of the shape
    shade: RGB  # bottom of the shape


@dataclass(frozen=True)
class _Scene:
    corners: tuple[RGB, RGB, RGB, RGB]  # top-left, top-right, bottom-left, bottom-right
    waves: int  # cosine periods of the background across the width
    drift: float  # background scroll speed in a video, widths per second
    shapes: tuple[_Shape, ...]


_KINDS = ("disc", "ring", "box", "diamond")
_SHAPE_PERIOD = 6.0  # seconds for a shape to go round its path once


def _colour(rng: _Rng, hue: float) -> RGB:
    """A fairly saturated colour of the given hue."""
    return colorsys.hsv_to_rgb(hue % 1.0, rng.between(0.45, 0.9), rng.between(0.35, 0.95))


def _shape(rng: _Rng, hue: float) -> _Shape:
    """One shape of a scene, drawn from the generator."""
    colour = _colour(rng, hue + rng.between(0.25, 0.75))
    return _Shape(
        kind=_KINDS[int(rng.unit() * len(_KINDS))],
        x=rng.between(0.15, 0.85),
        y=rng.between(0.15, 0.85),
        radius=rng.between(0.08, 0.26),
        swing=rng.between(0.05, 0.2),
        phase=rng.unit(),
        colour=colour,
        shade=(colour[0] * 0.45, colour[1] * 0.45, colour[2] * 0.45),
    )


@lru_cache(maxsize=64)
def _scene(prompt: str) -> _Scene:
    """The picture a prompt stands for."""
    rng = _Rng(hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest())
    hue = rng.unit()
    corners = (
        _colour(rng, hue),
        _colour(rng, hue + 0.1),
        _colour(rng, hue + 0.45),
        _colour(rng, hue + 0.6),
    )
    waves = 1 + int(rng.unit() * 3)
    drift = rng.between(0.05, 0.2) * (1 if rng.unit() < 0.5 else -1)
    shapes = tuple(_shape(rng, hue) for _ in range(3 + int(rng.unit() * 3)))
    return _Scene(corners, waves, drift, shapes)


# A channel is affine in RGB: offset + kr*r + kg*g + kb*b, in 8-bit code values. Keeping it as
# coefficients lets a gradient's table be one linear ramp instead of 256 colour mixes.
_RED: Channel = (0.0, 255.0, 0.0, 0.0)
_GREEN: Channel = (0.0, 0.0, 255.0, 0.0)
_BLUE: Channel = (0.0, 0.0, 0.0, 255.0)
# BT.601 limited range: what an H.264 decoder assumes when the SPS carries no VUI.
_LUMA: Channel = (16.0, 65.481, 128.553, 24.966)
_CB: Channel = (128.0, -37.797, -74.203, 112.0)
_CR: Channel = (128.0, 112.0, -93.786, -18.214)


def _code(channel: Channel, c: RGB) -> float:
    """The channel's code value for a colour, unrounded."""
    return channel[0] + channel[1] * c[0] + channel[2] * c[1] + channel[3] * c[2]


def _ramp(start: float, end: float) -> bytes:
    """256 bytes going linearly from code value start to end, kept within 1..255."""
    # Never 0: early H.264 drafts forbade I_PCM samples of 0, and PNG loses nothing.
    step = (end - start) / 255
    return bytes(min(255, max(1, round(start + step * i))) for i in range(256))


@lru_cache(maxsize=32)
def _level_tables(scene: _Scene, channel: Channel, levels: int) -> tuple[bytes, ...]:
    """Per background band, a byte table from wave index (0..255) to channel value."""
    top_left, top_right, bottom_left, bottom_right = (_code(channel, c) for c in scene.corners)
    tables = []
    for level in range(levels):
        v = level / max(1, levels - 1)
        left = top_left + (bottom_left - top_left) * v
        right = top_right + (bottom_right - top_right) * v
        tables.append(_ramp(left, right))
    return tuple(tables)


@lru_cache(maxsize=64)
def _shape_table(shape: _Shape, channel: Channel) -> bytes:
    """Byte table from vertical position in the shape (0..255) to channel value."""
    return _ramp(_code(channel, shape.colour), _code(channel, shape.shade))


def _wave_row(waves: int, width: int, shift: float) -> bytes:
    """Per column, an index 0..255 into the background gradient; periodic so it can scroll."""
    turn = 2 * math.pi
    return bytes(
        round(127.5 - 127.5 * math.cos(turn * (waves * x / width - shift))) for x in range(width)
    )


def _half_widths(kind: str, dy: float, r: float) -> tuple[float, float]:
    """Outer and inner half-width of a shape on a row dy pixels from its centre."""
    if kind == "box":
        return (0.8 * r, 0.0) if abs(dy) <= 0.8 * r else (-1.0, 0.0)
    if kind == "diamond":
        return r - abs(dy), 0.0
    outer = math.sqrt(r * r - dy * dy) if abs(dy) <= r else -1.0
    hole = 0.55 * r
    inner = math.sqrt(hole * hole - dy * dy) if kind == "ring" and abs(dy) < hole else 0.0
    return outer, inner


def _draw(
    row: bytearray, background: bytes, y: int, shape: _Shape, place: Place, table: bytes
) -> None:
    """Paint row y of a shape centred at place=(x, y, radius) pixels, shaded top to bottom."""
    cx, cy, r = place
    outer, inner = _half_widths(shape.kind, y + 0.5 - cy, r)
    x0, x1 = max(0, round(cx - outer)), min(len(row), round(cx + outer))
    if outer < 0 or x1 <= x0:
        return
    shade = min(255, max(0, int(256 * (y + 0.5 - cy + r) / (2 * r))))
    row[x0:x1] = table[shade : shade + 1] * (x1 - x0)
    if inner > 0:
        a, b = max(0, round(cx - inner)), min(len(row), round(cx + inner))
        row[a:b] = background[a:b]


def _place(shape: _Shape, width: int, height: int, t: float) -> Place:
    """Where a shape is at time t, in pixels: (x, y, radius)."""
    angle = 2 * math.pi * (shape.phase + t / _SHAPE_PERIOD)
    x = (shape.x + shape.swing * math.sin(angle)) * width
    y = (shape.y + shape.swing * math.cos(angle)) * height
    return x, y, max(1.0, shape.radius * min(width, height))


def _render(scene: _Scene, width: int, height: int, t: float, channel: Channel) -> bytes:
    """One channel of the scene at time t, row after row, one byte per pixel."""
    levels = min(height, 96)
    wave = _wave_row(scene.waves, width, scene.drift * t)
    backgrounds = [wave.translate(table) for table in _level_tables(scene, channel, levels)]
    places = [_place(shape, width, height, t) for shape in scene.shapes]
    out = bytearray()
    for y in range(height):
        background = backgrounds[y * levels // height]
        row = bytearray(background)
        for shape, place in zip(scene.shapes, places, strict=True):
            _draw(row, background, y, shape, place, _shape_table(shape, channel))
        out += row
    return bytes(out)


# --------------------------------------------------------------------------- PNG

_MAX_IMAGE_SIDE = 4096
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _image_side(side: int) -> int:
    """A picture side capped at 4096 pixels."""
    if side < 1:
        raise ValueError(f"image sides must be at least 1 pixel, not {side}")
    return min(side, _MAX_IMAGE_SIDE)


def png(prompt: str, width: int = 512, height: int = 512) -> bytes:
    """A real 8-bit RGB PNG whose picture is seeded from the prompt (sides capped at 4096)."""
    width, height = _image_side(width), _image_side(height)
    scene = _scene(prompt)
    rgb = bytearray(3 * width * height)
    for offset, channel in enumerate((_RED, _GREEN, _BLUE)):
        rgb[offset::3] = _render(scene, width, height, 0.0, channel)
    stride = 3 * width
    # Filter type 0 (None) on every scanline: the rows are runs of a few colours already,
    # which deflate squeezes well without per-pixel filtering.
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(raw, 6)),
            _png_chunk(b"IEND", b""),
        )
    )


_K_SIZES = {"1k": 1024, "2k": 2048, "3k": 3072, "4k": 4096}
_SIZE_HELP = "use WIDTHxHEIGHT (each 1..4096), 1K..4K, a ratio such as 16:9, or auto"


def _dimension(text: str, size: str) -> int:
    """A positive whole number from a size string, or ValueError naming the whole size."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"unsupported image size {size!r}: {_SIZE_HELP}")
    return int(text)


def _ratio_size(a: int, b: int, size: str) -> tuple[int, int]:
    """A width:height ratio scaled to a 1024-pixel long side, the short side a multiple of 16."""
    if max(a, b) > 16 * min(a, b):
        raise ValueError(f"unsupported image size {size!r}: the ratio is too extreme")
    short = max(16, round(1024 * min(a, b) / max(a, b) / 16) * 16)
    return (1024, short) if a >= b else (short, 1024)


def image_size(size: str | None, default: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
    """(width, height) for a size the gateway accepts: 'WxH', 'W*H', '1K'..'4K', 'W:H', 'auto'."""
    if size is None:
        return default
    if not isinstance(size, str):
        raise ValueError(f"unsupported image size {size!r}: {_SIZE_HELP}")
    text = size.strip().lower()
    if text in ("", "auto"):
        return default
    if text in _K_SIZES:
        return _K_SIZES[text], _K_SIZES[text]
    for separator in ("x", "*", "×", ":"):
        if separator in text:
            first, _, second = text.partition(separator)
            a, b = _dimension(first, size), _dimension(second, size)
            if separator == ":":
                return _ratio_size(a, b, size)
            if max(a, b) > _MAX_IMAGE_SIDE:
                raise ValueError(f"unsupported image size {size!r}: {_SIZE_HELP}")
            return a, b
    raise ValueError(f"unsupported image size {size!r}: {_SIZE_HELP}")


# --------------------------------------------------------------------------- speech
#
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


# --------------------------------------------------------------------------- H.264 (I_PCM)

_MB_BYTES = 2 + 256 + 2 * 64  # mb_type header (see _macroblocks) + 4:2:0 samples
_MAX_VIDEO_SIDE = 1920
_MAX_MP4_BYTES = 8_000_000
_TIMESCALE = 90_000
# (level_idc, MaxFS, MaxMBPS) from H.264 Table A-1; uncompressed frames break MinCR at any
# level, which decoders do not check, so only the frame size and rate pick the level.
_LEVELS = ((30, 1620, 40500), (31, 3600, 108000), (40, 8192, 245760), (51, 36864, 983040))


class _Bits:
    """A big-endian bit writer for H.264 headers (u(n), ue(v), se(v))."""

    def __init__(self) -> None:
        self.value = 0
        self.count = 0

    def u(self, n: int, value: int) -> None:
        """Write value in n bits."""
        self.value = self.value << n | value
        self.count += n

    def ue(self, value: int) -> None:
        """Write unsigned exp-Golomb: as many zeros as value+1 has bits after its first."""
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        """Write signed exp-Golomb: 1, -1, 2, -2 ... map to 1, 2, 3, 4 ..."""
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align(self) -> None:
        """Pad with zero bits to a byte boundary."""
        self.u(-self.count % 8, 0)

    def trailing(self) -> None:
        """rbsp_trailing_bits: a stop bit, then zeros to a byte boundary."""
        self.u(1, 1)
        self.align()

    def to_bytes(self) -> bytes:
        """The bits written so far, which must fill whole bytes."""
        assert self.count % 8 == 0, "H.264 syntax must end byte-aligned"
        return self.value.to_bytes(self.count // 8, "big")


def _escape(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes: 00 00 0x (x <= 3) becomes 00 00 03 0x."""
    pieces, last = [], 0
    pos = rbsp.find(b"\x00\x00")
    while pos != -1 and pos + 2 < len(rbsp):
        if rbsp[pos + 2] <= 3:
            pieces.append(rbsp[last : pos + 2] + b"\x03")
            last = pos + 2
            pos = rbsp.find(b"\x00\x00", pos + 2)
        else:
            pos = rbsp.find(b"\x00\x00", pos + 1)
    pieces.append(rbsp[last:])
    return b"".join(pieces)


def _nal(ref_idc: int, kind: int, rbsp: bytes) -> bytes:
    """A NAL unit: one header byte, then the escaped payload."""
    return bytes((ref_idc << 5 | kind,)) + _escape(rbsp)


def _level(mbw: int, mbh: int, fps: float) -> int:
    """The lowest level that allows frames of mbw x mbh macroblocks at fps."""
    for level, max_fs, max_mbps in _LEVELS:
        side = math.sqrt(8 * max_fs)
        if mbw * mbh <= max_fs and mbw <= side and mbh <= side and mbw * mbh * fps <= max_mbps:
            return level
    return _LEVELS[-1][0]


def _sps(mbw: int, mbh: int, crop_x: int, crop_y: int, level: int) -> bytes:
    """Constrained Baseline sequence parameter set; crops are in pixels, even."""
    bits = _Bits()
    bits.u(8, 66)  # profile_idc: Baseline
    bits.u(8, 0xC0)  # constraint_set0 and set1: Constrained Baseline
    bits.u(8, level)
    bits.ue(0)  # seq_parameter_set_id
    bits.ue(0)  # log2_max_frame_num_minus4
    bits.ue(2)  # pic_order_cnt_type 2: output order is decoding order, no reordering
    bits.ue(1)  # max_num_ref_frames: an IDR picture is always a reference
    bits.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    bits.ue(mbw - 1)  # pic_width_in_mbs_minus1
    bits.ue(mbh - 1)  # pic_height_in_map_units_minus1
    bits.u(1, 1)  # frame_mbs_only_flag
    bits.u(1, 1)  # direct_8x8_inference_flag
    cropping = bool(crop_x or crop_y)
    bits.u(1, int(cropping))
    if cropping:  # offsets count 2-pixel units in 4:2:0
        for offset in (0, crop_x // 2, 0, crop_y // 2):  # left, right, top, bottom
            bits.ue(offset)
    bits.u(1, 0)  # vui_parameters_present_flag
    bits.trailing()
    return _nal(3, 7, bits.to_bytes())


def _pps() -> bytes:
    """Picture parameter set: CAVLC, one slice group, deblocking switchable per slice."""
    bits = _Bits()
    bits.ue(0)  # pic_parameter_set_id
    bits.ue(0)  # seq_parameter_set_id
    bits.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    bits.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    bits.ue(0)  # num_slice_groups_minus1
    bits.ue(0)  # num_ref_idx_l0_default_active_minus1
    bits.ue(0)  # num_ref_idx_l1_default_active_minus1
    bits.u(1, 0)  # weighted_pred_flag
    bits.u(2, 0)  # weighted_bipred_idc
    bits.se(0)  # pic_init_qp_minus26
    bits.se(0)  # pic_init_qs_minus26
    bits.se(0)  # chroma_qp_index_offset
    bits.u(1, 1)  # deblocking_filter_control_present_flag
    bits.u(1, 0)  # constrained_intra_pred_flag
    bits.u(1, 0)  # redundant_pic_cnt_present_flag
    bits.trailing()
    return _nal(3, 8, bits.to_bytes())


def _scatter(out: bytearray, plane: bytes, width: int, block: int, base: int) -> None:
    """Copy every block x block tile of a plane into its macroblock slot of out at once."""
    height = len(plane) // width
    for r in range(block):
        # Row r of every tile, tiles in raster order: column c of tile n is at n*block + c.
        rows = b"".join(
            plane[(y + r) * width : (y + r + 1) * width] for y in range(0, height, block)
        )
        for c in range(block):
            out[base + r * block + c :: _MB_BYTES] = rows[c::block]


def _macroblocks(y: bytes, cb: bytes, cr: bytes, width: int) -> bytearray:
    """Every macroblock of a frame, each as 0D 00 then 256 Y, 64 Cb and 64 Cr samples."""
    count = len(y) // 256
    out = bytearray(_MB_BYTES * count)
    # Once byte-aligned, mb_type I_PCM is ue(25) = 000011010, and 7 pcm_alignment_zero_bits
    # follow: exactly the bytes 0D 00 in front of each macroblock's samples.
    out[0::_MB_BYTES] = b"\x0d" * count
    _scatter(out, y, width, 16, 2)
    _scatter(out, cb, width // 2, 8, 2 + 256)
    _scatter(out, cr, width // 2, 8, 2 + 256 + 64)
    return out


def _idr_slice(macroblocks: bytearray, idr_pic_id: int) -> bytes:
    """One IDR picture as a single I slice of I_PCM macroblocks."""
    bits = _Bits()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(7)  # slice_type: I, and all slices of the picture are I
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, 0)  # frame_num, log2_max_frame_num bits; 0 in an IDR picture
    bits.ue(idr_pic_id)  # must differ between consecutive IDR pictures
    bits.u(1, 0)  # no_output_of_prior_pics_flag
    bits.u(1, 0)  # long_term_reference_flag
    bits.se(0)  # slice_qp_delta
    bits.ue(1)  # disable_deblocking_filter_idc: I_PCM samples are final
    bits.ue(25)  # mb_type of the first macroblock: I_PCM (not yet byte-aligned here)
    bits.align()  # pcm_alignment_zero_bits
    # The first macroblock's own 0D 00 is replaced by the header bits above; the stop bit
    # of rbsp_slice_trailing_bits lands on a byte boundary after the last PCM sample.
    return _nal(3, 5, bits.to_bytes() + macroblocks[2:] + b"\x80")


def _yuv_frame(prompt: str, width: int, height: int, t: float) -> tuple[bytes, bytes, bytes]:
    """The Y, Cb and Cr planes (4:2:0) of the prompt's scene at time t."""
    scene = _scene(prompt)
    return (
        _render(scene, width, height, t, _LUMA),
        _render(scene, width // 2, height // 2, t, _CB),
        _render(scene, width // 2, height // 2, t, _CR),
    )


# --------------------------------------------------------------------------- MP4 muxer

_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *parts: bytes) -> bytes:
    """An ISO BMFF box: 32-bit size, four-character type, payload."""
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    """A box whose payload starts with a version byte and 24 bits of flags."""
    return _box(kind, struct.pack(">I", version << 24 | flags), *parts)


@dataclass(frozen=True)
class _Track:
    """What the moov box says about the one video track."""

    width: int
    height: int
    level: int
    sps: bytes
    pps: bytes
    delta: int  # frame duration in _TIMESCALE units
    sizes: tuple[int, ...]  # sample sizes in bytes


def _avc1(track: _Track) -> bytes:
    """The avc1 sample entry with its avcC decoder configuration."""
    avcc = _box(
        b"avcC",
        bytes((1, 66, 0xC0, track.level, 0xFF, 0xE1)),  # 4-byte NAL lengths, one SPS
        struct.pack(">H", len(track.sps)),
        track.sps,
        b"\x01",  # one PPS
        struct.pack(">H", len(track.pps)),
        track.pps,
    )
    name = b"tokenhot I_PCM"
    return _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),
        struct.pack(">HHIIIH", track.width, track.height, 0x480000, 0x480000, 0, 1),
        bytes((len(name),)) + name.ljust(31, b"\x00"),
        struct.pack(">Hh", 0x18, -1),  # depth, pre_defined
        avcc,
    )


def _stbl(track: _Track, offsets: list[int]) -> bytes:
    """Sample table: one sample per chunk, every sample a sync sample."""
    n = len(track.sizes)
    return _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(track)),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, n, track.delta)),
        _full_box(b"stss", 0, 0, struct.pack(f">I{n}I", n, *range(1, n + 1))),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1)),
        _full_box(b"stsz", 0, 0, struct.pack(f">II{n}I", 0, n, *track.sizes)),
        _full_box(b"stco", 0, 0, struct.pack(f">I{n}I", n, *offsets)),
    )


def _moov(track: _Track, offsets: list[int]) -> bytes:
    """The movie box for a single video track."""
    media_duration = track.delta * len(track.sizes)
    ms = round(media_duration * 1000 / _TIMESCALE)
    mvhd = _full_box(
        b"mvhd", 0, 0, struct.pack(">IIIIIH", 0, 0, 1000, ms, 0x10000, 0x100),
        bytes(10), _MATRIX, bytes(24), struct.pack(">I", 2),
    )  # fmt: skip
    tkhd = _full_box(
        b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, 1, 0, ms), bytes(16), _MATRIX,
        struct.pack(">II", track.width << 16, track.height << 16),
    )  # fmt: skip
    mdhd = _full_box(
        b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, media_duration, 0x55C4, 0)
    )
    hdlr = _full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    minf = _box(b"minf", _full_box(b"vmhd", 0, 1, bytes(8)), dinf, _stbl(track, offsets))
    return _box(b"moov", mvhd, _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf)))


def _mux(track: _Track, samples: list[bytes]) -> bytes:
    """ftyp, moov, mdat: moov first so playback can start before the download ends."""
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp42")
    # stco has fixed-width entries, so a moov with dummy offsets has the final size.
    first = len(ftyp) + len(_moov(track, [0] * len(samples))) + 8
    offsets, position = [], first
    for sample in samples:
        offsets.append(position)
        position += len(sample)
    return ftyp + _moov(track, offsets) + _box(b"mdat", *samples)


def _video_side(side: int) -> int:
    """A frame side clamped to 16..1920 and made even, as 4:2:0 cropping needs."""
    side = min(_MAX_VIDEO_SIDE, max(16, side))
    return side + side % 2


def mp4(
    prompt: str, seconds: float = 5.0, width: int = 320, height: int = 176, fps: int = 4
) -> bytes:
    """A playable H.264 (I_PCM) MP4 animating the prompt's scene; fps drops to stay under 8 MB."""
    if not (0 < seconds <= 3600 and math.isfinite(seconds)):
        raise ValueError(f"video length must be more than 0 and at most 3600 s, not {seconds}")
    if not 1 <= fps <= 60:
        raise ValueError(f"video frame rate must be 1..60 fps, not {fps}")
    width, height = _video_side(width), _video_side(height)
    mbw, mbh = -(-width // 16), -(-height // 16)
    sample_bytes = 4 + 16 + _MB_BYTES * mbw * mbh  # length prefix, NAL and slice header
    frames = max(1, min(round(seconds * fps), _MAX_MP4_BYTES // sample_bytes))
    delta = max(1, round(seconds * _TIMESCALE / frames))
    level = _level(mbw, mbh, frames / seconds)
    samples = []
    for index in range(frames):
        planes = _yuv_frame(prompt, 16 * mbw, 16 * mbh, index * delta / _TIMESCALE)
        nal = _idr_slice(_macroblocks(*planes, 16 * mbw), index % 2)
        samples.append(struct.pack(">I", len(nal)) + nal)
    sps = _sps(mbw, mbh, 16 * mbw - width, 16 * mbh - height, level)
    sizes = tuple(len(sample) for sample in samples)
    return _mux(_Track(width, height, level, sps, _pps(), delta, sizes), samples)


# --------------------------------------------------------------------------- MP4 reader


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box between start and end."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError("not an MP4 file: a box runs past its parent")
        yield kind, pos + header, pos + size
        pos += size


def _child(data: bytes, span: tuple[int, int], *path: bytes) -> tuple[int, int]:
    """The payload span of the first box along path under span, or ValueError."""
    for kind in path:
        found = next(((a, b) for k, a, b in _boxes(data, *span) if k == kind), None)
        if found is None:
            raise ValueError(f"not a playable MP4: no {kind.decode('latin-1')} box")
        span = found
    return span


def _video_trak(data: bytes, moov: tuple[int, int]) -> tuple[int, int]:
    """The payload span of the first video track."""
    for kind, a, b in _boxes(data, *moov):
        if kind == b"trak":
            hdlr_start, _ = _child(data, (a, b), b"mdia", b"hdlr")
            if data[hdlr_start + 8 : hdlr_start + 12] == b"vide":
                return a, b
    raise ValueError("not a video MP4: no video track")


def _media_seconds(data: bytes, mdhd: tuple[int, int]) -> float:
    """Track duration from mdhd, versions 0 and 1."""
    start = mdhd[0]
    if data[start] == 1:
        timescale, duration = struct.unpack_from(">IQ", data, start + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, start + 12)
    return duration / timescale if timescale else 0.0


def mp4_info(data: bytes) -> dict[str, Any]:
    """{'width', 'height', 'frames', 'duration', 'codec'} of an MP4's first video track."""
    data = bytes(data)
    top = [kind for kind, _, _ in _boxes(data, 0, len(data))]
    if b"ftyp" not in top or b"moov" not in top:
        raise ValueError("not an MP4 file: no ftyp and moov boxes")
    trak = _video_trak(data, _child(data, (0, len(data)), b"moov"))
    stbl = _child(data, trak, b"mdia", b"minf", b"stbl")
    entry = _child(data, stbl, b"stsd")[0] + 8  # skip version/flags and entry_count
    width, height = struct.unpack_from(">HH", data, entry + 32)
    frames = struct.unpack_from(">I", data, _child(data, stbl, b"stsz")[0] + 8)[0]
    return {
        "width": width,
        "height": height,
        "frames": frames,
        "duration": _media_seconds(data, _child(data, trak, b"mdia", b"mdhd")),
        "codec": data[entry + 4 : entry + 8].decode("latin-1"),
    }
