"""Simulated video: a minimal H.264 Baseline stream in a fast-start MP4, and a reader for it.

Every macroblock is I_PCM (raw samples), one IDR picture per frame, painted from the prompt's
scene; `mp4_info` reads back the size, frame count, duration and codec of any MP4.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._scene import CB, CR, LUMA, render, scene_for

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
    scene = scene_for(prompt)
    return (
        render(scene, width, height, t, LUMA),
        render(scene, width // 2, height // 2, t, CB),
        render(scene, width // 2, height // 2, t, CR),
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
