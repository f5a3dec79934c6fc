"""Media the client sends and receives: inputs checked (format by their first bytes, size
before reading), data URIs, WAV wrapping."""

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

from ._config import MAX_BODY_BYTES
from ._exceptions import InvalidInputError

_DATA_URI = re.compile(r"^data:([\w/+.;=-]+?)(;base64)?,(.*)$", re.S)
MARKDOWN_DATA_URI = re.compile(r"!\[[^\]]*\]\((data:[^;)]+;base64,[A-Za-z0-9+/=\s]+)\)")
# The largest input whose base64 still fits the gateway's request cap (JSON bodies inline
# files as data URIs); checked before a file is read, so a huge file costs no memory.
MAX_MEDIA_BYTES = MAX_BODY_BYTES * 3 // 4


@dataclass(frozen=True)
class Signature:
    """How one format starts: ``magic`` at ``offset`` (under ``mask``), ``also`` at ``at``."""

    mime: str
    name: str  # short, for the "expected ..." list
    label: str  # what a file of this format is, in a sentence
    magic: bytes
    offset: int = 0
    also: bytes = b""
    at: int = 0
    mask: bytes = b""

    def matches(self, head: bytes) -> bool:
        """Whether ``head`` (a file's first bytes) is in this format."""
        window = head[self.offset : self.offset + len(self.magic)]
        if self.mask:
            window = bytes(a & b for a, b in zip(window, self.mask, strict=False))
        return window == self.magic and head[self.at : self.at + len(self.also)] == self.also

    @property
    def bits(self) -> int:
        """How many bits this row checks: when several rows match, the narrowest wins."""
        magic = sum(bin(b).count("1") for b in self.mask) if self.mask else 8 * len(self.magic)
        return magic + 8 * len(self.also)


_S = Signature
# The one sniffing table, most common format of each kind first (that is the order in which
# messages list them); when several rows match, the narrowest (`Signature.bits`) wins.
SIGNATURES: tuple[Signature, ...] = (
    _S("image/png", "PNG", "a PNG image", b"\x89PNG\r\n\x1a\n"),
    _S("image/jpeg", "JPEG", "a JPEG image", b"\xff\xd8\xff"),
    _S("image/gif", "GIF", "a GIF image", b"GIF87a"),
    _S("image/gif", "GIF", "a GIF image", b"GIF89a"),
    _S("image/webp", "WebP", "a WebP image", b"RIFF", also=b"WEBP", at=8),
    _S("image/bmp", "BMP", "a BMP image", b"BM", also=b"\0\0\0\0", at=6),
    _S("image/tiff", "TIFF", "a TIFF image", b"II*\0"),
    _S("image/tiff", "TIFF", "a TIFF image", b"MM\0*"),
    _S("image/heic", "HEIC", "a HEIC image", b"ftypheic", 4),
    _S("image/heic", "HEIC", "a HEIC image", b"ftypmif1", 4),
    _S("image/avif", "AVIF", "an AVIF image", b"ftypavif", 4),
    _S("audio/wav", "WAV", "a WAV audio file", b"RIFF", also=b"WAVE", at=8),
    _S("audio/mpeg", "MP3", "an MP3 audio file", b"ID3"),
    _S("audio/mpeg", "MP3", "an MP3 audio file", b"\xff\xe0", mask=b"\xff\xe0"),  # frame sync
    _S("audio/mp4", "M4A", "an M4A audio file", b"ftypM4A ", 4),
    _S("audio/aac", "AAC", "an AAC audio file", b"\xff\xf0", mask=b"\xff\xf6"),  # ADTS
    _S("audio/ogg", "OGG", "an Ogg audio file", b"OggS"),
    _S("audio/flac", "FLAC", "a FLAC audio file", b"fLaC"),
    _S("audio/aiff", "AIFF", "an AIFF audio file", b"FORM", also=b"AIFF", at=8),
    _S("video/mp4", "MP4", "an MP4 video", b"ftyp", 4),
    _S("video/quicktime", "MOV", "a QuickTime (MOV) video", b"ftypqt  ", 4),
    _S("video/quicktime", "MOV", "a QuickTime (MOV) video", b"moov", 4),
    _S("video/quicktime", "MOV", "a QuickTime (MOV) video", b"mdat", 4),
    _S("video/webm", "WebM", "a WebM video", b"\x1a\x45\xdf\xa3"),
    _S("video/x-msvideo", "AVI", "an AVI video", b"RIFF", also=b"AVI ", at=8),
)
# What each kind of input must be: mime types (or their prefixes), and how to say so.
EXPECTED: dict[str, tuple[tuple[str, ...], str]] = {
    "image": (("image/",), "a {} image"),
    "mask": (("image/",), "a {} image"),
    "video": (("video/",), "an {} video"),
    "audio": (("audio/", "video/mp4", "video/webm"), "{} audio"),  # Whisper reads these two too
}


@dataclass(frozen=True)
class Media:
    """An input file: bytes with a mime type, or a URL the gateway fetches itself."""

    data: bytes | None = None
    mime: str = "application/octet-stream"
    url: str | None = None
    name: str = "file"
    what: str = "file"  # the kind of input (a key of EXPECTED), checked when a URL is fetched

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


def sniff(data: bytes) -> Signature | None:
    """The format of ``data``, from its first bytes."""
    head = data[:16]
    return max((s for s in SIGNATURES if s.matches(head)), key=lambda s: s.bits, default=None)


