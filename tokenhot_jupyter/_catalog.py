"""The model catalog: which endpoint family serves each model, its parameters and quirks.

This is data, not code paths: every other module asks the catalog instead of testing
model names.  The gateway routes by the *channel* an operator attached a model to, so
the live ``supported_endpoint_types`` of ``GET /v1/models`` can override a family here
(`resolve_family`), and a model that only the live list knows gets a family guessed
from its endpoint types and name (`guess_family`), and its quirks from its name
(`guess_quirks`).  These guesses live in this file only.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any, Literal

from ._exceptions import InvalidInputError, UnknownModelError

Kind = Literal["chat", "image", "video", "audio"]
KINDS: tuple[Kind, ...] = ("chat", "image", "video", "audio")


@dataclass(frozen=True)
class Family:
    """One wire format of the gateway: where requests go and what kind of model uses it."""

    name: str
    kind: Kind
    endpoint: str
    endpoint_type: str  # the value of supported_endpoint_types that proves this family
    summary: str
    # How the family asks for JSON that matches a schema (`_chat.STRUCTURED`); "" = it cannot.
    structured: str = ""


# `structured` names a row of `_chat.STRUCTURED`: response_format json_schema on chat
# completions, text.format json_schema on Responses, generationConfig responseJsonSchema on
# Gemini, and on Anthropic a forced tool whose input is the answer rather than
# `output_format`: the gateway converts tools (and tool_choice) when it sends /v1/messages on
# to an OpenAI-type or Gemini channel and every Claude model takes them, while
# `output_format` is a beta of some Claude models that a converted channel is not known to keep.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "chat-completions",
            "chat",
            "/v1/chat/completions",
            "openai",
            "OpenAI chat completions",
            structured="response_format",
        ),
        Family(
            "responses",
            "chat",
            "/v1/responses",
            "openai-response",
            "OpenAI Responses API",
            structured="text.format",
        ),
        Family(
            "anthropic",
            "chat",
            "/v1/messages",
            "anthropic",
            "Anthropic messages",
            structured="tool",
        ),
        Family(
            "gemini",
            "chat",
            "/v1beta/models/{model}:generateContent",
            "gemini",
            "Gemini native",
            structured="responseJsonSchema",
        ),
        Family(
            "openai-image",
            "image",
            "/v1/images/generations",
            "openai",
            "OpenAI images (JSON; multipart edits)",
        ),
        Family(
            "seedream",
            "image",
            "/v1/images/generations",
            "openai",
            "Seedream (JSON only, edits too)",
        ),
        Family(
            "gemini-image",
            "image",
            "/v1beta/models/{model}:generateContent",
            "gemini",
            "Gemini native images",
        ),
        Family(
            "chat-image",
            "image",
            "/v1/chat/completions",
            "openai",
            "Images as Markdown data URIs in chat",
        ),
        Family(
            "dashscope-image",
            "image",
            "/v1/images/generations",
            "openai",
            "DashScope wan/qwen images",
        ),
        Family("seedance", "video", "/v1/video/generations", "openai", "Seedance video tasks"),
        Family("sora", "video", "/v1/videos", "openai-video", "Sora video tasks"),
        Family("hailuo", "video", "/v1/video/generations", "openai", "MiniMax Hailuo video tasks"),
        Family(
            "happyhorse",
            "video",
            "/v1/video/generations",
            "openai",
            "HappyHorse (DashScope) video tasks",
        ),
        Family(
            "gemini-tts",
            "audio",
            "/v1beta/models/{model}:generateContent",
            "gemini",
            "Gemini speech (PCM)",
        ),
        Family("openai-tts", "audio", "/v1/audio/speech", "openai", "OpenAI speech (raw audio)"),
        Family(
            "chat-audio",
            "audio",
            "/v1/chat/completions",
            "openai",
            "Speech in chat replies (message.audio)",
        ),
        Family(
            "whisper",
            "audio",
            "/v1/audio/transcriptions",
            "openai",
            "Whisper transcription/translation",
        ),
    )
}


@dataclass(frozen=True)
class Param:
    """A user-facing parameter of a model, with its allowed values."""

    name: str
    type: Literal["float", "int", "choice", "str", "bool"]
    default: Any = None
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    help: str = ""

    def check(self, value: Any, model: str) -> Any:
        """Return ``value`` converted to this parameter's type, or raise InvalidInputError."""
        if value is None:
            return None
        try:
            value = _coerce(self.type, value, self.choices)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"{self.name}={value!r} is not a valid {self.type} for {model}.", model=model
            ) from None
        if self.choices and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise InvalidInputError(
                f"{self.name}={value!r} is not available for {model}; choose one of: {allowed}.",
                model=model,
            )
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            raise InvalidInputError(
                f"{self.name}={value!r} is out of range for {model} ({self.min} to {self.max}).",
                model=model,
            )
        return value


