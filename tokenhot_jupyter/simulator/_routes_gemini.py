"""Gemini native ``/v1beta/models/{model}:{action}`` (text, images, speech; spec §7)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any

from . import media
from ._context import Ctx
from ._errors import google_error
from ._http import Result, Stream, json_reply, sse
from ._prompt import from_gemini
from ._routes_chat import gemini_image_size
from ._text import Prompt, count_tokens, pieces, topic
from ._turn import make_turn, settle

ACTIONS = ("generateContent", "streamGenerateContent")
PCM_MIME = "audio/L16;codec=pcm;rate=24000"
VOICES = frozenset(
    [
        "Zephyr",
        "Puck",
        "Charon",
        "Kore",
        "Fenrir",
        "Leda",
        "Orus",
        "Aoede",
        "Callirrhoe",
        "Autonoe",
        "Enceladus",
        "Iapetus",
        "Umbriel",
        "Algieba",
        "Despina",
        "Erinome",
        "Algenib",
        "Rasalgethi",
        "Laomedeia",
        "Achernar",
        "Alnilam",
        "Schedar",
        "Gacrux",
        "Pulcherrima",
        "Achird",
        "Zubenelgenubi",
        "Vindemiatrix",
        "Sadachbia",
        "Sadaltager",
        "Sulafat",
    ]
)


def generate(ctx: Ctx) -> Result:
    """``:generateContent`` (JSON) and ``:streamGenerateContent`` (always SSE)."""
    action = ctx.req.params.get("action", "")
    if action not in ACTIONS:
        raise google_error(404, f"Method {action} is not supported by the simulator", ctx.rid)
    f = ctx.fields
    if not f.get("contents"):
        raise google_error(
            400, "* GenerateContentRequest.contents: contents is not specified", ctx.rid
        )
    prompt = from_gemini(
        f.get("contents"), f.get("systemInstruction") or f.get("system_instruction")
    )
    config = _snake_or_camel(f, "generationConfig") or {}
    modalities = [str(m).upper() for m in _snake_or_camel(config, "responseModalities") or []]
    parts, tokens, thought = _answer(ctx, prompt, config, modalities)
    stream = action == "streamGenerateContent"
    reply = _Reply(ctx, prompt, parts, tokens, thought)
    if stream:
        return Stream(reply.events())
    settle(ctx, reply.turn)
    return json_reply(reply.body(parts, final=True))


def _snake_or_camel(obj: Any, camel: str) -> Any:
    if not isinstance(obj, dict):
        return None
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(camel, obj.get(snake))


def _answer(
    ctx: Ctx, prompt: Prompt, config: dict[str, Any], modalities: list[str]
) -> tuple[list[dict[str, Any]], int, str]:
    """(parts, output tokens, thought text) for this model family."""
    family = ctx.model.family
    if family == "gemini-tts":
        return _speech(ctx, prompt, config, modalities), 0, ""
    if "AUDIO" in modalities:
        raise google_error(
            400, "Model does not support the requested response modalities: audio", ctx.rid
        )
    if family == "gemini-image":
        return _image(ctx, prompt, config), 1290, ""
    if "IMAGE" in modalities:
        raise google_error(
            400, "Model does not support the requested response modalities: image", ctx.rid
        )
    thinking = _snake_or_camel(config, "thinkingConfig") or {}
    wanted = bool(_snake_or_camel(thinking, "includeThoughts"))
    level = _snake_or_camel(thinking, "thinkingLevel") or ("medium" if wanted else None)
    turn = make_turn(ctx, prompt, level, _snake_or_camel(config, "maxOutputTokens"), "")
    parts = [{"text": turn.reasoning, "thought": True}] if turn.reasoning else []
    return [*parts, {"text": turn.text}], turn.text_tokens, turn.reasoning


def _image(ctx: Ctx, prompt: Prompt, config: dict[str, Any]) -> list[dict[str, Any]]:
    image_config = _snake_or_camel(config, "imageConfig") or {}
    ratio = _snake_or_camel(image_config, "aspectRatio")
    size = _snake_or_camel(image_config, "imageSize")
    if ctx.model.id == "gemini-2.5-flash-image":
        size = None  # about 1K only (§7.5)
    width, height = gemini_image_size(ctx, ratio, size)
    ctx.state.wait(ctx.state.options.image_delay)
    intro = f"Here is a simulated image from {ctx.model.id} for: {topic(prompt.text)}"
    if prompt.images:
        intro += f" (I see {prompt.images} input image{'s' if prompt.images != 1 else ''})"
    data = base64.b64encode(media.png(prompt.text, width, height)).decode()
    return [{"text": intro}, {"inlineData": {"mimeType": "image/png", "data": data}}]


def _speech(
    ctx: Ctx, prompt: Prompt, config: dict[str, Any], modalities: list[str]
) -> list[dict[str, Any]]:
    if "AUDIO" not in modalities:
        message = "Model does not support the requested response modalities: text"
        raise google_error(400, message, ctx.rid)
    speech = _snake_or_camel(config, "speechConfig") or {}
    voice = _snake_or_camel(_snake_or_camel(speech, "voiceConfig"), "prebuiltVoiceConfig")
    name = _snake_or_camel(voice, "voiceName")
    if name and name not in VOICES:
        raise google_error(400, f"Voice {name} is not supported.", ctx.rid)
    data = base64.b64encode(media.speech_pcm(prompt.text or "Hello.")).decode()
    return [{"inlineData": {"mimeType": PCM_MIME, "data": data}}]


class _Reply:
    """Builds GenerateContentResponse bodies and stream chunks for one answer."""

    def __init__(
        self, ctx: Ctx, prompt: Prompt, parts: list[dict[str, Any]], tokens: int, thought: str
    ) -> None:
        self.ctx, self.parts, self.thought = ctx, parts, thought
        self.turn = make_turn(ctx, prompt, None, None, "")
        self.prompt_tokens, self.tokens = self.turn.prompt_tokens, tokens
        self.response_id = secrets.token_urlsafe(16)

    def body(self, parts: list[dict[str, Any]], final: bool) -> dict[str, Any]:
        """One response (a whole reply, or one stream chunk)."""
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        usage: dict[str, Any] = {"promptTokenCount": self.prompt_tokens}
        if final:
            candidate.update(finishReason="STOP", safetyRatings=[])
            thoughts = count_tokens(self.thought)
            usage.update(
                candidatesTokenCount=self.tokens,
                totalTokenCount=self.prompt_tokens + self.tokens + thoughts,
            )
            if thoughts:
                usage["thoughtsTokenCount"] = thoughts
        else:
            usage["totalTokenCount"] = self.prompt_tokens
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.ctx.model.id,
            "responseId": self.response_id,
        }

    def events(self) -> Iterator[bytes]:
        """``data:`` chunks only: no ``event:`` lines and no ``[DONE]`` (§7.4)."""
        chunks = [p for part in self.parts for p in _split(part)]
        for index, part in enumerate(chunks):
            self.ctx.state.wait(self.ctx.state.options.token_delay)
            yield sse(self.body([part], final=index == len(chunks) - 1))


def _split(part: dict[str, Any]) -> list[dict[str, Any]]:
    """A text part as several three-word parts (Gemini streams in small groups)."""
    text = part.get("text")
    if not isinstance(text, str) or not text:
        return [part]
    words = pieces(text)
    groups = ["".join(words[i : i + 3]) for i in range(0, len(words), 3)]
    return [{**part, "text": group} for group in groups]
