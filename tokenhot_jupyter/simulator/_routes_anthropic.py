"""``POST /v1/messages``, the Anthropic wire format (spec §6)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ._context import Ctx
from ._http import Result, Stream, json_reply, sse
from ._prompt import from_messages
from ._turn import Turn, effort_of, make_turn, paced, settle

DEFAULT_MAX_TOKENS = 8192  # the gateway fills in a per-model default when absent or 0


def messages(ctx: Ctx) -> Result:
    """Anthropic messages: native on Claude channels, converted elsewhere."""
    f = ctx.fields
    msgs = f.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ctx.invalid("field messages is required")
    max_tokens = f.get("max_tokens") or DEFAULT_MAX_TOKENS
    ctx.forward({**f, "max_tokens": max_tokens, "model": ctx.model.upstream_name})
    turn = make_turn(ctx, from_messages(msgs, f.get("system")), effort_of(ctx), max_tokens, "msg_")
    if f.get("stream"):
        return Stream(_events(ctx, turn))
    settle(ctx, turn)
    return json_reply(_message(turn, _blocks(turn), _stop(turn), turn.completion_tokens))


def _stop(turn: Turn) -> str:
    if turn.truncated:
        return "max_tokens"
    return "tool_use" if turn.tool else "end_turn"


def _blocks(turn: Turn) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if turn.reasoning:
        blocks.append({"type": "thinking", "thinking": turn.reasoning, "signature": "c2ltdWxhdG9y"})
    if turn.tool:
        blocks.append({**_tool_block(turn), "input": _tool_input(turn)})
    else:
        blocks.append({"type": "text", "text": turn.text})
    return blocks


def _tool_block(turn: Turn) -> dict[str, Any]:
    """A ``tool_use`` block, input still empty (as a stream starts it)."""
    return {"type": "tool_use", "id": "toolu_" + turn.id[4:], "name": turn.tool, "input": {}}


def _tool_input(turn: Turn) -> Any:
    """The tool's input; an answer cut at max_tokens has only what was complete: nothing."""
    try:
        return json.loads(turn.text)
    except ValueError:
        return {}


def _message(turn: Turn, content: list[Any], stop: str | None, output: int) -> dict[str, Any]:
    usage = {
        "input_tokens": turn.prompt_tokens,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    return {
        "id": turn.id,
        "type": "message",
        "role": "assistant",
        "model": turn.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


def _event(kind: str, **data: Any) -> bytes:
    return sse({"type": kind, **data}, event=kind)


def _events(ctx: Ctx, turn: Turn) -> Iterator[bytes]:
    yield _event("message_start", message=_message(turn, [], None, 1))
    yield _event("ping")
    index = 0
    if turn.reasoning:
        yield from _thinking_events(ctx, turn)
        index = 1
    block, kind, key = {"type": "text", "text": ""}, "text_delta", "text"
    if turn.tool:
        block, kind, key = _tool_block(turn), "input_json_delta", "partial_json"
    yield _event("content_block_start", index=index, content_block=block)
    for piece in paced(ctx, turn.text):
        yield _event("content_block_delta", index=index, delta={"type": kind, key: piece})
    yield _event("content_block_stop", index=index)
    yield _event(
        "message_delta",
        delta={"stop_reason": _stop(turn), "stop_sequence": None},
        usage={"output_tokens": turn.completion_tokens},
    )
    yield _event("message_stop")


def _thinking_events(ctx: Ctx, turn: Turn) -> Iterator[bytes]:
    block = {"type": "thinking", "thinking": "", "signature": ""}
    yield _event("content_block_start", index=0, content_block=block)
    for piece in paced(ctx, turn.reasoning):
        yield _event(
            "content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": piece}
        )
    yield _event(
        "content_block_delta",
        index=0,
        delta={"type": "signature_delta", "signature": "c2ltdWxhdG9y"},
    )
    yield _event("content_block_stop", index=0)