def _coerce(kind: str, value: Any, choices: tuple[Any, ...]) -> Any:
    if kind == "float":
        number = float(value)
        if not math.isfinite(number):  # JSON cannot carry nan or inf
            raise ValueError(value)
        return number
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if kind == "choice" and choices and isinstance(choices[0], int) and isinstance(value, str):
        return int(value)
    return value if kind == "choice" else str(value)


# What sets one model apart from the rest of its family; the family modules read these
# instead of model names.  The rows of `MODELS` state them; `guess_quirks` for the ids that
# only the live list knows.
Quirk = Literal[
    "effort-in-name",  # anthropic: the effort is a model-name suffix, claude-opus-4-6-high
    "b64-by-default",  # openai-image: ask for b64_json, which dall-e does not send unasked
    "interleave",  # dashscope-image: Tokenhot's wan2.6 body, enable_interleave (spec §8.3.4)
    "edits-route",  # dashscope-image: edits go to /v1/images/edits
    "first-frame",  # happyhorse: the input image is the first frame, the only media (i2v)
    "no-duration",  # happyhorse: the body carries no duration (video-edit)
    "no-ratio",  # happyhorse: the body carries no ratio (i2v, video-edit)
]


@dataclass(frozen=True)
class Model:
    """One model: its id, kind, endpoint family and parameters."""

    id: str
    kind: Kind
    family: str
    _: KW_ONLY
    vendor: str = ""
    params: tuple[Param, ...] = ()
    vision: bool = False  # chat: accepts images
    edits: bool = False  # image: accepts input images
    requires: tuple[str, ...] = ()  # inputs that must be given, e.g. ("image",)
    quirks: tuple[Quirk, ...] = ()  # how it differs from its family's other models
    endpoint_types: tuple[str, ...] = ()  # from the live list, when known
    live: bool = False  # seen in the live GET /v1/models
    inferred: bool = False  # family guessed (not in the spec's per-model tables)
    # Rough public list prices, for *estimates* only (USD): chat per 1M tokens in/out,
    # image per picture, video per second, speech per 1M characters, whisper per minute.
    price: tuple[float, ...] = ()
    notes: str = ""

    @property
    def endpoint(self) -> str:
        """The path this model's requests go to."""
        return FAMILIES[self.family].endpoint.replace("{model}", self.id)

    def param(self, name: str) -> Param | None:
        """The parameter called ``name``, if the model has one."""
        return next((p for p in self.params if p.name == name), None)

    def check(self, name: str, value: Any) -> Any:
        """``value`` checked against the parameter ``name`` (as it is when there is none)."""
        spec = self.param(name)
        return spec.check(value, self.id) if spec else value


# --- parameter sets -----------------------------------------------------------------

TEMPERATURE = Param("temperature", "float", None, min=0.0, max=2.0, help="Sampling temperature")
MAX_TOKENS = Param(
    "max_tokens", "int", None, min=1, max=1_000_000, help="Longest answer, in tokens"
)
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
REASONING = Param("reasoning", "choice", None, EFFORTS, help="Reasoning effort")
CLAUDE_EFFORTS = ("minimal", "low", "medium", "high", "xhigh", "max")
CHAT = (TEMPERATURE, MAX_TOKENS)