def sniff_mime(data: bytes, default: str = "application/octet-stream") -> str:
    """The mime type from a file's first bytes."""
    found = sniff(data)
    return found.mime if found else default


def describe(data: bytes) -> str:
    """What ``data`` is, for a message: its format, or empty, HTML, SVG, JSON, text."""
    found = sniff(data)
    if found:
        return found.label
    if not data:
        return "empty"
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<!doctype html") or b"<html" in head:
        return "an HTML page"
    if b"<svg" in head:
        return "an SVG drawing"
    if _is_text(data[:1024]):
        return "JSON text" if head.startswith((b"{", b"[")) else "text"
    return "data of an unknown format"


def _is_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut at the window's end
    return True


def expected(what: str) -> str:
    """The formats an input of kind ``what`` may have, e.g. "a PNG, JPEG, ... image"."""
    prefixes, phrase = EXPECTED[what]
    names = list(dict.fromkeys(s.name for s in SIGNATURES if s.mime.startswith(prefixes)))
    return phrase.format(", ".join(names[:-1]) + f" or {names[-1]}")


def check_kind(
    data: bytes, what: str, source: str, default: str = "application/octet-stream"
) -> str:
    """The mime type of ``data``, which must be a ``what``; else one clear InvalidInputError."""
    found = sniff(data)
    if what not in EXPECTED:  # a kind with no expectation: sniff, else trust ``default``
        return found.mime if found else default
    prefixes = EXPECTED[what][0]
    if found and found.mime.startswith(prefixes):
        return found.mime
    raise InvalidInputError(
        f"The {what} {source} is {describe(data)}, not {expected(what)}.",
        hint="Check the path or URL: it must lead to the file itself.",
    )


def check_media_size(size: int, what: str, source: str, *, exact: bool = True) -> None:
    """Refuse an input too big for any request, before it is read (``exact``: size known)."""
    if size > MAX_MEDIA_BYTES:
        said = f"{size / 2**20:,.0f} MB" if exact else f"over {MAX_MEDIA_BYTES / 2**20:,.0f} MB"
        raise InvalidInputError(
            f"The {what} {source} is {said}; a request to the gateway can carry "
            f"at most {MAX_MEDIA_BYTES // 2**20} MB of file.",
            hint="Pass a smaller file (or a URL, which the gateway fetches itself).",
        )


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
    """Accept a path, URL, data URI, bytes, file object, PIL image or numpy array.

    Local inputs are checked here, before anything is sent: their size (before reading)
    and their first bytes, which must be a ``what`` (see `EXPECTED`).  URLs are checked
    when they are fetched (`check_kind`); the gateway fetches the others itself.
    """
    if isinstance(obj, Media):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        check_media_size(memoryview(obj).nbytes, what, "data")  # before copying it
        return _checked(bytes(obj), what, "data", what)
    if isinstance(obj, Path):
        return _from_path(obj, what)
    if isinstance(obj, str):
        return _from_text(obj.strip(), what)
    if hasattr(obj, "read"):
        return _from_file(obj, what)
    if hasattr(obj, "save") and hasattr(obj, "mode"):  # a PIL image
        buf = io.BytesIO()
        obj.save(buf, format="PNG")
        return Media(buf.getvalue(), "image/png", name=f"{what}.png", what=what)
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):  # a numpy array
        return Media(array_to_png(obj), "image/png", name=f"{what}.png", what=what)
    raise InvalidInputError(
        f"Cannot use a {type(obj).__name__} as {what}.",
        hint="Pass a file path, URL, bytes, a PIL image or a numpy array.",
    )


def load_inputs(images: Any) -> list[Media]:
    """No image, one, or a list or tuple of them, as Media (each checked by `load_media`)."""
    if images is None:
        return []
    if isinstance(images, (list, tuple)):
        return [load_media(i) for i in images]
    return [load_media(images)]


def _checked(data: bytes, what: str, source: str, name: str) -> Media:
    mime = check_kind(data, what, source, _mime_from_name(name))
    return Media(data, mime, name=name if "." in name else f"{name}{_ext(mime)}", what=what)


def _from_text(text: str, what: str) -> Media:
    if text.startswith("data:"):
        check_media_size(len(text) * 3 // 4, what, "data: URI")  # before decoding it
        data, _ = decode_data_uri(text)
        return _checked(data, what, "data: URI", what)
    if re.match(r"^https?://", text, re.I):
        name = Path(text.split("?")[0]).name
        return Media(url=text, mime=_mime_from_name(text), name=name, what=what)
    return _from_path(Path(text).expanduser(), what)


def _from_file(obj: Any, what: str) -> Media:
    name = Path(str(getattr(obj, "name", what))).name
    data = obj.read(MAX_MEDIA_BYTES + 1)  # never more than one byte past the limit
    data = data.encode() if isinstance(data, str) else bytes(data)
    check_media_size(len(data), what, f"file {name!r}")
    return _checked(data, what, f"file {name!r}", name)


def _from_path(path: Path, what: str) -> Media:
    if not path.is_file():
        raise InvalidInputError(
            f"No {what} file at {str(path)!r}.",
            hint=f"Check the path (relative paths start in {os.getcwd()}), or pass a URL.",
        )
    source = f"file {str(path)!r}"
    check_media_size(path.stat().st_size, what, source)  # before reading: it may be huge
    return _checked(path.read_bytes(), what, source, path.name)


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
