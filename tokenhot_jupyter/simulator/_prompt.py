"""Reduce each wire format's input (chat, Responses, Anthropic, Gemini) to a `Prompt`."""

from __future__ import annotations

from typing import Any

from ._text import Prompt

_IMAGE_PARTS = {"image_url", "input_image", "image"}
_AUDIO_PARTS = {"input_audio", "audio"}


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return str(part["text"])
    return ""


def _tally(content: Any) -> tuple[str, int, int]:
    """(text, images, audio clips) of one message's content (string or part list)."""
    if isinstance(content, str):
        return content, 0, 0
    if not isinstance(content, list):
        return "", 0, 0
    texts, images, audio = [], 0, 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        images += kind in _IMAGE_PARTS
        audio += kind in _AUDIO_PARTS
        texts.append(_part_text(part))
    return "\n".join(t for t in texts if t), images, audio


def from_messages(messages: list[Any], system: Any = None) -> Prompt:
    """Chat-completions or Anthropic ``messages`` (plus an Anthropic ``system``)."""
    context, images, audio, last = [_tally(system)[0]], 0, 0, ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        text, n_images, n_audio = _tally(message.get("content"))
        context.append(text)
        if message.get("role", "user") == "user":
            last, images, audio = text, images + n_images, audio + n_audio
    return Prompt(last, "\n".join(c for c in context if c), images, audio)


def from_responses(value: Any, instructions: Any = None) -> Prompt:
    """The Responses API ``input`` (a string or a list of items)."""
    if isinstance(value, str):
        context = "\n".join(t for t in (_part_text(instructions), value) if t)
        return Prompt(value, context)
    items = [
        item if "role" in item else {"role": "user", "content": [item]}
        for item in (value or [])
        if isinstance(item, dict)
    ]
    return from_messages(items, instructions)


def from_gemini(contents: Any, system: Any = None) -> Prompt:
    """Gemini ``contents`` (parts with ``text`` or ``inlineData``/``inline_data``)."""
    messages = []
    for content in contents if isinstance(contents, list) else []:
        if isinstance(content, dict):
            parts = [_gemini_part(p) for p in content.get("parts") or [] if isinstance(p, dict)]
            role = "assistant" if content.get("role") == "model" else "user"
            messages.append({"role": role, "content": parts})
    system_parts = system.get("parts") if isinstance(system, dict) else None
    system_text = "\n".join(_part_text(p) for p in system_parts or [])
    return from_messages(messages, system_text)


def _gemini_part(part: dict[str, Any]) -> dict[str, Any]:
    inline = part.get("inlineData") or part.get("inline_data") or part.get("fileData")
    if isinstance(inline, dict):
        mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
        return {"type": "audio" if mime.startswith("audio/") else "image"}
    return {"type": "text", "text": _part_text(part)}