def _size(*sizes: str, default: str | None = None) -> Param:
    return Param("size", "choice", default or sizes[0], tuple(sizes), help="Image size")


def _n(hi: int) -> Param:
    return Param("n", "int", 1, min=1, max=hi, help="How many images")


def _duration(*values: int, default: int | None = None) -> Param:
    return Param("duration", "choice", default or values[0], tuple(values), help="Seconds")


def _resolution(*values: str, default: str | None = None) -> Param:
    return Param("resolution", "choice", default or values[0], tuple(values), help="Resolution")


def _ratio(*values: str, default: str | None = None) -> Param:
    return Param("ratio", "choice", default or values[0], tuple(values), help="Aspect ratio")


def _voice(*voices: str) -> Param:
    return Param("voice", "choice", voices[0], tuple(voices), help="Voice")


RATIOS = ("16:9", "9:16", "4:3", "3:4", "21:9", "1:1", "adaptive")
GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
GPT_IMAGE = (_size("1024x1024", "1536x1024", "1024x1536", "auto"), _n(10))
QWEN_SIZES = _size("1664x928", "1472x1104", "1328x1328", "1104x1472", "928x1664")
SEEDANCE2 = (
    _duration(*range(4, 16), default=5),
    _resolution("720p", "480p", "1080p"),
    _ratio(*RATIOS),
)
SEEDANCE2_FAST = (_duration(*range(4, 16), default=5), _resolution("720p", "480p"), _ratio(*RATIOS))
SEEDANCE15 = (
    _duration(*range(4, 13), default=5),
    _resolution("720p", "480p", "1080p"),
    _ratio(*RATIOS),
)
SORA = (_duration(4, 8, 12), _resolution("720p"), _ratio("9:16", "16:9"))
SORA_PRO = (_duration(4, 8, 12), _resolution("720p", "1024p"), _ratio("9:16", "16:9"))
HAILUO = (_duration(6, 10), _resolution("768P", "1080P"))
HAPPY_T2V = (
    _duration(*range(3, 16), default=5),
    _resolution("720P", "1080P"),
    _ratio("16:9", "9:16", "1:1", "4:3", "3:4"),
)
HAPPY_I2V = (_duration(*range(3, 16), default=5), _resolution("720P", "1080P"))
HAPPY_EDIT = (_resolution("720P", "1080P"),)
GEMINI_VOICES = _voice(
    "Kore", "Puck", "Charon", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr",
    "Callirrhoe", "Autonoe", "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome",
)  # fmt: skip
OPENAI_VOICES = _voice("alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer")


def _chat(mid: str, family: str, vendor: str, price: tuple[float, ...], **kw: Any) -> Model:
    params = kw.pop("params", CHAT)
    return Model(mid, "chat", family, vendor=vendor, params=params, price=price, **kw)


GPT5 = dict(params=(*CHAT, REASONING), vision=True)
CLAUDE = dict(params=(*CHAT, Param("reasoning", "choice", None, CLAUDE_EFFORTS)), vision=True)
OPUS = dict(CLAUDE, quirks=("effort-in-name",))  # Opus 4.6 and later
GEMINI = dict(
    params=(*CHAT, Param("reasoning", "choice", None, ("low", "medium", "high"))), vision=True
)

