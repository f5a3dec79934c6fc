"""Chat in every family the gateway speaks: chat completions, Responses, Anthropic, Gemini.

Each family is a small `Wire`: how to build the body, where to send it, how to read a
whole reply and how to read one streamed event.  `ChatCall` picks the wire from the
catalog and does the common work (options, messages, images, timing, usage).  A call
with a schema also takes a `Structured` row (named by the catalog's family): how that
family asks for JSON of a schema and, where it is not the answer's text, where it comes back.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import _exceptions as E
from ._catalog import FAMILIES, Model
from ._http import Body, Connection, json_body, set_if_given
from ._media import (
    MAX_MEDIA_BYTES,
    Media,
    check_kind,
    check_media_size,
    extract_markdown_images,
    load_inputs,
    load_media,
)
from ._schema import Schema, SchemaSpec, schema_of
from ._sse import SSEEvent
from ._types import ChatChunk, ChatResult, Image, Usage

OPTIONS = ("temperature", "max_tokens", "reasoning")  # every family takes these (as it names them)
# Anthropic thinking budgets per effort; models with the "effort-in-name" quirk take the
# effort as a model-name suffix instead (spec §1.6).
_THINKING_BUDGET = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16000,
    "xhigh": 24000,
    "max": 32000,
}


@dataclass
class Message:
    """A chat turn in family-neutral form."""

    role: str
    text: str
    images: list[Media] = field(default_factory=list)


def to_messages(
    prompt: str | Sequence[Mapping[str, Any]], system: str | None = None, images: Sequence[Any] = ()
) -> list[Message]:
    """Normalise a prompt or OpenAI-style message list; images join the last user turn."""
    if isinstance(prompt, str):
        turns = [Message("user", prompt)]
    else:
        turns = [_from_openai(m) for m in prompt]
    if system:
        turns.insert(0, Message("system", system))
    if not any(t.role == "user" for t in turns):
        raise E.InvalidInputError("The conversation has no user message.", hint="Pass a prompt.")
    if images:
        last_user = [t for t in turns if t.role == "user"][-1]
        last_user.images.extend(load_media(i) for i in images)
    return turns


def _from_openai(message: Mapping[str, Any]) -> Message:
    if not isinstance(message, Mapping) or "role" not in message:
        raise E.InvalidInputError(
            "Each message must be a dict with 'role' and 'content'.",
            hint='Example: [{"role": "user", "content": "Hi"}]',
        )
    content = message.get("content") or ""
    if isinstance(content, str):
        return Message(str(message["role"]), content)
    texts, images = [], []
    for part in content:
        if part.get("type") in ("text", "input_text"):
            texts.append(str(part.get("text", "")))
        elif part.get("type") in ("image_url", "input_image"):
            url = part.get("image_url")
            images.append(load_media(url.get("url") if isinstance(url, Mapping) else url))
    return Message(str(message["role"]), "\n".join(texts), images)


def _system(messages: list[Message]) -> tuple[str | None, list[Message]]:
    system = "\n\n".join(m.text for m in messages if m.role in ("system", "developer"))
    return system or None, [m for m in messages if m.role not in ("system", "developer")]


# --- chat completions ------------------------------------------------------------------


def cc_body(model: Model, messages: list[Message], opts: Mapping[str, Any]) -> Body:
    """A ``/v1/chat/completions`` body."""
    body: Body = {"model": model.id, "messages": [_cc_message(m) for m in messages]}
    set_if_given(body, "temperature", opts.get("temperature"))
    set_if_given(body, "max_tokens", opts.get("max_tokens"))
    set_if_given(body, "reasoning_effort", opts.get("reasoning"))
    return body


def _cc_message(m: Message) -> Body:
    if not m.images:
        return {"role": m.role, "content": m.text}
    parts: list[Body] = [{"type": "text", "text": m.text}] if m.text else []
    parts += [{"type": "image_url", "image_url": {"url": i.as_url()}} for i in m.images]
    return {"role": m.role, "content": parts}


def cc_parse(raw: Mapping[str, Any]) -> tuple[str, str, Usage | None, str | None]:
    """(text, reasoning, usage, finish reason) of a chat completion."""
    choice = (raw.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    # A strict-schema refusal comes instead of content; it is the answer's text then.
    text = _content_text(message.get("content")) or str(message.get("refusal") or "")
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    return text, str(reasoning), Usage.parse(raw.get("usage")), choice.get("finish_reason")


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return str(content or "")


def cc_event(event: SSEEvent, state: StreamState) -> None:
    """Read one chat-completion chunk; ``[DONE]`` ends the stream."""
    if event.done:
        state.ended = True
        return
    chunk = event.json()
    state.usage = Usage.parse(chunk.get("usage")) or state.usage
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        state.add(
            _content_text(delta.get("content")),
            delta.get("reasoning_content") or delta.get("reasoning"),
        )
        state.finish = choice.get("finish_reason") or state.finish


# --- Responses API ---------------------------------------------------------------------


def responses_body(model: Model, messages: list[Message], opts: Mapping[str, Any]) -> Body:
    """A ``/v1/responses`` body."""
    system, turns = _system(messages)
    body: Body = {"model": model.id, "input": [_responses_message(m) for m in turns]}
    set_if_given(body, "instructions", system)
    set_if_given(body, "temperature", opts.get("temperature"))
    set_if_given(body, "max_output_tokens", opts.get("max_tokens"))
    if opts.get("reasoning"):
        body["reasoning"] = {"effort": opts["reasoning"], "summary": "auto"}
    return body


def _responses_message(m: Message) -> Body:
    kind = "output_text" if m.role == "assistant" else "input_text"
    parts: list[Body] = [{"type": kind, "text": m.text}]
    parts += [{"type": "input_image", "image_url": i.as_url()} for i in m.images]
    return {"role": m.role, "content": parts}


def responses_parse(raw: Mapping[str, Any]) -> tuple[str, str, Usage | None, str | None]:
    """(text, reasoning, usage, status) of a Responses object."""
    text, reasoning = [], []
    for item in raw.get("output") or []:
        if item.get("type") == "message":
            text += [
                c.get("text", "")
                for c in item.get("content") or []
                if c.get("type") == "output_text"
            ]
        elif item.get("type") == "reasoning":
            reasoning += [s.get("text", "") for s in item.get("summary") or []]
    return "".join(text), "".join(reasoning), Usage.parse(raw.get("usage")), raw.get("status")


def responses_event(event: SSEEvent, state: StreamState) -> None:
    """Read one named Responses event."""
    data = event.json()
    kind = data.get("type") or event.event
    if kind == "response.output_text.delta":
        state.add(data.get("delta", ""), None)
    elif kind == "response.reasoning_summary_text.delta":
        state.add("", data.get("delta", ""))
    elif kind in ("response.completed", "response.incomplete"):  # a whole (maybe capped) answer
        response = data.get("response") or {}
        state.usage = Usage.parse(response.get("usage")) or state.usage
        state.finish = response.get("status") or kind
        state.ended = True
    elif kind in ("response.failed", "error"):
        error = (data.get("response") or {}).get("error") or data.get("error") or data
        state.fail(str(error.get("message") if isinstance(error, Mapping) else error))


# --- Anthropic messages ----------------------------------------------------------------


def anthropic_body(model: Model, messages: list[Message], opts: Mapping[str, Any]) -> Body:
    """A ``/v1/messages`` body (``max_tokens`` is optional at the gateway)."""
    system, turns = _system(messages)
    body: Body = {"model": model.id, "messages": [_anthropic_message(m) for m in turns]}
    set_if_given(body, "system", system)
    set_if_given(body, "temperature", opts.get("temperature"))
    set_if_given(body, "max_tokens", opts.get("max_tokens"))
    effort = opts.get("reasoning")
    if effort and "effort-in-name" in model.quirks:
        body["model"] = f"{model.id}-{effort}"
    elif effort:
        budget = _THINKING_BUDGET.get(str(effort), 8192)
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        body["max_tokens"] = max(int(body.get("max_tokens") or 0), budget + 2048)
        body.pop("temperature", None)  # Anthropic refuses temperature with thinking
    return body


def _anthropic_message(m: Message) -> Body:
    parts: list[Body] = [_anthropic_image(i) for i in m.images]
    parts.append({"type": "text", "text": m.text})
    return {"role": m.role, "content": parts if m.images else m.text}


def _anthropic_image(media: Media) -> Body:
    if media.url:
        return {"type": "image", "source": {"type": "url", "url": media.url}}
    data = base64.b64encode(media.as_bytes()).decode()
    return {"type": "image", "source": {"type": "base64", "media_type": media.mime, "data": data}}


def anthropic_parse(raw: Mapping[str, Any]) -> tuple[str, str, Usage | None, str | None]:
    """(text, thinking, usage, stop reason) of an Anthropic message."""
    blocks = raw.get("content") or []
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    thinking = "".join(b.get("thinking", "") for b in blocks if b.get("type") == "thinking")
    return text, thinking, Usage.parse(raw.get("usage")), raw.get("stop_reason")


def anthropic_event(event: SSEEvent, state: StreamState) -> None:
    """Read one Anthropic stream event."""
    data = event.json()
    kind = data.get("type") or event.event
    if kind == "content_block_delta":
        delta = data.get("delta") or {}
        state.add(delta.get("text", ""), delta.get("thinking"))
    elif kind == "message_start":
        state.usage = Usage.parse((data.get("message") or {}).get("usage"))
    elif kind == "message_delta":
        out = Usage.parse(data.get("usage"))
        if out:
            before = state.usage or Usage()
            total = before.input_tokens + out.output_tokens
            state.usage = Usage(
                input_tokens=before.input_tokens,
                output_tokens=out.output_tokens,
                total_tokens=total,
            )
        state.finish = (data.get("delta") or {}).get("stop_reason") or state.finish
    elif kind == "message_stop":
        state.ended = True
    elif kind == "error":
        state.fail(str((data.get("error") or {}).get("message") or data))


# --- Gemini native -----------------------------------------------------------------------


def gemini_body(model: Model, messages: list[Message], opts: Mapping[str, Any]) -> Body:
    """A ``:generateContent`` body."""
    system, turns = _system(messages)
    body: Body = {"contents": [gemini_content(m) for m in turns]}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config: Body = {}
    set_if_given(config, "temperature", opts.get("temperature"))
    set_if_given(config, "maxOutputTokens", opts.get("max_tokens"))
    if opts.get("reasoning"):
        config["thinkingConfig"] = {"thinkingLevel": opts["reasoning"], "includeThoughts": True}
    if config:
        body["generationConfig"] = config
    return body


def gemini_content(m: Message) -> Body:
    """One Gemini ``content`` with text and inline images (URLs must be downloaded first)."""
    parts: list[Body] = [{"text": m.text}] if m.text else []
    for media in m.images:
        inline = {"mimeType": media.mime, "data": base64.b64encode(media.as_bytes()).decode()}
        parts.append({"inlineData": inline})
    return {"role": "model" if m.role == "assistant" else "user", "parts": parts}


def gemini_parts(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The parts of the first candidate."""
    candidates = raw.get("candidates") or [{}]
    return list((candidates[0].get("content") or {}).get("parts") or [])


