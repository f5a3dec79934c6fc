"""Media the client sends and receives: image inputs, data URIs, WAV wrapping."""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._exceptions import InvalidInputError

_DATA_URI = re.compile(r"^data:([\w/+.;=-]+?)(;base64)?,(.*)$", re.S)
MARKDOWN_DATA_URI = re.compile(r"!\[[^\]]*\]\((data:[^;)]+;base64,[A-Za-z0-9+/=\s]+)\)")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "audio/wav"),
    (b"ID3", "audio/mpeg"),
    (b"\xff\xfb", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
)


@dataclass(frozen=True)
class Media:
    """An input file: bytes with a mime type, or a URL the gateway fetches itself."""

    data: bytes | None = None
    mime: str = "application/octet-stream"
    url: str | None = None
    name: str = "file"

    def as_url(self) -> str:
        """A URL for JSON bodies: the URL itself, or a base64 data URI."""
        if self.url:
            return self.url
        assert self.data is not None
        return data_uri(self.data, self.mime)

    def as_bytes(self) -> bytes:
        """The bytes, for multipart uploads (URLs must have been downloaded first)."""
        if self.data is None:
            raise InvalidInputError(f"{self.url} is a URL; this endpoint needs a local file.")
        return self.data


def sniff_mime(data: bytes, default: str = "application/octet-stream") -> str:
    """The mime type from a file's first bytes."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            if mime == "audio/wav" and data[8:12] == b"WEBP":
                return "image/webp"
            return mime
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return default


def data_uri(data: bytes, mime: str) -> str:
    """A ``data:`` URI holding ``data``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """(bytes, mime) from a ``data:`` URI."""
    match = _DATA_URI.match(uri.strip())
    if not match:
        raise InvalidInputError("That is not a valid data: URI.")
    mime, is_b64, payload = match.groups()
    mime = mime.split(";")[0] or "application/octet-stream"
    try:
        data = base64.b64decode(re.sub(r"\s+", "", payload)) if is_b64 else payload.encode()
    except binascii.Error:
        raise InvalidInputError("The data: URI has invalid base64.") from None
    return data, mime


def load_media(obj: Any, *, what: str = "image") -> Media:
    """Accept a path, URL, data URI, bytes, file object, PIL image or numpy array."""
    if isinstance(obj, Media):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        return Media(data, sniff_mime(data), name=f"{what}{_ext(sniff_mime(data))}")
    if isinstance(obj, Path):
        return _from_path(obj, what)
    if isinstance(obj, str):
        text = obj.strip()
        if text.startswith("data:"):
            data, mime = decode_data_uri(text)
            return Media(data, mime, name=f"{what}{_ext(mime)}")
        if re.match(r"^https?://", text, re.I):
            return Media(url=text, mime=_mime_from_name(text), name=Path(text.split("?")[0]).name)
        return _from_path(Path(text).expanduser(), what)
    if hasattr(obj, "read"):
        data = obj.read()
        name = Path(str(getattr(obj, "name", what))).name
        return Media(data, sniff_mime(data, _mime_from_name(name)), name=name)
    if hasattr(obj, "save") and hasattr(obj, "mode"):  # a PIL image
        buf = io.BytesIO()
        obj.save(buf, format="PNG")
        return Media(buf.getvalue(), "image/png", name=f"{what}.png")
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):  # a numpy array
        return Media(array_to_png(obj), "image/png", name=f"{what}.png")
    raise InvalidInputError(
        f"Cannot use a {type(obj).__name__} as {what}.",
        hint="Pass a file path, URL, bytes, a PIL image or a numpy array.",
    )


def _from_path(path: Path, what: str) -> Media:
    if not path.is_file():
        raise InvalidInputError(
            f"No {what} file at {str(path)!r}.",
            hint=f"Check the path (relative paths start in {os.getcwd()}), or pass a URL.",
        )
    data = path.read_bytes()
    return Media(data, sniff_mime(data, _mime_from_name(path.name)), name=path.name)


def _mime_from_name(name: str) -> str:
    suffix = Path(name.split("?")[0]).suffix.lower()
    return {
        ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
        ".gif": "image/gif", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
        ".ogg": "audio/ogg", ".flac": "audio/flac", ".webm": "audio/webm", ".mp4": "video/mp4",
        ".mov": "video/quicktime",
    }.get(suffix, "application/octet-stream")  # fmt: skip


def _ext(mime: str) -> str:
    return {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "audio/wav": ".wav",
            "audio/mpeg": ".mp3", "video/mp4": ".mp4"}.get(mime, "")  # fmt: skip


def array_to_png(array: Any) -> bytes:
    """Encode an (H, W), (H, W, 3) or (H, W, 4) array as PNG (floats in 0..1 are scaled)."""
    shape = tuple(array.shape)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3, 4)):
        raise InvalidInputError(f"An image array must be HxW, HxWx3 or HxWx4, not {shape}.")
    if str(array.dtype).startswith("float"):
        array = (array.clip(0, 1) * 255).round()
    pixels = array.astype("uint8")
    channels = 1 if len(shape) == 2 else shape[2]
    color = {1: 0, 3: 2, 4: 6}[channels]
    return encode_png(shape[1], shape[0], pixels.tobytes(), color)


def encode_png(width: int, height: int, pixels: bytes, color_type: int = 2) -> bytes:
    """A PNG from raw 8-bit rows (colour type 0 grey, 2 RGB, 6 RGBA)."""
    stride = width * {0: 1, 2: 3, 6: 4}[color_type]
    rows = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def pcm_to_wav(pcm: bytes, rate: int = 24000, channels: int = 1) -> bytes:
    """Wrap signed 16-bit little-endian PCM in a 44-byte RIFF/WAVE header."""
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, channels, rate,
        rate * channels * 2, channels * 2, 16, b"data", len(pcm),
    )  # fmt: skip
    return header + pcm


def rate_from_mime(mime: str, default: int = 24000) -> int:
    """The sample rate in a mime type such as ``audio/L16;codec=pcm;rate=24000``."""
    match = re.search(r"rate=(\d+)", mime or "")
    return int(match.group(1)) if match else default


def extract_markdown_images(text: str) -> tuple[list[tuple[bytes, str]], str]:
    """Images embedded as Markdown data URIs, and the text without them (spec §4.5)."""
    images = [decode_data_uri(m.group(1)) for m in MARKDOWN_DATA_URI.finditer(text)]
    rest = MARKDOWN_DATA_URI.sub("", text).strip()
    return images, rest
