"""Tests of the simulator's media: PNG, image sizes, speech round trips, subtitles, MP4/H.264."""

from __future__ import annotations

import io
import itertools
import random
import struct
import wave
import zlib
from collections.abc import Iterator

import pytest

from tokenhot_jupyter.simulator import _mp4, media
from tokenhot_jupyter.simulator.media import Transcript

# --------------------------------------------------------------------------- helpers


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of each chunk of a PNG, checking every CRC."""
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(kind + body), f"bad CRC on {kind!r}"
        yield kind, body
        pos += 12 + length


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw RGB bytes of a PNG written with filter type 0."""
    chunks = list(png_chunks(data))
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour) == (8, 2)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (3 * width + 1)
    stride = 3 * width + 1
    assert all(raw[y * stride] == 0 for y in range(height))
    return width, height, b"".join(raw[y * stride + 1 : (y + 1) * stride] for y in range(height))


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, box start, box end) of the boxes in data[start:end] (32-bit sizes only)."""
    end = len(data) if end is None else end
    found, pos = [], start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert size >= 8 and pos + size <= end
        found.append((kind, pos, pos + size))
        pos += size
    assert pos == end
    return found


def box(data: bytes, *path: bytes) -> tuple[int, int]:
    """Payload start and end of the box at path, from the top of the file."""
    start, end = 0, len(data)
    for kind in path:
        start, end = next((a + 8, b) for k, a, b in boxes(data, start, end) if k == kind)
    return start, end


def table(data: bytes, kind: bytes, fmt: str) -> list[int]:
    """The entries of a full-box table (stco, stsz...) under moov/trak/mdia/minf/stbl."""
    start, _ = box(data, b"moov", b"trak", b"mdia", b"minf", b"stbl", kind)
    skip = 12 if kind == b"stsz" else 8  # version/flags, [sample_size,] entry_count
    (count,) = struct.unpack_from(">I", data, start + skip - 4)
    return list(struct.unpack_from(f">{count}{fmt}", data, start + skip))


def samples(data: bytes) -> list[bytes]:
    """Each sample of the video track, located through stco and stsz."""
    offsets, sizes = table(data, b"stco", "I"), table(data, b"stsz", "I")
    return [data[o : o + s] for o, s in zip(offsets, sizes, strict=True)]


def parameter_sets(data: bytes) -> tuple[bytes, bytes]:
    """The SPS and PPS NAL units stored in the avcC box."""
    start, _ = box(data, b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")
    avcc = data.index(b"avcC", start) + 4
    version, profile, _compat, _level, length_size, sps_count = data[avcc : avcc + 6]
    assert (version, profile, length_size & 3, sps_count & 31) == (1, 66, 3, 1)
    (sps_len,) = struct.unpack_from(">H", data, avcc + 6)
    pps_at = avcc + 8 + sps_len
    (pps_len,) = struct.unpack_from(">H", data, pps_at + 1)
    assert data[pps_at] == 1, "one PPS"
    return data[avcc + 8 : pps_at], data[pps_at + 3 : pps_at + 3 + pps_len]


def unescape(nal: bytes) -> bytes:
    """Remove emulation-prevention bytes: 00 00 03 becomes 00 00."""
    out, zeros = bytearray(), 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """Reads u(n), ue(v) and se(v) from an RBSP, as a decoder would."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = value << 1 | (self.data[self.pos // 8] >> (7 - self.pos % 8)) & 1
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def parse_sps(nal: bytes) -> dict[str, int]:
    """The fields of our Baseline SPS, read back independently of the writer."""
    r = BitReader(unescape(nal[1:]))
    sps = {"profile": r.u(8), "constraints": r.u(8), "level": r.u(8), "id": r.ue()}
    sps |= {"log2_frame_num": r.ue() + 4, "poc_type": r.ue()}
    assert sps["poc_type"] == 2
    sps |= {"refs": r.ue(), "gaps": r.u(1), "mbw": r.ue() + 1, "mbh": r.ue() + 1}
    sps |= {"frame_mbs_only": r.u(1), "direct8x8": r.u(1), "crop": r.u(1)}
    if sps["crop"]:
        sps |= {"left": r.ue(), "right": r.ue(), "top": r.ue(), "bottom": r.ue()}
    sps |= {"vui": r.u(1), "stop": r.u(1)}
    return sps