def gemini_parse(raw: Mapping[str, Any]) -> tuple[str, str, Usage | None, str | None]:
    """(text, thoughts, usage, finish reason) of a Gemini reply."""
    parts = gemini_parts(raw)
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    thoughts = "".join(p.get("text", "") for p in parts if p.get("thought"))
    finish = (raw.get("candidates") or [{}])[0].get("finishReason")
    return text, thoughts, Usage.parse(raw.get("usageMetadata")), finish


def gemini_event(event: SSEEvent, state: StreamState) -> None:
    """Read one Gemini stream chunk (each is a whole GenerateContentResponse)."""
    data = event.json()
    if "error" in data:
        state.fail(str((data.get("error") or {}).get("message") or data))
    for part in gemini_parts(data):
        if part.get("thought"):
            state.add("", part.get("text", ""))
        else:
            state.add(part.get("text", ""), None)
    state.usage = Usage.parse(data.get("usageMetadata")) or state.usage
    finish = (data.get("candidates") or [{}])[0].get("finishReason")
    state.finish = finish or state.finish
    state.ended = state.ended or bool(finish)  # the last chunk carries it; there is no sentinel


# --- structured answers ------------------------------------------------------------------

_SUBSCHEMA = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_SUBSCHEMAS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """``schema`` as OpenAI's strict mode takes it (every object closed with every property
    required, no ``default``), or None when a free-form object makes strict mode impossible.

    Requiring every property keeps each strict answer valid against ``schema`` itself,
    which it is checked against.
    """
    out = copy.deepcopy(dict(schema))
    return out if _close(out) else None


