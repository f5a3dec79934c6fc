"""Result objects returned by the client: plain data, safe to repr, no networking."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

VideoStatus = Literal["queued", "running", "succeeded", "failed"]


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Usage:
    """Token counts, whatever the endpoint family called them."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Usage | None:
        """Read OpenAI, Responses, Anthropic or Gemini usage objects."""
        if not isinstance(raw, Mapping) or not raw:
            return None
        inp = _int(
            raw.get("prompt_tokens") or raw.get("input_tokens") or raw.get("promptTokenCount")
        )
        out = _int(
            raw.get("completion_tokens")
            or raw.get("output_tokens")
            or raw.get("candidatesTokenCount")
        )
        details = raw.get("completion_tokens_details") or raw.get("output_tokens_details") or {}
        reasoning = _int(details.get("reasoning_tokens") if isinstance(details, Mapping) else 0)
        reasoning = reasoning or _int(raw.get("thoughtsTokenCount"))
        total = _int(raw.get("total_tokens") or raw.get("totalTokenCount")) or inp + out + reasoning
        return cls(
            input_tokens=inp, output_tokens=out, total_tokens=total, reasoning_tokens=reasoning
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class ChatResult:
    """A finished chat answer."""

    text: str
    model: str
    usage: Usage | None = None
    latency: float = 0.0
    reasoning: str = ""
    finish_reason: str | None = None
    request_id: str | None = None
    images: list[Image] = field(default_factory=list)
    raw: Any = field(default=None, repr=False)
    data: Any = None  # the parsed object, when a schema was asked for

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"ChatResult(model={self.model!r}, text={_short(self.text)!r}, usage={self.usage})"


@dataclass(frozen=True)
class ChatChunk:
    """One streamed piece: text and reasoning deltas; the last one has ``result``."""

    text: str = ""
    reasoning: str = ""
    result: ChatResult | None = None

    @property
    def done(self) -> bool:
        """True for the final chunk, which carries the whole result and its usage."""
        return self.result is not None


_EXT = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
    "image/svg+xml": ".svg",
}  # fmt: skip


@dataclass(frozen=True)
class Image:
    """One image as bytes (result URLs expire, so they are downloaded at once)."""

    data: bytes = field(repr=False)
    mime: str = "image/png"
    url: str | None = None
    revised_prompt: str | None = None

    @property
    def extension(self) -> str:
        """A file extension for ``mime``."""
        return _EXT.get(self.mime, ".bin")

    def save(self, path: str | Path) -> Path:
        """Write the bytes to ``path`` and return it."""
        target = Path(path)
        target.write_bytes(self.data)
        return target

    def __repr__(self) -> str:
        return f"Image(mime={self.mime!r}, bytes={len(self.data)})"


@dataclass
class ImageResult:
    """Images from one request, with any text the model sent along."""

    images: list[Image]
    model: str
    latency: float = 0.0
    usage: Usage | None = None
    text: str = ""
    request_id: str | None = None
    raw: Any = field(default=None, repr=False)

    def __iter__(self) -> Any:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Image:
        return self.images[index]


@dataclass(frozen=True)
class VideoTask:
    """A video task as last seen: status normalised across every poll shape."""

    id: str
    model: str
    status: VideoStatus
    progress: int = 0
    error: str | None = None
    url: str | None = None
    created_at: float | None = None
    upstream_status: str = ""
    raw: Any = field(default=None, repr=False, compare=False)
    poll_after: float | None = field(default=None, repr=False, compare=False)  # server's hint, s

    @property
    def done(self) -> bool:
        """True once the task succeeded or failed."""
        return self.status in ("succeeded", "failed")


@dataclass
class Transcript:
    """Text of an audio file, with segments when asked for (verbose_json)."""

    text: str
    model: str = "whisper-1"
    language: str | None = None
    duration: float | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)
    format: str = "json"
    raw: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.text
