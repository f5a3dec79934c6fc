"""Structured answers: what shape of JSON to ask for, and the answer read back as Python.

`schema_of` takes any of the forms a user writes and gives one `Schema`:

- a concise field list, ``"name, age int, tags list[str], address {city, zip int}"``
  (grammar below);
- a JSON Schema dict (any draft `jsonschema` knows; checked before anything is sent);
- a dataclass, whose answers come back as instances (nested dataclasses, ``list[T]``,
  ``T | None``, ``Literal``, ``Enum``);
- a pydantic model class (duck-typed, so pydantic stays optional): ``model_json_schema()``
  goes on the wire and ``model_validate`` builds the answer.

The concise grammar, fields separated by commas or new lines::

    field   := name [type] ["?"] [":" description]     type defaults to str; "?" = may be null
    type    := str | int | float | bool | list | list[type] | {fields} | a|b|c (one of)
    spec    := fields | list[type]                      a top-level list: the answer is a list

A description runs to the next comma, new line or ``}``; quote it ("...") to use those.
A top-level list (or a JSON Schema whose root is not an object) is wrapped in an object
with one property, ``items``, since several families only take an object at the root;
`Schema.parse` unwraps it.  What a family's strict mode needs on top (every property
required, no extra properties) is added by that family's wire helper, not here.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import enum
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import InvalidInputError, SchemaMismatch

__all__ = ["Schema", "SchemaSpec", "schema_of"]

Build = Callable[[Any], Any]  # validated JSON -> the object the caller gets
WRAP = "items"  # the one property a non-object root is wrapped in
_HINT = (
    "Write fields like 'name, age int, tags list[str], address {city, zip int}', "
    "or pass a JSON Schema dict, a dataclass or a pydantic model class."
)
_CONCISE_HINT = "Fields look like 'name, age int, tags list[str], address {city, zip int}'."
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript)?[ \t]*\r?\n(.*?)\r?\n?```", re.DOTALL)
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Schema:
    """The JSON an answer must match, and how to turn a matching answer into Python."""

    name: str  # e.g. "answer" or the class name; the tool / format name on the wire
    json_schema: dict[str, Any]  # what goes on the wire (its root is always an object)
    fields: tuple[str, ...]  # top-level property names (DataFrame columns); () for a list
    build: Build | None = field(default=None, repr=False, compare=False)
    wrapped: bool = False  # the answer is a list, sent wrapped in {"items": [...]}

    def parse(self, text: str) -> Any:
        """JSON text (code fences allowed) -> Python objects; raises SchemaMismatch."""
        value = _loads(text)
        if self.wrapped and isinstance(value, list):  # a bare list where {"items": [...]} was due
            value = {WRAP: value}
        problem = _first_error(self.json_schema, value)
        if problem:
            raise SchemaMismatch(problem, raw=text)
        if self.wrapped:
            value = value[WRAP]
        try:
            return self.build(value) if self.build else value
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise SchemaMismatch(_one_line(str(exc)), raw=text) from None

    def canonical(self) -> str:
        """The wire schema as sorted JSON: the same text for the same question."""
        return json.dumps(self.json_schema, sort_keys=True, separators=(",", ":"))


SchemaSpec = typing.Union["Schema", str, Mapping[str, Any], type]  # what `schema_of` takes


def schema_of(spec: SchemaSpec) -> Schema:
    """A `Schema` from a concise string, a JSON Schema dict, a dataclass or a pydantic class."""
    if isinstance(spec, Schema):
        return spec
    if isinstance(spec, str):
        return _from_text(spec)
    if isinstance(spec, Mapping):
        return _from_json_schema(dict(spec))
    if isinstance(spec, type) and callable(getattr(spec, "model_json_schema", None)):
        return _from_pydantic(spec)
    if isinstance(spec, type) and dataclasses.is_dataclass(spec):
        return _from_dataclass(spec)
    raise InvalidInputError(
        f"A schema cannot be made from {type(spec).__name__} {_short(repr(spec))}.", hint=_HINT
    )


def _made(name: str, root: dict[str, Any], build: Build | None = None) -> Schema:
    """The Schema for a root schema, wrapped in an object when the root is not one."""
    if root.get("type") == "object":
        fields = tuple(root.get("properties") or ())
        return Schema(_wire_name(name), root, fields, build)
    wrapper = {
        "type": "object",
        "properties": {WRAP: root},
        "required": [WRAP],
        "additionalProperties": False,
    }
    return Schema(_wire_name(name), wrapper, (), build, wrapped=True)


def _wire_name(name: str) -> str:
    """A name every family takes for a tool or a format: letters, digits, _ and -."""
    return _NAME_CHARS.sub("_", name).strip("_")[:64] or "answer"


# --- reading an answer ----------------------------------------------------------------------


def _loads(text: str) -> Any:
    """The JSON in an answer, also when a model wrapped it in a code fence."""
    body = text.strip()
    if not body.startswith(("{", "[")) and (fenced := _FENCE.search(body)):
        body = fenced.group(1).strip()
    if not body:
        raise SchemaMismatch("the answer is empty", raw=text)
    try:
        return json.loads(body)
    except ValueError as exc:
        problem = f"the answer is not JSON ({exc})"
    start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
    if start >= 0:  # a sentence around the JSON ("Here it is: {...}")
        with contextlib.suppress(ValueError):
            return json.JSONDecoder().raw_decode(body, start)[0]
    raise SchemaMismatch(problem, raw=text)


def _first_error(schema: Mapping[str, Any], value: Any) -> str:
    """The most relevant validation error, as ``$.path: message``; empty when it matches."""
    import jsonschema  # lazily: loading the client must stay cheap

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return ""
    path = list(error.absolute_path)
    if path[:1] == [WRAP] and "properties" in schema and list(schema["properties"]) == [WRAP]:
        path = path[1:]
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return f"{where}: {_one_line(error.message)}"


def _one_line(text: str, n: int = 160) -> str:
    return _short(" ".join(text.split()), n)


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --- JSON Schema dicts ----------------------------------------------------------------------


def _from_json_schema(schema: dict[str, Any], name: str | None = None) -> Schema:
    import jsonschema  # lazily, as above

    try:
        json.dumps(schema)
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"The schema dict is not JSON: {_one_line(str(exc))}.") from None
    except jsonschema.exceptions.SchemaError as exc:
        raise InvalidInputError(
            f"The schema dict is not a valid JSON Schema: {_one_line(exc.message)}.",
            hint="See https://json-schema.org/understanding-json-schema/.",
        ) from None
    return _made(name or str(schema.get("title") or "answer"), copy.deepcopy(schema))


def _from_pydantic(cls: type) -> Schema:
    schema = dict(cls.model_json_schema())  # type: ignore[attr-defined]
    made = _from_json_schema(schema, cls.__name__)
    return dataclasses.replace(made, build=cls.model_validate)  # type: ignore[attr-defined]


# --- dataclasses ----------------------------------------------------------------------------

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    type(None): {"type": "null"},
    Any: {},
}


def _from_dataclass(cls: type) -> Schema:
    return _made(cls.__name__, _type_schema(cls, (), "$"), lambda value: _build(cls, value))


def _type_schema(tp: Any, seen: tuple[type, ...], where: str) -> dict[str, Any]:
    """The JSON Schema of one annotation (``seen`` guards against recursive dataclasses)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_schema(tp, seen, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [member.value for member in tp]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a, seen, where) for a in args]}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        item = args[0] if args else Any
        return {"type": "array", "items": _type_schema(item, seen, f"{where}[]")}
    if origin is dict or tp is dict:
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": _type_schema(value, seen, where)}
    raise InvalidInputError(
        f"The schema cannot hold {where} of type {getattr(tp, '__name__', tp)!s}.",
        hint="Use str, int, float, bool, lists, dicts, Literal, Enum or nested dataclasses.",
    )