MODELS: tuple[Model, ...] = (
    # chat ----------------------------------------------------------------------------
    _chat("gpt-5", "chat-completions", "OpenAI", (1.25, 10.0), **GPT5),
    _chat("gpt-5.2", "chat-completions", "OpenAI", (1.75, 14.0), **GPT5),
    _chat("gpt-5.4", "chat-completions", "OpenAI", (2.5, 15.0), **GPT5),
    _chat("gpt-5.4-mini", "chat-completions", "OpenAI", (0.25, 2.0), **GPT5),
    _chat("claude-sonnet-4-5-20250929", "anthropic", "Anthropic", (3.0, 15.0), **CLAUDE),
    _chat("claude-opus-4-6", "anthropic", "Anthropic", (5.0, 25.0), **OPUS),
    _chat("claude-opus-4-6-cc", "anthropic", "Anthropic", (5.0, 25.0), inferred=True, **OPUS),
    _chat("gemini-2.5-flash", "gemini", "Google", (0.3, 2.5), **GEMINI),
    _chat("gemini-2.5-pro", "gemini", "Google", (1.25, 10.0), **GEMINI),
    _chat("gemini-3-flash-preview", "gemini", "Google", (0.5, 3.0), **GEMINI),
    _chat("gemini-3.1-pro-preview", "gemini", "Google", (2.0, 12.0), **GEMINI),
    _chat("gemini-3.1-pro", "gemini", "Google", (2.0, 12.0), inferred=True, **GEMINI),
    _chat("grok-4.1", "chat-completions", "xAI", (3.0, 15.0), vision=True, inferred=True),
    # image ---------------------------------------------------------------------------
    Model("gpt-image-1.5", "image", "openai-image", vendor="OpenAI", params=GPT_IMAGE, edits=True, price=(0.04,)),
    Model("gpt-image-2", "image", "openai-image", vendor="OpenAI", params=GPT_IMAGE, edits=True, price=(0.04,), inferred=True),
    Model("dall-e-2", "image", "openai-image", vendor="OpenAI", price=(0.02,), quirks=("b64-by-default",),
          params=(_size("1024x1024", "512x512", "256x256"), _n(10))),
    Model(
        "dall-e-3", "image", "openai-image", vendor="OpenAI", price=(0.04,), quirks=("b64-by-default",),
        params=(
            _size("1024x1024", "1024x1792", "1792x1024"), _n(1),
            Param("quality", "choice", "standard", ("standard", "hd")),
            Param("style", "choice", "vivid", ("vivid", "natural")),
        ),
    ),
    Model("doubao-seedream-4-0-250828", "image", "seedream", vendor="ByteDance", edits=True, price=(0.03,),
          params=(_size("2K", "1K", "4K", "2048x2048", "2304x1728", "1728x2304", "2560x1440", "1440x2560"), _n(4))),
    Model("doubao-seedream-4-5-251128", "image", "seedream", vendor="ByteDance", edits=True, price=(0.04,), inferred=True,
          params=(_size("2K", "4K", "2048x2048", "2560x1440", "1440x2560"), _n(4))),
    Model("doubao-seedream-5-0-260128", "image", "seedream", vendor="ByteDance", edits=True, price=(0.04,), inferred=True,
          params=(_size("2K", "3K", "2048x2048", "2560x1440", "1440x2560"), _n(4))),
    Model("gemini-3-pro-image-preview", "image", "gemini-image", vendor="Google", edits=True, price=(0.134,),
          params=(_size(*GEMINI_RATIOS), Param("image_size", "choice", "1K", ("1K", "2K", "4K")), _n(1))),
    Model("gemini-2.5-flash-image", "image", "gemini-image", vendor="Google", edits=True, price=(0.039,),
          params=(_size(*GEMINI_RATIOS), _n(1))),
    Model("gemini-3.1-flash-image-preview", "image", "gemini-image", vendor="Google", edits=True, price=(0.06,),
          params=(_size(*GEMINI_RATIOS), Param("image_size", "choice", "1K", ("1K", "2K", "4K")), _n(1))),
    Model("wan2.6-image", "image", "dashscope-image", vendor="Alibaba", edits=True, price=(0.03,), inferred=True, quirks=("interleave",),
          params=(_size("1024x1024", "1280x720", "720x1280", "1328x1328"), _n(5))),
    Model("wan2.6-t2i", "image", "dashscope-image", vendor="Alibaba", price=(0.03,), inferred=True, quirks=("interleave",),
          params=(_size("1024x1024", "1280x720", "720x1280", "1328x1328"), _n(4))),
    Model("qwen-image-max", "image", "dashscope-image", vendor="Alibaba", price=(0.075,), params=(QWEN_SIZES, _n(1))),
    Model("qwen-image-plus-2026-01-09", "image", "dashscope-image", vendor="Alibaba", price=(0.03,),
          params=(QWEN_SIZES, _n(1))),
    Model("qwen-image-edit-max-2026-01-16", "image", "dashscope-image", vendor="Alibaba", edits=True,
          requires=("images",), quirks=("edits-route",), price=(0.075,), params=(_size("1024x1024", "1328x1328", "1664x928", "928x1664"), _n(6))),
    # video ---------------------------------------------------------------------------
    Model("doubao-seedance-2-0-260128", "video", "seedance", vendor="ByteDance", params=SEEDANCE2, price=(0.1,)),
    Model("doubao-seedance-1-5-pro-251215", "video", "seedance", vendor="ByteDance", params=SEEDANCE15, price=(0.05,)),
    Model("doubao-seedance-2.0", "video", "seedance", vendor="ByteDance", params=SEEDANCE2, price=(0.1,), inferred=True),
    Model("doubao-seedance-2.0-fast", "video", "seedance", vendor="ByteDance", params=SEEDANCE2_FAST, price=(0.06,), inferred=True),
    Model("doubao-seedance-2.0-V2V", "video", "seedance", vendor="ByteDance", params=SEEDANCE2, price=(0.15,),
          requires=("video",), inferred=True),
    Model("doubao-seedance-2.0-fast-V2V", "video", "seedance", vendor="ByteDance", params=SEEDANCE2_FAST, price=(0.09,),
          requires=("video",), inferred=True),
    Model("sora-2", "video", "sora", vendor="OpenAI", params=SORA, price=(0.1,)),
    Model("sora-2-pro", "video", "sora", vendor="OpenAI", params=SORA_PRO, price=(0.3,)),
    Model("MiniMax-Hailuo-02", "video", "hailuo", vendor="MiniMax", price=(0.045,),
          params=(_duration(6, 10), _resolution("768P", "1080P", "512P"))),
    Model("MiniMax-Hailuo-2.3", "video", "hailuo", vendor="MiniMax", params=HAILUO, price=(0.045,)),
    Model("MiniMax-Hailuo-2.3-Fast", "video", "hailuo", vendor="MiniMax", params=HAILUO, price=(0.03,), requires=("image",)),
    Model("happyhorse-1.0-t2v", "video", "happyhorse", vendor="Alibaba", params=HAPPY_T2V, price=(0.1,), inferred=True),
    Model("happyhorse-1.0-i2v", "video", "happyhorse", vendor="Alibaba", params=HAPPY_I2V, price=(0.1,),
          requires=("image",), quirks=("first-frame", "no-ratio"), inferred=True),
    Model("happyhorse-1.0-r2v", "video", "happyhorse", vendor="Alibaba", params=HAPPY_T2V, price=(0.1,),
          requires=("image",), inferred=True),
    Model("happyhorse-1.0-video-edit", "video", "happyhorse", vendor="Alibaba", params=HAPPY_EDIT, price=(0.1,),
          requires=("video",), quirks=("no-duration", "no-ratio"), inferred=True),
    # audio ---------------------------------------------------------------------------
    Model("gemini-2.5-flash-preview-tts", "audio", "gemini-tts", vendor="Google", params=(GEMINI_VOICES,), price=(10.0,)),
    Model("gemini-2.5-pro-preview-tts", "audio", "gemini-tts", vendor="Google", params=(GEMINI_VOICES,), price=(20.0,)),
    Model("tts-1", "audio", "openai-tts", vendor="OpenAI", params=(OPENAI_VOICES,), price=(15.0,), inferred=True),
    Model("gpt-4o-mini-tts", "audio", "openai-tts", vendor="OpenAI", params=(OPENAI_VOICES,), price=(12.0,), inferred=True),
    Model("mimo-v2.5-tts-voicedesign", "audio", "chat-audio", vendor="Xiaomi", params=(Param("voice", "str", None),),
          price=(10.0,), inferred=True),
    Model("mimo-v2.5-tts-voiceclone", "audio", "chat-audio", vendor="Xiaomi", params=(Param("voice", "str", None),),
          price=(10.0,), inferred=True),
    Model("whisper-1", "audio", "whisper", vendor="OpenAI", price=(0.006,)),
)  # fmt: skip

