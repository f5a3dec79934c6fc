"""The simulated operator's channel setup: which channel serves each model, and how.

This is the *gateway's* configuration, deliberately separate from the client's catalog
(``tokenhot_jupyter._catalog``): a wrong guess in the client must not be mirrored here.
Behaviour follows the channel type (spec §1.1); ``family`` names the wire format the
simulator speaks for the model, and `ROUTES` says which endpoint kinds each family serves.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    """One operator channel: its row id, new-api channel type id and owner label."""

    id: int
    type: int
    name: str
    owned_by: str


OPENAI = Channel(7, 1, "OpenAI", "openai")
ANTHROPIC = Channel(3, 14, "Anthropic", "anthropic")
ALI = Channel(13, 17, "Ali DashScope", "ali")
GEMINI = Channel(5, 24, "Gemini", "google")
MINIMAX = Channel(15, 35, "MiniMax", "minimax")
VOLCENGINE = Channel(11, 45, "Volcengine", "volcengine")
XAI = Channel(9, 48, "xAI", "xai")
DOUBAO_VIDEO = Channel(12, 54, "Doubao video", "volcengine")
SORA = Channel(16, 55, "Sora", "openai")
MIMO = Channel(18, 1, "Xiaomi MiMo (OpenAI-compatible)", "xiaomi")

GPT_EFFORTS = ("-xhigh", "-high", "-medium", "-low", "-minimal", "-none")
CLAUDE_EFFORTS = ("-max", "-xhigh", "-high", "-medium", "-low", "-minimal")


@dataclass(frozen=True)
class Served:
    """One model as the operator configured it."""

    id: str
    channel: Channel
    family: str
    upstream: str = ""  # the operator's model mapping; "" = same name
    efforts: tuple[str, ...] = ()  # name suffixes that set a reasoning effort (§1.6)
    reasoning: bool = False  # can produce reasoning text

    @property
    def upstream_name(self) -> str:
        """The model name sent upstream."""
        return self.upstream or self.id


# Endpoint kinds each family serves (natively or converted), spec §3.4 and §11.
ROUTES: dict[str, frozenset[str]] = {
    "gpt": frozenset({"chat", "completions", "responses", "messages", "gemini"}),
    "grok": frozenset({"chat", "completions", "responses", "messages"}),
    "claude": frozenset({"chat", "messages"}),
    "gemini": frozenset({"chat", "responses", "messages", "gemini"}),
    "gemini-image": frozenset({"chat", "gemini"}),
    "gemini-tts": frozenset({"gemini"}),
    "openai-image": frozenset({"images", "edits"}),
    "seedream": frozenset({"images", "edits"}),
    "dashscope-image": frozenset({"images", "edits"}),
    "openai-tts": frozenset({"speech"}),
    "chat-audio": frozenset({"chat"}),
    "whisper": frozenset({"stt"}),
    "seedance": frozenset({"video"}),
    "sora": frozenset({"video"}),
    "hailuo": frozenset({"video"}),
    "wan": frozenset({"video"}),
}

# new-api picks the task adaptor by channel type (relay/relay_adaptor.go).
TASK_ADAPTORS: dict[int, str] = {
    54: "seedance",
    45: "seedance",
    55: "sora",
    1: "sora",
    35: "hailuo",
    17: "wan",
}

# supported_endpoint_types by channel type (§3.2); every other type: ["openai"].
ENDPOINT_TYPES: dict[int, tuple[str, ...]] = {
    14: ("anthropic", "openai"),
    24: ("gemini", "openai"),
    48: ("openai", "openai-response"),
    55: ("openai-video",),
}
IMAGE_GENERATION_NAMES = ("dall-e-2", "dall-e-3", "gpt-image-1", "imagen-", "flux-")


def _gpt(mid: str) -> Served:
    return Served(mid, OPENAI, "gpt", efforts=GPT_EFFORTS, reasoning=True)


def _gemini(mid: str) -> Served:
    return Served(mid, GEMINI, "gemini", reasoning=True)


def _claude(mid: str, efforts: tuple[str, ...] = ()) -> Served:
    return Served(mid, ANTHROPIC, "claude", efforts=efforts, reasoning=True)


SEEDANCE_2 = "doubao-seedance-2-0-260128"
SEEDANCE_2_FAST = "doubao-seedance-2-0-fast-260128"

SERVED: dict[str, Served] = {
    s.id: s
    for s in (
        # chat
        _gpt("gpt-5"), _gpt("gpt-5.2"), _gpt("gpt-5.4"), _gpt("gpt-5.4-mini"),
        Served("grok-4.1", XAI, "grok", reasoning=True),
        _claude("claude-sonnet-4-5-20250929"), _claude("claude-opus-4-6", CLAUDE_EFFORTS),
        _claude("claude-opus-4-6-cc"),
        _gemini("gemini-2.5-flash"), _gemini("gemini-2.5-pro"), _gemini("gemini-3-flash-preview"),
        _gemini("gemini-3.1-pro-preview"), _gemini("gemini-3.1-pro"),
        # images
        Served("gpt-image-1.5", OPENAI, "openai-image"),
        Served("gpt-image-2", OPENAI, "openai-image"),
        Served("dall-e-2", OPENAI, "openai-image"), Served("dall-e-3", OPENAI, "openai-image"),
        Served("doubao-seedream-4-0-250828", VOLCENGINE, "seedream"),
        Served("doubao-seedream-4-5-251128", VOLCENGINE, "seedream"),
        Served("doubao-seedream-5-0-260128", VOLCENGINE, "seedream"),
        Served("gemini-3-pro-image-preview", GEMINI, "gemini-image"),
        Served("gemini-2.5-flash-image", GEMINI, "gemini-image"),
        Served("gemini-3.1-flash-image-preview", GEMINI, "gemini-image"),
        Served("wan2.6-image", ALI, "dashscope-image"),
        Served("wan2.6-t2i", ALI, "dashscope-image"),
        Served("qwen-image-max", ALI, "dashscope-image"),
        Served("qwen-image-plus-2026-01-09", ALI, "dashscope-image"),
        Served("qwen-image-edit-max-2026-01-16", ALI, "dashscope-image"),
        # video
        Served(SEEDANCE_2, DOUBAO_VIDEO, "seedance"),
        Served("doubao-seedance-1-5-pro-251215", DOUBAO_VIDEO, "seedance"),
        Served("doubao-seedance-2.0", DOUBAO_VIDEO, "seedance", SEEDANCE_2),
        Served("doubao-seedance-2.0-fast", DOUBAO_VIDEO, "seedance", SEEDANCE_2_FAST),
        Served("doubao-seedance-2.0-V2V", DOUBAO_VIDEO, "seedance", SEEDANCE_2),
        Served("doubao-seedance-2.0-fast-V2V", DOUBAO_VIDEO, "seedance", SEEDANCE_2_FAST),
        Served("sora-2", SORA, "sora"), Served("sora-2-pro", SORA, "sora"),
        Served("MiniMax-Hailuo-02", MINIMAX, "hailuo"),
        Served("MiniMax-Hailuo-2.3", MINIMAX, "hailuo"),
        Served("MiniMax-Hailuo-2.3-Fast", MINIMAX, "hailuo"),
        Served("happyhorse-1.0-t2v", ALI, "wan"), Served("happyhorse-1.0-i2v", ALI, "wan"),
        Served("happyhorse-1.0-r2v", ALI, "wan"), Served("happyhorse-1.0-video-edit", ALI, "wan"),
        # audio
        Served("gemini-2.5-flash-preview-tts", GEMINI, "gemini-tts"),
        Served("gemini-2.5-pro-preview-tts", GEMINI, "gemini-tts"),
        Served("tts-1", OPENAI, "openai-tts"), Served("gpt-4o-mini-tts", OPENAI, "openai-tts"),
        Served("mimo-v2.5-tts-voicedesign", MIMO, "chat-audio"),
        Served("mimo-v2.5-tts-voiceclone", MIMO, "chat-audio"),
        Served("whisper-1", OPENAI, "whisper"),
    )
}  # fmt: skip


def lookup(model: str) -> tuple[Served, str | None] | None:
    """The served model for a requested name and the effort its suffix asks for, if any."""
    if model in SERVED:
        return SERVED[model], None
    for served in SERVED.values():
        for suffix in served.efforts:
            if model == served.id + suffix:
                return served, suffix[1:]
    return None


def endpoint_types(served: Served) -> list[str]:
    """The model's ``supported_endpoint_types`` (§3.2)."""
    types = list(ENDPOINT_TYPES.get(served.channel.type, ("openai",)))
    if any(name in served.id for name in IMAGE_GENERATION_NAMES):
        types.insert(0, "image-generation")
    return types


def serves(served: Served, kind: str) -> bool:
    """Whether the model's channel answers this endpoint kind."""
    return kind in ROUTES.get(served.family, frozenset())
