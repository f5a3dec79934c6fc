"""``POST /v1/chat/completions`` and legacy ``/v1/completions`` (spec §4)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any

from . import media
from ._context import Ctx
from ._errors import google_error
from ._http import Result, Stream, json_reply, sse
from ._prompt import from_messages
from ._text import topic
from ._turn import Turn, effort_of, make_turn, paced, settle

DONE = b"data: [DONE]\n\n"
PING = b": PING\n\n"
_GPT_DROPPED = ("temperature", "top_p", "logprobs")
# Stream delta key for reasoning text, by family (§4.4: `reasoning_content` or `reasoning`).
REASONING_KEY = {"grok": "reasoning"}


def chat_completions(ctx: Ctx) -> Result:
    """Chat completions for every chat channel (native or converted)."""
    messages = ctx.fields.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ctx.invalid("field messages is required")
    family = ctx.model.family
    if family == "gemini-image":
        return _image_chat(ctx, messages)
    if family == "chat-audio":
        return _audio_chat(ctx, messages)
    if family == "gpt":
        ctx.forward(_gpt_upstream(ctx))
    f = ctx.fields
    max_tokens = f.get("max_completion_tokens") or f.get("max_tokens")
    turn = make_turn(ctx, from_messages(messages), effort_of(ctx), max_tokens, "chatcmpl-")
    if f.get("stream"):
        return Stream(_chat_events(ctx, turn))
    settle(ctx, turn)
    return json_reply(_chat_body(turn))


def _gpt_upstream(ctx: Ctx) -> dict[str, Any]:
    """GPT-5 rewrites (§4.1): max_tokens moved, sampling knobs dropped, suffix → effort."""
    body = {k: v for k, v in ctx.fields.items() if k not in _GPT_DROPPED}
    if "max_tokens" in body:
        body["max_completion_tokens"] = body.pop("max_tokens")
    body["model"] = ctx.model.id
    if ctx.effort:
        body["reasoning_effort"] = ctx.effort
    return body


def usage(turn: Turn) -> dict[str, Any]:
    """Chat-completions usage."""
    return {
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
        "total_tokens": turn.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": turn.reasoning_tokens},
    }


def _chat_body(turn: Turn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text}
    if turn.reasoning:
        message["reasoning_content"] = turn.reasoning
    choice = {"index": 0, "message": message, "finish_reason": _finish(turn), "logprobs": None}
    return {
        "id": turn.id,
        "object": "chat.completion",
        "created": turn.created,
        "model": turn.model,
        "system_fingerprint": "fp_simulator",
        "choices": [choice],
        "usage": usage(turn),
    }


def _finish(turn: Turn) -> str:
    return "length" if turn.truncated else "stop"


def chunk(turn: Turn, delta: dict[str, Any] | None, finish: str | None = None) -> bytes:
    """One ``chat.completion.chunk`` event; ``delta=None`` makes the usage chunk."""
    body: dict[str, Any] = {
        "id": turn.id,
        "object": "chat.completion.chunk",
        "created": turn.created,
        "model": turn.model,
        "system_fingerprint": "fp_simulator",
    }
    if delta is None:
        body.update(choices=[], usage=usage(turn))
    else:
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return sse(body)


def _chat_events(ctx: Ctx, turn: Turn) -> Iterator[bytes]:
    yield chunk(turn, {"role": "assistant", "content": ""})
    if ctx.state.options.ping or ctx.fault.ping:
        yield PING
    key = REASONING_KEY.get(ctx.model.family, "reasoning_content")
    for piece in paced(ctx, turn.reasoning):
        yield chunk(turn, {key: piece})
    for piece in paced(ctx, turn.text):
        yield chunk(turn, {"content": piece})
    yield chunk(turn, {}, _finish(turn))
    if include_usage(ctx.fields):
        yield chunk(turn, None)
    yield DONE


def include_usage(fields: dict[str, Any]) -> bool:
    """The gateway sends the usage chunk unless ``include_usage`` is explicitly false (§4.3)."""
    options = fields.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_usage") is False)


# --- Gemini image models through chat (§4.5) ---------------------------------------------

_CAMEL = ("imageConfig", "aspectRatio", "imageSize")


def _image_chat(ctx: Ctx, messages: list[Any]) -> Result:
    google = (ctx.fields.get("extra_body") or {}).get("google") or {}
    config = google.get("image_config") or {}
    camel = [k for k in _CAMEL if k in google or (isinstance(config, dict) and k in config)]
    if camel:
        message = f'Invalid JSON payload received. Unknown name "{camel[0]}": Cannot find field.'
        raise google_error(400, message, ctx.rid)
    width, height = gemini_image_size(ctx, config.get("aspect_ratio"), config.get("image_size"))
    prompt = from_messages(messages)
    turn = make_turn(ctx, prompt, None, None, "chatcmpl-")
    picture = base64.b64encode(media.png(prompt.text, width, height)).decode()
    intro = f"Here is a simulated image from {ctx.model.id} for: {topic(prompt.text)}"
    if prompt.images:
        intro += f" (I see {prompt.images} input image{'s' if prompt.images != 1 else ''})"
    image = f"![image](data:image/png;base64,{picture})"
    turn = _with_text(turn, f"{intro}\n{image}", 1290)
    if ctx.fields.get("stream"):
        return Stream(_fixed_events(ctx, turn, [intro + "\n", image]))
    return json_reply(_chat_body(turn))


def gemini_image_size(ctx: Ctx, ratio: Any, size: Any) -> tuple[int, int]:
    """Pixels for a Gemini aspect ratio and 1K/2K/4K size (400 from "Google" if invalid)."""
    try:
        width, height = media.image_size(str(ratio) if ratio else "1:1")
    except ValueError:
        raise google_error(400, f"Unsupported aspect ratio: {ratio}", ctx.rid) from None
    scale = {"1K": 1, "2K": 2, "4K": 4}.get(str(size or "1K").upper())
    if scale is None:
        raise google_error(400, f"Unsupported image size: {size}", ctx.rid)
    return width * scale, height * scale


def _with_text(turn: Turn, text: str, tokens: int) -> Turn:
    return Turn(
        turn.id,
        turn.model,
        turn.created,
        turn.prompt,
        text,
        "",
        False,
        turn.prompt_tokens,
        tokens,
        0,
    )


def _fixed_events(ctx: Ctx, turn: Turn, parts: list[str]) -> Iterator[bytes]:
    yield chunk(turn, {"role": "assistant", "content": ""})
    for part in parts:
        ctx.state.wait(ctx.state.options.token_delay)
        yield chunk(turn, {"content": part})
    yield chunk(turn, {}, "stop")
    if include_usage(ctx.fields):
        yield chunk(turn, None)
    yield DONE


# --- speech in chat replies (MiMo TTS, §4.6) ------------------------------------------------


def _audio_chat(ctx: Ctx, messages: list[Any]) -> Result:
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    text = from_messages([{**last, "role": "user"}]).text or "Hello from the simulator."
    turn = _with_text(make_turn(ctx, from_messages(messages), None, None, "chatcmpl-"), "", 0)
    audio = {
        "id": f"audio_{secrets.token_hex(8)}",
        "data": base64.b64encode(media.speech_wav(text)).decode(),
        "expires_at": int(ctx.now()) + 3600,
        "transcript": text,
    }
    if ctx.fields.get("stream"):
        return Stream(_audio_events(ctx, turn, audio))
    body = _chat_body(turn)
    body["choices"][0]["message"].update(content=None, audio=audio)
    return json_reply(body)


def _audio_events(ctx: Ctx, turn: Turn, audio: dict[str, Any]) -> Iterator[bytes]:
    yield chunk(turn, {"role": "assistant", "content": "", "audio": audio})
    yield chunk(turn, {}, "stop")
    if include_usage(ctx.fields):
        yield chunk(turn, None)
    yield DONE


# --- legacy completions -------------------------------------------------------------------


def completions(ctx: Ctx) -> Result:
    """Legacy ``/v1/completions``: ``prompt`` in, ``choices[].text`` out."""
    raw = ctx.fields.get("prompt")
    text = "\n".join(map(str, raw)) if isinstance(raw, list) else str(raw or "")
    if not text:
        raise ctx.invalid("field prompt is required")
    turn = make_turn(
        ctx,
        from_messages([{"role": "user", "content": text}]),
        None,
        ctx.fields.get("max_tokens"),
        "cmpl-",
    )
    if ctx.fields.get("stream"):
        return Stream(_completion_events(ctx, turn))
    choice = {"index": 0, "text": turn.text, "finish_reason": _finish(turn), "logprobs": None}
    body = {
        "id": turn.id,
        "object": "text_completion",
        "created": turn.created,
        "model": turn.model,
        "choices": [choice],
        "usage": usage(turn),
    }
    return json_reply(body)


def _completion_events(ctx: Ctx, turn: Turn) -> Iterator[bytes]:
    base = {
        "id": turn.id,
        "object": "text_completion",
        "created": turn.created,
        "model": turn.model,
    }
    for piece in paced(ctx, turn.text):
        yield sse({**base, "choices": [{"index": 0, "text": piece, "finish_reason": None}]})
    yield sse({**base, "choices": [{"index": 0, "text": "", "finish_reason": _finish(turn)}]})
    yield DONE
