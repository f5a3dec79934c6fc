"""PNG pictures painted from a prompt's scene, and the image sizes the gateway accepts."""

from __future__ import annotations

import struct
import zlib

from ._scene import BLUE, GREEN, RED, render, scene_for

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
    scene = scene_for(prompt)
    rgb = bytearray(3 * width * height)
    for offset, channel in enumerate((RED, GREEN, BLUE)):
        rgb[offset::3] = render(scene, width, height, 0.0, channel)
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