def read_slice(nal: bytes, log2_frame_num: int, mb_count: int) -> tuple[int, list[bytes]]:
    """idr_pic_id and the 384 I_PCM samples of every macroblock of an IDR slice."""
    r = BitReader(unescape(nal[1:]))
    assert (r.ue(), r.ue(), r.ue()) == (0, 7, 0)  # first_mb, slice_type I, pps id
    assert r.u(log2_frame_num) == 0
    idr_pic_id = r.ue()
    assert (r.u(1), r.u(1), r.se(), r.ue()) == (0, 0, 0, 1)  # marking, qp delta, no deblock
    blocks = []
    for _ in range(mb_count):
        assert r.ue() == 25, "mb_type must be I_PCM"
        while r.pos % 8:
            assert r.u(1) == 0, "pcm_alignment_zero_bit"
        blocks.append(r.data[r.pos // 8 : r.pos // 8 + 384])
        r.pos += 384 * 8
    assert r.data[r.pos // 8 :] == b"\x80", "rbsp_slice_trailing_bits"
    return idr_pic_id, blocks


def tile(plane: bytes, width: int, block: int, n: int) -> bytes:
    """Tile n (raster order) of a plane, block x block, as the encoder should lay it out."""
    per_row = width // block
    x, y = (n % per_row) * block, (n // per_row) * block
    return b"".join(plane[(y + r) * width + x : (y + r) * width + x + block] for r in range(block))


@pytest.fixture(scope="module")
def video() -> bytes:
    return media.mp4("a lighthouse at night", seconds=2.0, width=96, height=64, fps=4)


# --------------------------------------------------------------------------- PNG


def test_png_is_a_valid_rgb_png_of_the_requested_size() -> None:
    data = media.png("a red fox", 64, 48)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, pixels = png_pixels(data)
    assert (width, height, len(pixels)) == (64, 48, 64 * 48 * 3)


def test_png_is_deterministic_and_prompt_dependent() -> None:
    fox = png_pixels(media.png("a red fox", 64, 64))[2]
    assert media.png("a red fox", 64, 64) == media.png("a red fox", 64, 64)
    whale = png_pixels(media.png("a blue whale", 64, 64))[2]
    differing = sum(abs(a - b) > 24 for a, b in zip(fox, whale, strict=True))
    assert differing > len(fox) // 4, "different prompts should look clearly different"


def test_png_has_a_picture_not_a_flat_fill() -> None:
    pixels = png_pixels(media.png("a picture", 64, 64))[2]
    assert len({pixels[i : i + 3] for i in range(0, len(pixels), 3)}) > 50


def test_png_caps_sides_and_rejects_empty() -> None:
    width, height, _ = png_pixels(media.png("wide", 5000, 1))
    assert (width, height) == (4096, 1)
    with pytest.raises(ValueError):
        media.png("none", 0, 10)


# --------------------------------------------------------------------------- image_size


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1024x1024", (1024, 1024)),
        ("1664*928", (1664, 928)),
        (" 512X768 ", (512, 768)),
        ("1280×720", (1280, 720)),
        ("1K", (1024, 1024)),
        ("2K", (2048, 2048)),
        ("3k", (3072, 3072)),
        ("4K", (4096, 4096)),
        ("16:9", (1024, 576)),
        ("9:16", (576, 1024)),
        ("1:1", (1024, 1024)),
        ("4:3", (1024, 768)),
        ("21:9", (1024, 432)),
        ("auto", (1024, 1024)),
        (None, (1024, 1024)),
        ("", (1024, 1024)),
    ],
)
def test_image_size_parses_gateway_sizes(size: str | None, expected: tuple[int, int]) -> None:
    assert media.image_size(size) == expected


def test_image_size_auto_uses_the_default() -> None:
    assert media.image_size("auto", (512, 256)) == (512, 256)
    assert media.image_size(None, (512, 256)) == (512, 256)


@pytest.mark.parametrize(
    "size", ["big", "1024", "0x512", "-5x5", "5K", "1024x", "x1024", "8192x8192", "1:0", "1:100"]
)
def test_image_size_rejects_nonsense(size: str) -> None:
    with pytest.raises(ValueError, match="image size"):
        media.image_size(size)


# --------------------------------------------------------------------------- speech

TEXTS = {
    "ascii": "Hello there. This is the simulator speaking!",
    "chinese": "你好，世界。今天天气很好！",
    "emoji": "Rockets 🚀 and cats 🐈‍⬛ — done.",
    "empty": "",
    "long": ("The quick brown fox jumps over the lazy dog. " * 45)[:2000],
}


@pytest.mark.parametrize("rate", [16000, 24000, 44100])
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_speech_round_trips_through_wav_and_raw_pcm(name: str, rate: int) -> None:
    text = TEXTS[name]
    assert media.transcribe_audio(media.speech_wav(text, rate)).text == text
    assert media.transcribe_audio(media.speech_pcm(text, rate), rate_hint=rate).text == text


def test_speech_wav_is_a_standard_wav() -> None:
    data = media.speech_wav("hi", 16000)
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[36:40] == b"data"
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert w.getnframes() * 2 == len(data) - 44


def test_speech_is_moderate_compact_and_starts_softly() -> None:
    text = "x" * 200
    pcm = media.speech_pcm(text, 24000)
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    assert max(abs(s) for s in samples) <= 0.31 * 32767
    assert max(abs(s) for s in samples[:24]) < 1000, "faded in, no click"
    assert len(samples) / 24000 <= 0.25 + 0.025 * len(text)


def test_raw_pcm_defaults_to_24000_hz() -> None:
    assert media.transcribe_audio(media.speech_pcm("default rate")).text == "default rate"


def test_speech_survives_stereo_extra_chunks_and_leading_silence() -> None:
    pcm = bytes(2 * 3000) + media.speech_pcm("stereo and padded", 48000)
    stereo = bytearray(2 * len(pcm))
    for offset in (0, 2):
        stereo[offset::4], stereo[offset + 1 :: 4] = pcm[0::2], pcm[1::2]
    data = bytearray(media.wav(bytes(stereo), 48000, channels=2))
    junk = b"LIST" + struct.pack("<I", 5) + b"abcde\x00"  # odd size, padded
    data[12:12] = junk
    data[4:8] = struct.pack("<I", len(data) - 8)
    assert media.transcribe_audio(bytes(data)).text == "stereo and padded"


def test_damaged_speech_is_not_misread() -> None:
    pcm = bytearray(media.speech_pcm("integrity matters", 24000))
    symbol = 480  # 10 ms of 16-bit samples at 24 kHz
    at = len(pcm) // 2 // symbol * symbol  # a symbol boundary inside the text
    first, second = pcm[at : at + symbol], pcm[at + symbol : at + 2 * symbol]
    assert first != second
    pcm[at : at + symbol] = second  # still a valid tone, so only the CRC can notice
    transcript = media.transcribe_audio(media.wav(bytes(pcm), 24000))
    assert transcript.text.startswith("[simulated transcript:")


def tone_wav(seconds: float, rate: int = 16000) -> bytes:
    """A WAV of a plain 1 kHz square-ish wave: sound with no text in it."""
    period = rate // 1000
    cycle = struct.pack("<h", 8000) * (period // 2) + struct.pack("<h", -8000) * (period // 2)
    return media.wav(cycle * int(seconds * 1000), rate)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (media.wav(bytes(2 * 16000 * 3), 16000), "3.0 s of audio with no speech"),
        (tone_wav(2.5), "2.5 s of audio with no speech"),
        (b"", "unreadable audio (0 bytes)"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(500), "unreadable audio (510 bytes)"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "unreadable audio (16 bytes)"),
        (bytes(range(256)) * 10, "unreadable audio (2560 bytes)"),
    ],
)
def test_audio_without_speech_gets_a_clear_placeholder(data: bytes, expected: str) -> None:
    transcript = media.transcribe_audio(data)
    assert transcript.text.startswith("[simulated transcript: ") and expected in transcript.text
    assert transcript.segments[0]["text"] == transcript.text


def test_non_pcm16_wav_reports_its_duration() -> None:
    header = media.wav(bytes(8000), 8000)  # then claim 8-bit samples
    data = bytearray(header)
    data[32:36] = struct.pack("<HH", 1, 8)  # block align, bits per sample
    data[28:32] = struct.pack("<I", 8000)  # byte rate
    transcript = media.transcribe_audio(bytes(data))
    assert transcript.duration == pytest.approx(1.0)
    assert "1.0 s of audio with no speech" in transcript.text


def test_transcribe_never_raises_on_garbage() -> None:
    rng = random.Random(7)
    real = media.speech_wav("some speech to mangle", 16000)
    for _ in range(200):
        kind = rng.randrange(3)
        if kind == 0:
            data = rng.randbytes(rng.randrange(0, 3000))
        elif kind == 1:
            data = real[: rng.randrange(len(real))]
        else:
            data = b"RIFF" + rng.randbytes(4) + b"WAVE" + rng.randbytes(rng.randrange(40))
        assert isinstance(
            media.transcribe_audio(data, rate_hint=rng.choice([None, 1, 16000])), Transcript
        )


def test_transcript_segments_follow_sentences_and_time() -> None:
    transcript = media.transcribe_audio(media.speech_wav("One. Two two!\nThree three three?"))
    assert [s["text"] for s in transcript.segments] == ["One.", "Two two!", "Three three three?"]
    assert [s["id"] for s in transcript.segments] == [0, 1, 2]
    times = [t for s in transcript.segments for t in (s["start"], s["end"])]
    assert times == sorted(times) and times[0] > 0 and times[-1] < transcript.duration
    assert transcript.language == "en"
    assert {"seek", "tokens", "temperature", "avg_logprob", "no_speech_prob"} <= set(
        transcript.segments[0]
    )


def test_transcript_language_and_empty_text() -> None:
    assert media.transcribe_audio(media.speech_wav(TEXTS["chinese"])).language == "zh"
    empty = media.transcribe_audio(media.speech_wav(""))
    assert (empty.text, empty.segments, empty.language) == ("", [], "en")
    assert empty.duration > 0


def test_speech_rejects_rates_it_cannot_sample() -> None:
    with pytest.raises(ValueError):
        media.speech_pcm("x", 4000)


# --------------------------------------------------------------------------- subtitles

SAMPLE = Transcript(
    text="Hi. Bye --> now",
    duration=3726.5,
    language="en",
    segments=[
        {"id": 0, "start": 0.0, "end": 1.2, "text": "Hi."},
        {"id": 1, "start": 3725.0, "end": 3726.4567, "text": "Bye --> now"},
    ],
)


def test_srt_format() -> None:
    assert media.to_srt(SAMPLE) == (
        "1\n00:00:00,000 --> 00:00:01,200\nHi.\n\n2\n01:02:05,000 --> 01:02:06,457\nBye -> now\n"
    )


def test_vtt_format() -> None:
    assert media.to_vtt(SAMPLE) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.200\nHi.\n\n"
        "01:02:05.000 --> 01:02:06.457\nBye -> now\n"
    )