DEFAULTS: dict[Kind, str] = {
    "chat": "gpt-5.4-mini",
    "image": "gpt-image-2",
    "video": "doubao-seedance-2.0-fast",
    "audio": "gemini-2.5-flash-preview-tts",
}
TRANSCRIBE_DEFAULT = "whisper-1"


_PRICE_UNITS = {"image": "image", "video": "second", "whisper": "minute of audio"}


def price_text(model: Model) -> str | None:
    """The list price in words (an estimate), e.g. ``$1.25 / $10 per 1M tokens in/out``."""
    if not model.price:
        return None
    if model.kind == "chat" and len(model.price) >= 2:
        return f"${model.price[0]:g} / ${model.price[1]:g} per 1M tokens in/out"
    unit = _PRICE_UNITS.get(model.family) or _PRICE_UNITS.get(model.kind) or "1M characters"
    return f"${model.price[0]:g} per {unit}"


# --- the guesses (one place) --------------------------------------------------------------


def guess_family(model_id: str, endpoint_types: Iterable[str] = ()) -> str:
    """Guess a family for a model only the live list knows (*inferred*, see the spec §3.2)."""
    types = set(endpoint_types)
    name = model_id.lower()
    if "openai-video" in types or name.startswith("sora"):
        return "sora"
    for needle, family in (
        ("seedance", "seedance"),
        ("hailuo", "hailuo"),
        ("happyhorse", "happyhorse"),
    ):
        if needle in name:
            return family
    if "gemini" in types or name.startswith("gemini"):
        if "tts" in name:
            return "gemini-tts"
        return "gemini-image" if "image" in name else "gemini"
    if "image-generation" in types or name.startswith(("dall-e", "gpt-image", "imagen", "flux")):
        return "openai-image"
    if "seedream" in name:
        return "seedream"
    if name.startswith(("wan", "qwen-image", "z-image")):
        return "dashscope-image"
    if "whisper" in name or "transcribe" in name:
        return "whisper"
    if "tts" in name:
        return "openai-tts"
    if "anthropic" in types or name.startswith("claude"):
        return "anthropic"
    if "openai-response" in types and "openai" not in types:  # as `resolve_family` moves
        return "responses"
    return "chat-completions"