def _close(node: Any) -> bool:
    if not isinstance(node, dict):
        return True
    node.pop("default", None)
    if node.get("type") == "object" or "properties" in node:
        if not node.get("properties") or node.get("additionalProperties") not in (None, False):
            return False
        node["additionalProperties"] = False
        node["required"] = list(node["properties"])
    parts = [node.get(key) for key in _SUBSCHEMA]
    parts += [sub for key in _SUBSCHEMAS for sub in node.get(key) or ()]
    parts += [sub for key in _SCHEMA_MAPS for sub in (node.get(key) or {}).values()]
    return all(_close(part) for part in parts)


def _cc_schema(body: Body, schema: Schema, opts: Mapping[str, Any]) -> None:
    strict = strict_schema(schema.json_schema)
    spec = {"name": schema.name, "schema": strict or schema.json_schema, "strict": bool(strict)}
    body["response_format"] = {"type": "json_schema", "json_schema": spec}


def _responses_schema(body: Body, schema: Schema, opts: Mapping[str, Any]) -> None:
    strict = strict_schema(schema.json_schema)
    spec = {"name": schema.name, "schema": strict or schema.json_schema, "strict": bool(strict)}
    body.setdefault("text", {})["format"] = {"type": "json_schema", **spec}


def _anthropic_tool(body: Body, schema: Schema, opts: Mapping[str, Any]) -> None:
    tool = {"name": schema.name, "description": _TOOL_NOTE, "input_schema": schema.json_schema}
    body["tools"] = [tool]
    # Anthropic refuses a forced tool while thinking; with one tool and "auto" the answer
    # still comes through it (and a text answer is read as the JSON instead).
    forced = {"type": "tool", "name": schema.name}
    body["tool_choice"] = {"type": "auto"} if opts.get("reasoning") else forced