def test_subtitles_of_real_speech() -> None:
    transcript = media.transcribe_audio(media.speech_wav("First line. Second line."))
    assert media.to_srt(transcript).count(" --> ") == 2
    assert media.to_vtt(transcript).startswith("WEBVTT\n\n00:00:00.")


# --------------------------------------------------------------------------- MP4 / H.264


def test_mp4_info_round_trips(video: bytes) -> None:
    assert media.mp4_info(video) == {
        "width": 96,
        "height": 64,
        "frames": 8,
        "duration": 2.0,
        "codec": "avc1",
    }


def test_mp4_default_is_five_seconds_at_four_fps() -> None:
    info = media.mp4_info(media.mp4("defaults"))
    assert (info["width"], info["height"], info["frames"], info["duration"]) == (320, 176, 20, 5.0)


def test_mp4_box_layout_is_fast_start(video: bytes) -> None:
    assert [kind for kind, _, _ in boxes(video)] == [b"ftyp", b"moov", b"mdat"]
    ftyp_start, ftyp_end = box(video, b"ftyp")
    assert video[ftyp_start : ftyp_start + 4] == b"isom"
    assert b"avc1" in video[ftyp_start:ftyp_end]
    stbl = box(video, b"moov", b"trak", b"mdia", b"minf", b"stbl")
    kinds = [kind for kind, _, _ in boxes(video, *stbl)]
    assert kinds == [b"stsd", b"stts", b"stss", b"stsc", b"stsz", b"stco"]