_SUFFIX_EFFORT = ("claude-opus-4-6", "claude-opus-4-7", "claude-opus-4-8")  # Opus 4.6 and later
# The name rules behind the quirks, for ids only the live list knows: (quirk, the family it
# belongs to or None for any, rule).  Case-sensitive, as the vendors spell their ids.
_QUIRK_RULES: tuple[tuple[Quirk, str | None, Callable[[str], bool]], ...] = (
    ("effort-in-name", None, lambda mid: mid.startswith(_SUFFIX_EFFORT)),
    ("b64-by-default", "openai-image", lambda mid: mid.startswith("dall-e")),
    ("interleave", "dashscope-image", lambda mid: mid.startswith("wan2.6")),
    ("edits-route", "dashscope-image", lambda mid: "edit" in mid),
    ("first-frame", "happyhorse", lambda mid: mid.endswith("i2v")),
    ("no-duration", "happyhorse", lambda mid: mid.endswith("video-edit")),
    ("no-ratio", "happyhorse", lambda mid: not mid.endswith(("t2v", "r2v"))),
)


def guess_quirks(model_id: str, family: str) -> tuple[Quirk, ...]:
    """Guess the quirks of a model only the live list knows, from its id (*inferred*)."""
    return tuple(
        quirk for quirk, owner, rule in _QUIRK_RULES if owner in (None, family) and rule(model_id)
    )