_TOOL_NOTE = "Give your answer as this tool's input."


def _gemini_schema(body: Body, schema: Schema, opts: Mapping[str, Any]) -> None:
    config = body.setdefault("generationConfig", {})
    config["responseMimeType"] = "application/json"
    config["responseJsonSchema"] = schema.json_schema


def anthropic_tool_parse(raw: Mapping[str, Any]) -> tuple[str, str, Usage | None, str | None]:
    """Like `anthropic_parse`, with the tool's input as the answer's text."""
    text, thinking, usage, stop = anthropic_parse(raw)
    inputs = [b.get("input") for b in raw.get("content") or [] if b.get("type") == "tool_use"]
    return (json.dumps(inputs[0]) if inputs else text), thinking, usage, stop


def anthropic_tool_event(event: SSEEvent, state: StreamState) -> None:
    """Like `anthropic_event`; the tool input's JSON deltas are the answer's text."""
    data = event.json()
    delta = data.get("delta") or {}
    if data.get("type") == "content_block_delta" and delta.get("type") == "input_json_delta":
        state.add(delta.get("partial_json", ""), None)
    else:
        anthropic_event(event, state)


@dataclass(frozen=True, kw_only=True)
class Structured:
    """How one family asks for JSON of a schema, and where the JSON comes back."""

    ask: Callable[[Body, Schema, Mapping[str, Any]], None]  # (body, schema, options)
    parse: Parse | None = None  # reads a whole reply, where the JSON is not its text
    event: Callable[[SSEEvent, StreamState], None] | None = None  # reads a stream event, so