def test_stco_points_at_nal_length_prefixes_inside_mdat(video: bytes) -> None:
    mdat_start, mdat_end = box(video, b"mdat")
    offsets, sizes = table(video, b"stco", "I"), table(video, b"stsz", "I")
    assert offsets[0] == mdat_start
    for offset, size in zip(offsets, sizes, strict=True):
        assert mdat_start <= offset and offset + size <= mdat_end
        (length,) = struct.unpack_from(">I", video, offset)
        assert length + 4 == size, "each sample is one length-prefixed NAL"
    assert offsets[-1] + sizes[-1] == mdat_end


def test_avcc_holds_sps_and_pps(video: bytes) -> None:
    sps, pps = parameter_sets(video)
    assert (sps[0] & 31, pps[0] & 31) == (7, 8)
    fields = parse_sps(sps)
    assert (fields["profile"], fields["level"], fields["mbw"], fields["mbh"]) == (66, 30, 6, 4)
    assert (fields["frame_mbs_only"], fields["crop"], fields["vui"], fields["stop"]) == (1, 0, 0, 1)


def test_every_sample_is_an_idr_picture(video: bytes) -> None:
    headers = {sample[4] for sample in samples(video)}
    assert {h & 31 for h in headers} == {5} and all(h >> 5 for h in headers)
    assert table(video, b"stss", "I") == list(range(1, 9))


