"""Scenes for the simulator's pictures and videos: a gradient and a few shapes per prompt.

A scene is seeded from the SHA-256 of the prompt, so the same prompt always paints the same
picture; `render` paints one colour channel of it at a moment in time (shapes move in video).
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

RGB = tuple[float, float, float]
Place = tuple[float, float, float]  # centre x, centre y, radius, in pixels
Channel = tuple[float, float, float, float]  # see RED


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
class Scene:
    """A prompt's picture: a four-corner gradient with cosine bands, and a few moving shapes."""

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
def scene_for(prompt: str) -> Scene:
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
    return Scene(corners, waves, drift, shapes)


# A channel is affine in RGB: offset + kr*r + kg*g + kb*b, in 8-bit code values. Keeping it as
# coefficients lets a gradient's table be one linear ramp instead of 256 colour mixes.
RED: Channel = (0.0, 255.0, 0.0, 0.0)
GREEN: Channel = (0.0, 0.0, 255.0, 0.0)
BLUE: Channel = (0.0, 0.0, 0.0, 255.0)
# BT.601 limited range: what an H.264 decoder assumes when the SPS carries no VUI.
LUMA: Channel = (16.0, 65.481, 128.553, 24.966)
CB: Channel = (128.0, -37.797, -74.203, 112.0)
CR: Channel = (128.0, 112.0, -93.786, -18.214)


def _code(channel: Channel, c: RGB) -> float:
    """The channel's code value for a colour, unrounded."""
    return channel[0] + channel[1] * c[0] + channel[2] * c[1] + channel[3] * c[2]


def _ramp(start: float, end: float) -> bytes:
    """256 bytes going linearly from code value start to end, kept within 1..255."""
    # Never 0: early H.264 drafts forbade I_PCM samples of 0, and PNG loses nothing.
    step = (end - start) / 255
    return bytes(min(255, max(1, round(start + step * i))) for i in range(256))


@lru_cache(maxsize=32)
def _level_tables(scene: Scene, channel: Channel, levels: int) -> tuple[bytes, ...]:
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


def render(scene: Scene, width: int, height: int, t: float, channel: Channel) -> bytes:
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
