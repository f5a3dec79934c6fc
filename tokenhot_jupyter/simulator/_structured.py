"""Structured answers: the schema a request asks for, and a deterministic answer that fits it.

Every chat dialect has its own way to ask: ``response_format`` json_schema (chat
completions), ``text.format`` (Responses), a forced tool or ``output_format`` /
``output_config.format`` (Anthropic), ``responseJsonSchema`` or the OpenAPI-style
``responseSchema`` (Gemini).  `wanted` reads them all; `example` builds JSON that matches
(objects, arrays, enums, numbers within their bounds, booleans, local ``$ref``), the same
for the same model, prompt and schema.  The ``schema-mismatch`` fault makes it not match.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

_FORMATS = {
    "date": "2024-05-17",
    "date-time": "2024-05-17T09:30:00Z",
    "time": "09:30:00",
    "email": "ada@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


@dataclass(frozen=True)
class Wanted:
    """The schema a request asks its answer to match; ``tool`` names the tool it comes in."""

    schema: dict[str, Any]
    tool: str = ""


def wanted(fields: dict[str, Any]) -> Wanted | None:
    """The structured answer a chat request of any dialect asks for, if any."""
    for read in (_chat_format, _responses_format, _anthropic_format, _anthropic_tool, _gemini):
        found = read(fields)
        if found is not None:
            return found
    return None


def dig(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]…``, or None where a level is missing or not a dict."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _schema(value: Any) -> Wanted | None:
    return Wanted(value) if isinstance(value, dict) else None


def _chat_format(f: dict[str, Any]) -> Wanted | None:
    kind = dig(f, "response_format", "type")
    if kind == "json_object":
        return Wanted({"type": "object", "properties": {"answer": {"type": "string"}}})
    return _schema(dig(f, "response_format", "json_schema", "schema")) if kind else None


def _responses_format(f: dict[str, Any]) -> Wanted | None:
    if dig(f, "text", "format", "type") == "json_schema":
        return _schema(dig(f, "text", "format", "schema"))
    return None


def _anthropic_format(f: dict[str, Any]) -> Wanted | None:
    for spec in (f.get("output_format"), dig(f, "output_config", "format")):
        if dig(spec, "type") == "json_schema":
            return _schema(dig(spec, "schema"))
    return None


def _anthropic_tool(f: dict[str, Any]) -> Wanted | None:
    """A forced tool, or the only tool when the model may choose (it always does)."""
    tools = [t for t in f.get("tools") or [] if isinstance(t, dict) and "input_schema" in t]
    choice: dict[str, Any] = f["tool_choice"] if isinstance(f.get("tool_choice"), dict) else {}
    if not tools or choice.get("type") == "none":
        return None
    named = [t for t in tools if t.get("name") == choice.get("name")]
    if choice.get("type") == "tool" and named:
        tool = named[0]
    elif len(tools) == 1:
        tool = tools[0]
    else:
        return None
    schema = tool.get("input_schema")
    return Wanted(schema, str(tool.get("name") or "tool")) if isinstance(schema, dict) else None


def _gemini(f: dict[str, Any]) -> Wanted | None:
    config = f.get("generationConfig") or f.get("generation_config") or {}
    if not isinstance(config, dict):
        return None
    for key in ("responseJsonSchema", "response_json_schema", "responseSchema", "response_schema"):
        if isinstance(config.get(key), dict):
            return Wanted(config[key])
    return None


# --- the answer -------------------------------------------------------------------------------


def answer_text(want: Wanted, model: str, prompt: str, broken: bool) -> str:
    """The JSON answer (text) of ``model`` to ``prompt``; ``broken``: one that fails its schema."""
    value = example(want.schema, _seed(model, prompt, json.dumps(want.schema, sort_keys=True)))
    return json.dumps(break_it(want.schema, value) if broken else value)


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")


def example(schema: Any, seed: int, root: Any = None, name: str = "value", depth: int = 0) -> Any:
    """A value that matches ``schema`` (deterministic in ``seed``)."""
    root = schema if root is None else root
    node = _resolve(schema, root)
    if not isinstance(node, dict) or depth > 12:
        return None if depth > 12 else f"{name} {seed % 97}"
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][seed % len(node["enum"])]
    for key in ("anyOf", "oneOf"):
        options = [o for o in node.get(key) or [] if _type(_resolve(o, root)) != "null"]
        if options:
            return example(options[seed % len(options)], seed, root, name, depth + 1)
    if node.get("allOf"):
        merged = _merge([_resolve(part, root) for part in node["allOf"]])
        return example(merged, seed, root, name, depth + 1)
    return _BY_TYPE.get(_type(node), _string)(node, seed, root, name, depth)


def _resolve(schema: Any, root: Any) -> Any:
    """Follow a local ``$ref`` (``#/$defs/X``, ``#/definitions/X``)."""
    for _ in range(20):
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#"):
            return schema
        target = root
        for part in (p for p in ref[1:].split("/") if p):
            target = target.get(part) if isinstance(target, dict) else None
        schema = {**{k: v for k, v in schema.items() if k != "$ref"}, **(target or {})}
    return schema


def _merge(parts: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, dict):
            properties = {**merged.get("properties", {}), **part.get("properties", {})}
            merged.update(part)
            if properties:
                merged["properties"] = properties
    return merged


def _type(node: Any) -> str:
    """The node's type in lower case (Gemini's OpenAPI schemas write "OBJECT"), not null."""
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if kind is None:
        return "object" if "properties" in node else "array" if "items" in node else ""
    return str(kind).lower()


def _object(node: dict[str, Any], seed: int, root: Any, name: str, depth: int) -> Any:
    properties = node.get("properties") or {}
    if not properties:
        extra = node.get("additionalProperties")
        value = example(extra, seed, root, "value", depth + 1) if isinstance(extra, dict) else name
        return {"key": value}
    return {
        key: example(sub, seed + i * 7919, root, key, depth + 1)
        for i, (key, sub) in enumerate(properties.items())
    }


def _array(node: dict[str, Any], seed: int, root: Any, name: str, depth: int) -> Any:
    low = int(node.get("minItems") or 0)
    high = node.get("maxItems")
    count = max(low, 2 if high is None else min(2, int(high)))
    item = node.get("items") if isinstance(node.get("items"), dict) else {}
    singular = name[:-1] if name.endswith("s") and len(name) > 3 else name
    return [example(item, seed + i * 104729, root, singular, depth + 1) for i in range(count)]


def _number(node: dict[str, Any], seed: int, root: Any, name: str, depth: int) -> Any:
    whole = _type(node) == "integer"
    step = 1 if whole else 0.1  # how far inside an exclusive bound
    low = _bound(node, "minimum", "exclusiveMinimum", step)
    high = _bound(node, "maximum", "exclusiveMaximum", -step)
    low = low if low is not None else (high - 100 if high is not None else 0)
    high = high if high is not None else low + 100
    if whole:
        low, high = math.ceil(low), math.floor(high)
        return low + seed % (high - low + 1) if high >= low else low
    return min(high, max(low, round(low + (seed % 1000) / 1000 * (high - low), 2)))


def _bound(node: dict[str, Any], inclusive: str, exclusive: str, step: float) -> float | None:
    for key, shift in ((inclusive, 0.0), (exclusive, step)):
        value = node.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value + shift
    return None


def _boolean(node: dict[str, Any], seed: int, root: Any, name: str, depth: int) -> Any:
    return seed % 2 == 0


def _null(node: dict[str, Any], seed: int, root: Any, name: str, depth: int) -> Any:
    return None


def _string(node: Any, seed: int, root: Any, name: str, depth: int) -> Any:
    fmt = node.get("format") if isinstance(node, dict) else None
    text = _FORMATS.get(str(fmt), f"{name.replace('_', ' ')} {seed % 97}")
    low = int(node.get("minLength") or 0) if isinstance(node, dict) else 0
    high = node.get("maxLength") if isinstance(node, dict) else None
    text = text.ljust(low, "x")
    return text[: int(high)] if isinstance(high, int) else text


_BY_TYPE = {
    "object": _object,
    "array": _array,
    "integer": _number,
    "number": _number,
    "boolean": _boolean,
    "null": _null,
    "string": _string,
}


def break_it(schema: dict[str, Any], value: Any) -> Any:
    """``value`` made to fail ``schema``: a required field left out, or a wrong type."""
    node = _resolve(schema, schema)
    if not isinstance(value, dict):
        return {"not": "what the schema asks for"}
    required = [k for k in node.get("required") or [] if k in value]
    if required:
        return {k: v for k, v in value.items() if k != required[0]}
    if value:
        first = next(iter(value))
        return {**value, first: [] if isinstance(value[first], str) else "not valid"}
    return ["not", "an", "object"]