def test_every_frame_parses_and_consecutive_idr_ids_differ(video: bytes) -> None:
    sps = parse_sps(parameter_sets(video)[0])
    mbs = sps["mbw"] * sps["mbh"]
    ids = [read_slice(s[4:], sps["log2_frame_num"], mbs)[0] for s in samples(video)]
    assert len(ids) == 8 and all(a != b for a, b in itertools.pairwise(ids))


def test_frame_zero_decodes_to_the_intended_pixels(video: bytes) -> None:
    sps = parse_sps(parameter_sets(video)[0])
    _, blocks = read_slice(samples(video)[0][4:], sps["log2_frame_num"], sps["mbw"] * sps["mbh"])
    y, cb, cr = _mp4._yuv_frame("a lighthouse at night", 96, 64, 0.0)
    for n, block in enumerate(blocks):
        assert block[:256] == tile(y, 96, 16, n), f"luma of macroblock {n}"
        assert block[256:320] == tile(cb, 48, 8, n), f"Cb of macroblock {n}"
        assert block[320:] == tile(cr, 48, 8, n), f"Cr of macroblock {n}"


def test_frames_animate_and_depend_on_the_prompt(video: bytes) -> None:
    frames = samples(video)
    assert frames[0] != frames[-1]
    other = samples(media.mp4("a meadow at noon", seconds=2.0, width=96, height=64, fps=4))
    assert frames[0][40:] != other[0][40:]


def test_odd_sizes_are_cropped_from_whole_macroblocks() -> None:
    data = media.mp4("cropped", seconds=1.0, width=100, height=58, fps=2)
    info = media.mp4_info(data)
    assert (info["width"], info["height"], info["frames"]) == (100, 58, 2)
    sps = parse_sps(parameter_sets(data)[0])
    assert (sps["mbw"], sps["mbh"], sps["crop"]) == (7, 4, 1)
    assert (sps["left"], sps["right"], sps["top"], sps["bottom"]) == (0, 6, 0, 3)


def test_long_and_large_videos_stay_small() -> None:
    assert len(media.mp4("fifteen seconds", seconds=15.0)) < 8_000_000
    big = media.mp4("big", seconds=4.0, width=1920, height=1080, fps=24)
    info = media.mp4_info(big)
    assert len(big) < 8_100_000 and info["duration"] == pytest.approx(4.0)
    assert 1 <= info["frames"] < 96


def test_escape_inserts_emulation_prevention_bytes() -> None:
    assert _mp4._escape(b"\x01\x00\x00\x01\x00\x00\x00\x05") == (
        b"\x01\x00\x00\x03\x01\x00\x00\x03\x00\x05"
    )
    assert _mp4._escape(b"\x00\x00\x04\x00\x00\x03") == b"\x00\x00\x04\x00\x00\x03\x03"
    assert unescape(_mp4._escape(b"\x00\x00\x00\x00\x00")) == b"\x00\x00\x00\x00\x00"


@pytest.mark.parametrize(
    "data", [b"", b"\x89PNG\r\n\x1a\n" + bytes(40), bytes(range(256)), b"\x00\x00\x00\x08free"]
)
def test_mp4_info_rejects_non_mp4(data: bytes) -> None:
    with pytest.raises(ValueError):
        media.mp4_info(data)


@pytest.mark.parametrize(("seconds", "fps"), [(0.0, 4), (-1.0, 4), (float("nan"), 4), (5.0, 0)])
def test_mp4_rejects_impossible_lengths(seconds: float, fps: int) -> None:
    with pytest.raises(ValueError):
        media.mp4("x", seconds=seconds, fps=fps)