# Keyed by the catalog's `Family.structured`.
STRUCTURED: dict[str, Structured] = {
    "response_format": Structured(ask=_cc_schema),
    "text.format": Structured(ask=_responses_schema),
    "tool": Structured(ask=_anthropic_tool, parse=anthropic_tool_parse, event=anthropic_tool_event),
    "responseJsonSchema": Structured(ask=_gemini_schema),
}
# Finish reasons of an answer cut off at max_tokens (chat, Anthropic, Gemini, Responses).
CUT_OFF = frozenset({"length", "max_tokens", "MAX_TOKENS", "incomplete"})


def structured_for(model: Model, api: str | None = None) -> Structured:
    """The structured-answer mechanism of the family ``model`` is sent through."""
    family = api or model.family
    name = FAMILIES[family].structured if family in FAMILIES else ""
    if name not in STRUCTURED:
        raise E.InvalidInputError(
            f"{model.id} cannot give structured answers (it is sent as {family}).",
            hint="Pick a chat model; Client().models('chat') lists them.",
            model=model.id,
        )
    return STRUCTURED[name]


# --- the family table -------------------------------------------------------------------

Parse = Callable[[Mapping[str, Any]], tuple[str, str, "Usage | None", "str | None"]]


@dataclass(frozen=True, kw_only=True)
class Wire:
    """How one family builds, sends and reads chat requests."""

    build: Callable[[Model, list[Message], Mapping[str, Any]], Body]
    parse: Parse
    event: Callable[[SSEEvent, StreamState], None]
    path: Callable[[Model, bool], str]  # (model, streamed)
    end: str  # the event that ends a whole stream; without it the answer is cut short
    stream_flag: bool = True  # the body carries "stream": true
    inline: bool = False  # images go as bytes: URLs are downloaded (and checked) first


def _cc_path(model: Model, stream: bool) -> str:
    return "/v1/chat/completions"


def _responses_path(model: Model, stream: bool) -> str:
    return "/v1/responses"


def _anthropic_path(model: Model, stream: bool) -> str:
    return "/v1/messages"


def _gemini_path(model: Model, stream: bool) -> str:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model.id}:{method}"


_CC = Wire(build=cc_body, parse=cc_parse, event=cc_event, path=_cc_path, end="[DONE]")
WIRES: dict[str, Wire] = {
    "chat-completions": _CC,
    "chat-image": _CC,
    "chat-audio": _CC,
    "responses": Wire(
        build=responses_body,
        parse=responses_parse,
        event=responses_event,
        path=_responses_path,
        end="response.completed",
    ),
    "anthropic": Wire(
        build=anthropic_body,
        parse=anthropic_parse,
        event=anthropic_event,
        path=_anthropic_path,
        end="message_stop",
    ),
    "gemini": Wire(
        build=gemini_body,
        parse=gemini_parse,
        event=gemini_event,
        path=_gemini_path,
        end="a finishReason",
        stream_flag=False,  # the route says it: streamGenerateContent
        inline=True,  # Gemini fetches no URL itself
    ),
}


def wire_for(model: Model, api: str | None = None) -> Wire:
    """The wire of ``model``'s family, or of ``api`` when the caller forces one."""
    family = api or model.family
    if family not in WIRES:
        raise E.InvalidInputError(
            f"{model.id} is a {model.kind} model; it cannot chat.",
            hint="Pick a chat model (Client().models('chat') lists them).",
            model=model.id,
        )
    return WIRES[family]


