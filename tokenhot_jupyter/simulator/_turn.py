"""One simulated model turn (reasoning, answer, usage) shared by every chat wire format."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._context import Ctx
from ._structured import answer_text, dig, wanted
from ._text import Prompt, answer, count_tokens, pieces, prompt_tokens, reasoning, truncate
from ._text import wants_reasoning as _wants

_ON = ("enabled", "adaptive", True, "true", "on")


@dataclass(frozen=True)
class Turn:
    """What the simulated model says, with its usage."""

    id: str
    model: str
    created: int
    prompt: Prompt
    text: str
    reasoning: str
    truncated: bool
    prompt_tokens: int
    text_tokens: int
    reasoning_tokens: int
    tool: str = ""  # the answer is this tool's input (a structured answer through a tool)

    @property
    def completion_tokens(self) -> int:
        """Output tokens, reasoning included (OpenAI counts it that way)."""
        return self.text_tokens + self.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.prompt_tokens + self.completion_tokens


def make_turn(ctx: Ctx, prompt: Prompt, effort: str | None, max_tokens: Any, prefix: str) -> Turn:
    """Compose the reply of ``ctx``'s model to ``prompt``."""
    served = ctx.model
    want = wanted(ctx.fields)
    if want is None:
        text = answer(served.id, prompt)
    else:
        text = answer_text(want, served.id, prompt.text, ctx.fault.schema_mismatch)
    text, cut = truncate(text, _int(max_tokens))
    thought = reasoning(served.id, prompt, effort) if served.reasoning and _wants(effort) else ""
    return Turn(
        id=f"{prefix}{secrets.token_hex(12)}",
        model=str(ctx.fields.get("model") or served.id),
        created=int(ctx.now()),
        prompt=prompt,
        text=text,
        reasoning=thought,
        truncated=cut,
        prompt_tokens=prompt_tokens(prompt),
        text_tokens=count_tokens(text),
        reasoning_tokens=count_tokens(thought),
        tool=want.tool if want else "",
    )


def effort_of(ctx: Ctx) -> str | None:
    """The reasoning effort a chat-style request asks for, from any of its dialects."""
    f = ctx.fields
    if ctx.effort:
        return ctx.effort
    for value in (
        f.get("reasoning_effort"),
        dig(f, "reasoning", "effort"),
        dig(f, "output_config", "effort"),
        dig(f, "extra_body", "google", "thinking_config", "thinking_level"),
    ):
        if isinstance(value, str) and value:
            return value
    thinking = f.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in _ON:
        return "high" if thinking.get("type") == "adaptive" else "medium"
    if (
        f.get("enable_thinking") in _ON
        or dig(f, "extra_body", "google", "thinking_config", "include_thoughts") is True
    ):
        return "medium"
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def paced(ctx: Ctx, text: str) -> Iterator[str]:
    """The pieces of ``text``, waiting ``token_delay`` real seconds before each."""
    delay = ctx.state.options.token_delay
    for piece in pieces(text):
        ctx.state.wait(delay)
        yield piece


def settle(ctx: Ctx, turn: Turn) -> None:
    """Make a non-stream reply take about as long as its stream would (capped at 2 s)."""
    tokens = len(pieces(turn.text)) + len(pieces(turn.reasoning))
    ctx.state.wait(min(2.0, ctx.state.options.token_delay * tokens))