def resolve_family(model: Model, endpoint_types: Iterable[str]) -> str:
    """The family to use, given the live ``supported_endpoint_types`` (which wins)."""
    types = set(endpoint_types)
    if not types or FAMILIES[model.family].endpoint_type in types:
        return model.family
    # The catalog's native route is not offered: move to a route the channel does offer.
    moves = {
        "chat-completions": ("openai-response", "responses"),
        "anthropic": ("openai", "chat-completions"),
        "gemini": ("openai", "chat-completions"),
        "gemini-image": ("openai", "chat-image"),
    }
    needed, family = moves.get(model.family, ("", model.family))
    return family if needed in types else model.family


# --- the catalog object -------------------------------------------------------------------


@dataclass
class Catalog:
    """The built-in models, optionally merged with the gateway's live list."""

    models: dict[str, Model] = field(default_factory=lambda: {m.id: m for m in MODELS})

    def merge_live(self, live: Iterable[Mapping[str, Any]]) -> Catalog:
        """A new catalog with the live ``GET /v1/models`` entries merged in."""
        merged = dict(self.models)
        for entry in live:
            mid = str(entry.get("id") or "")
            if not mid:
                continue
            types = tuple(str(t) for t in entry.get("supported_endpoint_types") or ())
            known = merged.get(mid)
            if known is None:
                family = guess_family(mid, types)
                kind = FAMILIES[family].kind
                merged[mid] = Model(
                    mid,
                    kind,
                    family,
                    vendor=str(entry.get("owned_by") or ""),
                    params=_default_params(kind),
                    vision=kind == "chat",
                    quirks=guess_quirks(mid, family),
                    endpoint_types=types,
                    live=True,
                    inferred=True,
                )
            else:
                family = resolve_family(known, types)
                merged[mid] = replace(known, family=family, endpoint_types=types, live=True)
        return Catalog(merged)

    def get(self, model_id: str, kind: Kind | None = None) -> Model:
        """The model ``model_id``; unknown ids raise UnknownModelError with suggestions."""
        model = self.models.get(model_id)
        if model is None:
            model = self._case_insensitive(model_id)
        if model is None:
            raise UnknownModelError(model_id, self.suggest(model_id, kind), kind=kind)
        if kind is not None and model.kind != kind and not _crosses(model, kind):
            raise InvalidInputError(
                f"{model_id} is {_a(model.kind)} model, not {_a(kind)} model.",
                hint=f"Pick {_a(kind)} model, e.g. {DEFAULTS[kind]}.",
                model=model_id,
            )
        return model

    def _case_insensitive(self, model_id: str) -> Model | None:
        lowered = model_id.lower()
        hits = [m for m in self.models.values() if m.id.lower() == lowered]
        return hits[0] if len(hits) == 1 else None

    def suggest(self, model_id: str, kind: Kind | None = None, n: int = 3) -> list[str]:
        """Close matches for a mistyped id."""
        pool = [m.id for m in self.models.values() if kind is None or m.kind == kind]
        close = difflib.get_close_matches(model_id, pool, n=n, cutoff=0.5)
        if not close:
            lowered = model_id.lower()
            close = [m for m in pool if lowered in m.lower() or m.lower() in lowered][:n]
        return close

    def of_kind(self, kind: Kind | None = None) -> list[Model]:
        """Models of one kind (or all), in catalog order."""
        return [m for m in self.models.values() if kind is None or m.kind == kind]


def _a(word: str) -> str:
    """The word with its indefinite article."""
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _crosses(model: Model, kind: Kind) -> bool:
    # A Gemini chat model can also draw images and a chat model may answer with audio; we
    # let explicit choices through when the gateway itself would.
    return kind == "image" and model.family == "chat-image"


def _default_params(kind: Kind) -> tuple[Param, ...]:
    return {
        "chat": CHAT,
        "image": (Param("size", "str", None), _n(10)),
        "video": (Param("duration", "int", None, min=1, max=3600), Param("resolution", "str", None),
                  Param("ratio", "str", None)),
        "audio": (Param("voice", "str", None),),
    }[kind]  # fmt: skip