# --- running a call ------------------------------------------------------------------------


@dataclass
class StreamState:
    """What a stream has said so far."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish: str | None = None
    pending: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    ended: bool = False  # the family's end marker arrived (or a whole, unstreamed reply)

    def add(self, text: str | None, reasoning: str | None) -> None:
        """Record a delta; it is handed out by `drain`."""
        if text or reasoning:
            self.text.append(text or "")
            self.reasoning.append(reasoning or "")
            self.pending.append((text or "", reasoning or ""))

    def fail(self, message: str) -> None:
        """Remember an error event; raised once the pending deltas are out."""
        self.error = message

    def drain(self) -> list[tuple[str, str]]:
        """The deltas since the last call."""
        out, self.pending = self.pending, []
        return out


@dataclass(kw_only=True)
class ChatCall:
    """One chat request: model, messages and options resolved, ready to send."""

    conn: Connection
    model: Model
    messages: list[Message]
    options: Mapping[str, Any]
    extra: Mapping[str, Any]
    api: str | None = None
    schema: Schema | None = None  # the answer is JSON of this shape, parsed into .data

    @classmethod
    def of(
        cls,
        conn: Connection,
        model: Model,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        system: str | None,
        images: Any,
        api: str | None,
        params: Mapping[str, Any],
        schema: SchemaSpec | None = None,
    ) -> ChatCall:
        """A call with `OPTIONS` checked against the catalog; other ``params`` go in the body.

        ``schema`` is a `Schema` or anything `schema_of` takes; a bad one, or a model whose
        family cannot ask for one, fails here, before anything is sent.
        """
        extra = dict(params)
        options = {name: model.check(name, extra.pop(name, None)) for name in OPTIONS}
        shape = None if schema is None else schema_of(schema)
        if shape is not None:
            structured_for(model, api)
        messages = to_messages(prompt, system, load_inputs(images))
        return cls(
            conn=conn,
            model=model,
            messages=messages,
            options=options,
            extra=extra,
            api=api,
            schema=shape,
        )

    @property
    def wire(self) -> Wire:
        """The family wire for this call (reading the answer where its schema puts it)."""
        wire = wire_for(self.model, self.api)
        if self.schema is None:
            return wire
        how = structured_for(self.model, self.api)
        return replace(wire, parse=how.parse or wire.parse, event=how.event or wire.event)

    async def prepare(self) -> None:
        """Download image URLs for families that only take inline bytes."""
        if self.wire.inline:
            for message in self.messages:
                message.images = [await download_media(self.conn, i) for i in message.images]

    def body(self, stream: bool) -> Body:
        """The request body, with the caller's extra fields on top."""
        body = self.wire.build(self.model, self.messages, self.options)
        if self.schema is not None:
            structured_for(self.model, self.api).ask(body, self.schema, self.options)
        if stream and self.wire.stream_flag:
            body["stream"] = True
        body.update(self.extra)
        return body

    async def run(self) -> ChatResult:
        """Send without streaming and read the whole answer."""
        await self.prepare()
        started = time.monotonic()
        path = self.wire.path(self.model, False)
        response = await self.conn.request(
            "POST", path, mode="write", model=self.model.id, what="chat", json=self.body(False)
        )
        raw = json_body(response, model=self.model.id, what="chat")
        text, reasoning, usage, finish = self.wire.parse(raw)
        result = ChatResult(
            text=text,
            model=self.model.id,
            usage=usage,
            latency=time.monotonic() - started,
            reasoning=reasoning,
            finish_reason=finish,
            request_id=response.headers.get("x-oneapi-request-id"),
            raw=raw,
        )
        return self._with_data(with_inline_images(result))

    async def stream(self) -> AsyncIterator[ChatChunk]:
        """Send with streaming; yield deltas, then one final chunk with the result.

        A stream that stops before its family's end marker (cleanly or by a broken
        connection) raises StreamIncompleteError, which carries what did arrive.
        """
        await self.prepare()
        started = time.monotonic()
        state = StreamState()
        path = self.wire.path(self.model, True)
        events = self.conn.stream(
            "POST", path, model=self.model.id, what="chat", json=self.body(True)
        )
        try:
            async for event in events:
                self._read(event, state)
                for text, reasoning in state.drain():
                    yield ChatChunk(text, reasoning)
                if state.error:
                    raise E.ServerError(
                        f"{self.model.id} stopped with an error: {state.error}",
                        status_code=200,
                        model=self.model.id,
                    )
        except E.APIConnectionError as exc:
            if not state.text:  # nothing arrived: a plain connection error
                raise
            raise E.StreamIncompleteError(
                exc.message, result=self._result(state, started)
            ) from None
        if not state.ended:
            raise E.StreamIncompleteError(
                f"The {self.model.id} stream ended early (no {self.wire.end}): the answer may be "
                "cut short.",
                result=self._result(state, started),
            )
        yield ChatChunk(result=self._with_data(self._result(state, started)))

    def _result(self, state: StreamState, started: float) -> ChatResult:
        result = ChatResult(
            text="".join(state.text),
            model=self.model.id,
            usage=state.usage,
            latency=time.monotonic() - started,
            reasoning="".join(state.reasoning),
            finish_reason=state.finish,
        )
        return with_inline_images(result)

    def _with_data(self, result: ChatResult) -> ChatResult:
        """The result with its schema's object in ``data``; SchemaMismatch carries it if none.

        The answer is paid for, so a mismatch keeps it (``.result``) and nothing is re-sent.
        """
        if self.schema is None:
            return result
        try:
            result.data = self.schema.parse(result.text)
        except E.SchemaMismatch as exc:
            cut = " (the answer was cut off: raise max_tokens)"
            problem = exc.problem + (cut if result.finish_reason in CUT_OFF else "")
            raise E.SchemaMismatch(
                problem, raw=exc.raw, result=result, model=self.model.id
            ) from None
        return result

    def _read(self, event: SSEEvent, state: StreamState) -> None:
        if event.event == "__body__":  # the gateway answered without streaming
            self._read_whole(event, state)
        else:
            self._read_event(event, state)

    def _read_event(self, event: SSEEvent, state: StreamState) -> None:
        try:
            self.wire.event(event, state)
        except (ValueError, AttributeError, TypeError):
            raise E.ServerError(
                f"{self.model.id} sent a malformed stream event: {event.data[:80]!r}",
                status_code=200,
                model=self.model.id,
            ) from None

    def _read_whole(self, event: SSEEvent, state: StreamState) -> None:
        try:
            text, reasoning, usage, finish = self.wire.parse(event.json())
        except (ValueError, AttributeError, TypeError):
            raise E.ServerError(
                f"{self.model.id} sent a malformed reply.", status_code=200, model=self.model.id
            ) from None
        state.add(text, reasoning)
        state.usage, state.finish, state.ended = usage, finish, True


def with_inline_images(result: ChatResult) -> ChatResult:
    """Lift Markdown data-URI images out of the text (Gemini image models via chat)."""
    if "data:" not in result.text:
        return result
    found, rest = extract_markdown_images(result.text)
    result.images = [Image(data, mime) for data, mime in found]
    result.text = rest
    return result


async def download_media(conn: Connection, media: Media) -> Media:
    """Fetch a URL input so it can be sent inline: no bigger than a request can carry, and
    of the kind it stands for (an HTML error page is not an image)."""
    if not media.url:
        return media
    got = await conn.download(media.url, limit=MAX_MEDIA_BYTES)
    source = f"at {media.url.split('?')[0]}"
    check_media_size(got.size, media.what, source, exact=not got.cut)
    mime = check_kind(got.data, media.what, source, media.mime)
    return Media(got.data, mime, name=media.name, what=media.what)