def _dataclass_schema(cls: type, seen: tuple[type, ...], where: str) -> dict[str, Any]:
    if cls in seen:
        raise InvalidInputError(
            f"The dataclass {cls.__name__} contains itself ({where}); a schema cannot.",
            hint="Give the nested part its own dataclass.",
        )
    hints = _hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    properties = {
        f.name: _type_schema(hints[f.name], (*seen, cls), f"{where}.{f.name}") for f in fields
    }
    required = [f.name for f in fields if _no_default(f)]
    return {"type": "object", "properties": properties, "required": required}


def _hints(cls: type) -> dict[str, Any]:
    """The dataclass's annotations, evaluated (its own name resolves, for nesting itself)."""
    try:
        return typing.get_type_hints(cls, localns={cls.__name__: cls})
    except (NameError, TypeError) as exc:
        raise InvalidInputError(
            f"The annotations of {cls.__name__} cannot be read: {_one_line(str(exc))}.",
            hint="Define the classes they name first, at the top level of the notebook.",
        ) from None


def _no_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _build(tp: Any, value: Any) -> Any:
    """A validated JSON value as the annotation ``tp`` describes it (dataclasses, enums)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = _hints(tp)
        given = {f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(tp)
                 if f.init and f.name in value}  # fmt: skip
        return tp(**given)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if origin in (typing.Union, types.UnionType):
        return _build_union(args, value)
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        items = [_build(args[0] if args else Any, v) for v in value]
        return origin(items) if origin is not list else items
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: _build(args[1], v) for k, v in value.items()}
    return value


def _build_union(args: tuple[Any, ...], value: Any) -> Any:
    """The first member of a union that the value is an instance of (dataclasses by shape)."""
    if value is None:
        return None
    for member in args:
        if member is not type(None) and not _build_problem(member, value):
            return _build(member, value)
    return value


def _build_problem(tp: Any, value: Any) -> str:
    return _first_error(_type_schema(tp, (), "$"), value)


# --- the concise field list -----------------------------------------------------------------

_CONCISE_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"}, "string": {"type": "string"},
    "int": {"type": "integer"}, "integer": {"type": "integer"},
    "float": {"type": "number"}, "number": {"type": "number"},
    "bool": {"type": "boolean"}, "boolean": {"type": "boolean"},
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z0-9_.+-]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _from_text(spec: str) -> Schema:
    reader = _Reader(spec)
    reader.skip_separators()
    if reader.at_end():
        raise InvalidInputError("The schema is empty.", hint=_CONCISE_HINT)
    root = reader.type_() if reader.peek_word() == "list" and reader.after_word("[") else None
    if root is None:
        root = reader.object_(closing=None)
    reader.skip_separators()
    if not reader.at_end():
        reader.fail(f"unexpected {reader.rest()!r}")
    return _made("answer", root)


class _Reader:
    """A cursor over a concise spec; each method reads one part of the grammar."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def fail(self, what: str) -> typing.NoReturn:
        raise InvalidInputError(
            f"Cannot read the schema {_short(self.text.strip())!r}: {what} "
            f"(at character {self.pos + 1}).",
            hint=_CONCISE_HINT,
        )

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def rest(self) -> str:
        return _short(self.text[self.pos :].strip(), 20)

    def skip_spaces(self) -> None:
        while not self.at_end() and self.text[self.pos] in " \t":
            self.pos += 1

    def skip_separators(self) -> bool:
        """Skip commas, new lines and spaces; True when any comma or new line was there."""
        found = False
        while not self.at_end() and self.text[self.pos] in " \t\r\n,":
            found = found or self.text[self.pos] in "\r\n,"
            self.pos += 1
        return found

    def take(self, char: str) -> bool:
        self.skip_spaces()
        if self.text.startswith(char, self.pos):
            self.pos += len(char)
            return True
        return False

    def expect(self, char: str, what: str) -> None:
        if not self.take(char):
            self.fail(f"expected {char!r} {what}")

    def peek_word(self) -> str:
        self.skip_spaces()
        found = _WORD.match(self.text, self.pos)
        return found.group(0) if found else ""

    def after_word(self, char: str) -> bool:
        """True when the next word is followed by ``char``."""
        end = self.pos + len(self.peek_word())
        return self.text.startswith(char, end)

    def word(self, pattern: re.Pattern[str], what: str) -> str:
        self.skip_spaces()
        found = pattern.match(self.text, self.pos)
        if not found:
            self.fail(f"expected {what}")
        self.pos = found.end()
        return found.group(0)

    def object_(self, closing: str | None) -> dict[str, Any]:
        """Fields up to ``closing`` (or the end), as an object schema."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        while True:
            self.skip_separators()
            if closing and self.take(closing):
                break
            if self.at_end():
                if closing:
                    self.fail(f"missing {closing!r}")
                break
            name, schema, optional = self.field_()
            if name in properties:
                self.fail(f"the field {name!r} appears twice")
            properties[name] = schema
            if not optional:
                required.append(name)
            if not self.skip_separators() and not self.at_end() and not self.peek(closing):
                self.fail(f"expected a comma after {name!r}")
        if not properties:
            self.fail("an object needs at least one field")
        return {"type": "object", "properties": properties, "required": required}

    def peek(self, char: str | None) -> bool:
        self.skip_spaces()
        return bool(char) and self.text.startswith(char or "", self.pos)

    def field_(self) -> tuple[str, dict[str, Any], bool]:
        name = self.word(_IDENT, "a field name")
        schema = {"type": "string"} if self.ends_type() else self.type_()
        optional = self.take("?")
        if optional:
            schema = {"anyOf": [schema, {"type": "null"}]}
        if self.take(":"):
            schema = {**schema, "description": self.description()}
        return name, schema, optional

    def ends_type(self) -> bool:
        """True when no type follows (the field is a string)."""
        self.skip_spaces()
        return self.at_end() or self.text[self.pos] in ",\r\n}?:"

    def type_(self) -> dict[str, Any]:
        if self.take("{"):
            return self.object_(closing="}")
        word = self.peek_word()
        if word == "list":
            self.pos += len(word)
            if not self.take("["):
                return {"type": "array", "items": {"type": "string"}}
            items = self.type_()
            self.expect("]", "to close list[")
            return {"type": "array", "items": items}
        if self.after_word("|"):
            return self.choices()
        if word.lower() not in _CONCISE_TYPES:
            self.fail(f"unknown type {word or self.rest()!r}; use str, int, float, bool, list, "
                      "list[T], {fields} or a|b|c")  # fmt: skip
        self.pos += len(word)
        return dict(_CONCISE_TYPES[word.lower()])

    def choices(self) -> dict[str, Any]:
        values = [self.word(_WORD, "a choice")]
        while self.take("|"):
            values.append(self.word(_WORD, "a choice after '|'"))
        return {"type": "string", "enum": values}

    def description(self) -> str:
        self.skip_spaces()
        if self.text.startswith(('"', "'"), self.pos):
            quote = self.text[self.pos]
            end = self.text.find(quote, self.pos + 1)
            if end < 0:
                self.fail("a quoted description is not closed")
            text, self.pos = self.text[self.pos + 1 : end], end + 1
            return text
        found = re.compile(r"[^,\r\n}\]]*").match(self.text, self.pos)
        assert found is not None  # the pattern matches the empty string
        self.pos = found.end()
        return found.group(0).strip()
