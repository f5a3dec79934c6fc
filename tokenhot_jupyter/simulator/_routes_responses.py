"""``POST /v1/responses`` and ``/v1/responses/compact`` (spec §5)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._context import Ctx
from ._http import Result, Stream, json_reply, sse
from ._prompt import from_responses
from ._turn import Turn, effort_of, make_turn, paced, settle


def responses(ctx: Ctx) -> Result:
    """The Responses API (native on OpenAI-type and xAI, converted on Gemini)."""
    f = ctx.fields
    if f.get("input") in (None, "", []):
        raise ctx.invalid("field input is required")
    prompt = from_responses(f.get("input"), f.get("instructions"))
    turn = make_turn(ctx, prompt, effort_of(ctx), f.get("max_output_tokens"), "resp_")
    if f.get("stream"):
        return Stream(_events(ctx, turn))
    settle(ctx, turn)
    body = response_object(ctx, turn, "incomplete" if turn.truncated else "completed")
    if ctx.req.path.endswith("/compact"):
        body["object"] = "response.compaction"
    return json_reply(body)


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "phase": "final_answer",
        "content": content if text or status == "completed" else [],
    }


def _reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"type": "reasoning", "id": item_id, "summary": summary}


def _ids(turn: Turn) -> tuple[str, str]:
    return "msg_" + turn.id[5:], "rs_" + turn.id[5:]


def response_object(ctx: Ctx, turn: Turn, status: str) -> dict[str, Any]:
    """A Responses ``response`` object in ``status``."""
    msg_id, rs_id = _ids(turn)
    done = status != "in_progress"
    output: list[dict[str, Any]] = []
    if done and turn.reasoning:
        output.append(_reasoning_item(rs_id, turn.reasoning))
    if done:
        output.append(_message_item(msg_id, turn.text, "completed"))
    f = ctx.fields
    return {
        "id": turn.id,
        "object": "response",
        "created_at": turn.created,
        "completed_at": turn.created + 2 if done else None,
        "status": status,
        "model": turn.model,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": f.get("instructions"),
        "max_output_tokens": f.get("max_output_tokens"),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": effort_of(ctx), "summary": None},
        "store": bool(f.get("store", True)),
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "metadata": f.get("metadata") or {},
        "usage": _usage(turn) if done else None,
    }


def _usage(turn: Turn) -> dict[str, Any]:
    return {
        "input_tokens": turn.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": turn.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": turn.reasoning_tokens},
        "total_tokens": turn.total_tokens,
    }


class _Seq:
    """Numbers the events of one stream (``sequence_number``)."""

    def __init__(self) -> None:
        self.n = -1

    def event(self, kind: str, **data: Any) -> bytes:
        self.n += 1
        return sse({"type": kind, "sequence_number": self.n, **data}, event=kind)


def _events(ctx: Ctx, turn: Turn) -> Iterator[bytes]:
    seq = _Seq()
    yield seq.event("response.created", response=response_object(ctx, turn, "in_progress"))
    yield seq.event("response.in_progress", response=response_object(ctx, turn, "in_progress"))
    index = 0
    if turn.reasoning:
        yield from _reasoning_events(ctx, turn, seq)
        index = 1
    yield from _text_events(ctx, turn, seq, index)
    final = response_object(ctx, turn, "incomplete" if turn.truncated else "completed")
    kind = "response.incomplete" if turn.truncated else "response.completed"
    yield seq.event(kind, response=final)


def _reasoning_events(ctx: Ctx, turn: Turn, seq: _Seq) -> Iterator[bytes]:
    _, rs_id = _ids(turn)
    where = {"item_id": rs_id, "output_index": 0, "summary_index": 0}
    yield seq.event("response.output_item.added", output_index=0, item=_reasoning_item(rs_id, ""))
    yield seq.event(
        "response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""}
    )
    for piece in paced(ctx, turn.reasoning):
        yield seq.event("response.reasoning_summary_text.delta", **where, delta=piece)
    yield seq.event("response.reasoning_summary_text.done", **where, text=turn.reasoning)
    yield seq.event(
        "response.reasoning_summary_part.done",
        **where,
        part={"type": "summary_text", "text": turn.reasoning},
    )
    yield seq.event(
        "response.output_item.done", output_index=0, item=_reasoning_item(rs_id, turn.reasoning)
    )


def _text_events(ctx: Ctx, turn: Turn, seq: _Seq, index: int) -> Iterator[bytes]:
    msg_id, _ = _ids(turn)
    where = {"item_id": msg_id, "output_index": index, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    yield seq.event(
        "response.output_item.added",
        output_index=index,
        item=_message_item(msg_id, "", "in_progress"),
    )
    yield seq.event("response.content_part.added", **where, part=empty)
    for piece in paced(ctx, turn.text):
        yield seq.event("response.output_text.delta", **where, delta=piece, logprobs=[])
    yield seq.event("response.output_text.done", **where, text=turn.text, logprobs=[])
    yield seq.event("response.content_part.done", **where, part={**empty, "text": turn.text})
    yield seq.event(
        "response.output_item.done",
        output_index=index,
        item=_message_item(msg_id, turn.text, "completed"),
    )
