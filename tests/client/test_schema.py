"""Structured answers: schemas from every form, their wire in each family, and the round trip
against the simulator over loopback (nested objects and lists on all four chat families)."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Literal

import pytest

import tokenhot_jupyter as th
from tokenhot_jupyter._chat import strict_schema
from tokenhot_jupyter._schema import Schema, schema_of

# One model per chat family, and the family that asks through the Responses API.
FAMILIES = [
    ("gpt-5.4-mini", None),
    ("gpt-5.4-mini", "responses"),
    ("claude-sonnet-4-5-20250929", None),
    ("gemini-2.5-flash", None),
]
PERSON = (
    "name, age int, score float, ok bool, mood happy|sad|calm, tags list[str], "
    "address {street, city, zip int}, pets list[{name, kind cat|dog, age int}]"
)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Address:
    city: str
    zip: int


@dataclasses.dataclass
class Pet:
    name: str
    kind: Literal["cat", "dog"]


@dataclasses.dataclass
class Person:
    name: str
    age: int
    address: Address
    pets: list[Pet]
    colour: Colour
    nick: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


@pytest.fixture
def sim(tokenhot_simulator: Any) -> Any:
    tokenhot_simulator.token_delay = 0
    return tokenhot_simulator


@pytest.fixture
def client(sim: Any) -> th.Client:
    return th.Client(sim.api_key, sim.base_url, max_retries=0)


def _posts(sim: Any) -> list[Any]:
    return [r for r in sim.requests if r.method == "POST"]


# --- the concise field list ------------------------------------------------------------------


def test_concise_fields_types_and_nesting() -> None:
    schema = schema_of(PERSON)
    props = schema.json_schema["properties"]
    assert schema.fields == ("name", "age", "score", "ok", "mood", "tags", "address", "pets")
    assert props["name"] == {"type": "string"} and props["age"] == {"type": "integer"}
    assert props["score"] == {"type": "number"} and props["ok"] == {"type": "boolean"}
    assert props["mood"] == {"type": "string", "enum": ["happy", "sad", "calm"]}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["address"]["properties"]["zip"] == {"type": "integer"}
    assert props["address"]["required"] == ["street", "city", "zip"]
    pet = props["pets"]["items"]
    assert pet["properties"]["kind"]["enum"] == ["cat", "dog"] and pet["required"][0] == "name"
    assert schema.json_schema["required"] == list(schema.fields)
    assert schema_of("tags list").json_schema["properties"]["tags"]["items"] == {"type": "string"}


def test_concise_optional_descriptions_new_lines_and_a_list_root() -> None:
    schema = schema_of('title: the headline\nnick str?: "a nickname, if any"\nyear int')
    props = schema.json_schema["properties"]
    assert props["title"] == {"type": "string", "description": "the headline"}
    assert props["nick"]["anyOf"][1] == {"type": "null"}
    assert props["nick"]["description"] == "a nickname, if any"
    assert schema.json_schema["required"] == ["title", "year"]
    rows = schema_of("list[{name, age int}]")
    assert rows.wrapped and rows.fields == ()
    assert rows.json_schema["properties"]["items"]["type"] == "array"  # an object at the root
    assert rows.parse('{"items": [{"name": "Ada", "age": 36}]}') == [{"name": "Ada", "age": 36}]
    assert rows.parse('[{"name": "Ada", "age": 36}]') == [{"name": "Ada", "age": 36}]


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("", "The schema is empty."),
        ("name age", "unknown type 'age'"),
        ("x foo", "unknown type 'foo'"),
        ("a int, a", "the field 'a' appears twice"),
        ("x {a, b", "missing '}'"),
        ("x list[int", "expected ']'"),
        ("1abc", "expected a field name"),
        ("x {}", "an object needs at least one field"),
        ("x int int", "expected a comma after 'x'"),
        ('x: "open', "a quoted description is not closed"),
    ],
)
def test_a_bad_concise_spec_is_one_line_and_nothing_is_sent(
    client: th.Client, sim: Any, spec: str, said: str
) -> None:
    with pytest.raises(th.InvalidInputError) as caught:
        client.chat("Hi", "gpt-5.4-mini", schema=spec)
    line = caught.value._render_traceback_()
    assert len(line) == 1 and "\n" not in line[0] and said in line[0], line
    assert "Fields look like" in line[0]
    assert _posts(sim) == []


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ({"type": "objectx"}, "not a valid JSON Schema"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "x": {1, 2}}, "not JSON"),
        (42, "A schema cannot be made from int 42"),
    ],
)
def test_a_bad_schema_object_is_one_line_and_nothing_is_sent(
    client: th.Client, sim: Any, spec: Any, said: str
) -> None:
    with pytest.raises(th.InvalidInputError) as caught:
        client.chat("Hi", "gpt-5.4-mini", schema=spec)
    assert said in str(caught.value) and len(caught.value._render_traceback_()) == 1
    assert _posts(sim) == []


def test_a_model_that_cannot_answer_in_json_is_refused_before_sending(
    client: th.Client, sim: Any
) -> None:
    # Chat-image (Gemini pictures through chat completions) has no JSON mode.
    with pytest.raises(th.InvalidInputError, match="cannot give structured answers"):
        client.chat("Draw", "gpt-5.4-mini", api="chat-image", schema="name str")
    assert _posts(sim) == []


# --- classes and dicts ---------------------------------------------------------------------------


def test_dataclass_schema_and_instances() -> None:
    schema = schema_of(Person)
    assert schema.name == "Person" and schema.fields[:4] == ("name", "age", "address", "pets")
    props = schema.json_schema["properties"]
    assert props["colour"] == {"enum": ["red", "blue"]}
    assert props["pets"]["items"]["properties"]["kind"] == {"enum": ["cat", "dog"]}
    assert schema.json_schema["required"] == ["name", "age", "address", "pets", "colour"]
    answer = {
        "name": "Ada", "age": 36, "address": {"city": "London", "zip": 1},
        "pets": [{"name": "Tom", "kind": "cat"}], "colour": "blue", "nick": None,
    }  # fmt: skip
    person = schema.parse(json.dumps(answer))
    assert person == Person(
        "Ada", 36, Address("London", 1), [Pet("Tom", "cat")], Colour.BLUE, None, []
    )


def test_a_recursive_or_unsupported_dataclass_is_one_line() -> None:
    @dataclasses.dataclass
    class Node:
        child: Node | None

    @dataclasses.dataclass
    class Stamp:
        when: complex

    with pytest.raises(th.InvalidInputError, match="contains itself"):
        schema_of(Node)
    with pytest.raises(th.InvalidInputError, match=r"cannot hold \$\.when of type complex"):
        schema_of(Stamp)


def test_pydantic_model_schema_and_instances() -> None:
    pydantic = pytest.importorskip("pydantic")

    class City(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        name: str
        population: int

    class Trip(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        title: str
        stops: list[City]
        note: str | None = None

    schema = schema_of(Trip)
    assert schema.name == "Trip" and schema.fields == ("title", "stops", "note")
    trip = schema.parse('{"title": "Tour", "stops": [{"name": "Oslo", "population": 7}]}')
    assert isinstance(trip, Trip) and trip.stops[0] == City(name="Oslo", population=7)
    with pytest.raises(th.SchemaMismatch, match=r"\$\.stops\[0\]: 'population' is a required"):
        schema.parse('{"title": "Tour", "stops": [{"name": "Oslo"}]}')


def test_json_schema_dict_is_checked_and_kept() -> None:
    spec = {"title": "Sum up", "type": "object", "properties": {"n": {"type": "integer"}}}
    schema = schema_of(spec)
    assert schema.name == "Sum_up" and schema.json_schema == spec
    assert schema.json_schema is not spec  # a copy: the wire helpers never touch the user's
    assert schema_of(schema) is schema
    assert isinstance(schema_of({"type": "array", "items": {"type": "integer"}}), Schema)


# --- reading answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"n": 1}',
        '```json\n{"n": 1}\n```',
        'Here it is:\n\n```\n{"n": 1}\n```\nAnything else?',
        'Sure: {"n": 1} - hope that helps',
    ],
)
def test_parse_tolerates_fences_and_a_sentence_around(text: str) -> None:
    assert schema_of("n int").parse(text) == {"n": 1}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "the answer is empty"),
        ("I cannot help with that.", "the answer is not JSON"),
        ('{"n": "one"}', "$.n: 'one' is not of type 'integer'"),
        ("{}", "$: 'n' is a required property"),
    ],
)
def test_parse_mismatch_is_one_line_and_keeps_the_text(text: str, said: str) -> None:
    with pytest.raises(th.SchemaMismatch) as caught:
        schema_of("n int").parse(text)
    assert caught.value.raw == text and caught.value.result is None
    line = caught.value._render_traceback_()
    assert len(line) == 1 and said in line[0] and "\n" not in line[0], line


def test_strict_mode_closes_objects_and_requires_everything() -> None:
    strict = strict_schema(schema_of(Person).json_schema)
    assert strict is not None
    assert strict["additionalProperties"] is False
    assert strict["required"] == list(strict["properties"])
    pets = strict["properties"]["pets"]["items"]
    assert pets["additionalProperties"] is False and pets["required"] == ["name", "kind"]
    assert strict_schema({"type": "object", "additionalProperties": {"type": "string"}}) is None


# --- the wire, and the round trip through the simulator ----------------------------------------


def _structured_part(model: str, api: str | None, body: dict[str, Any]) -> Any:
    """Where each family's request carries the schema."""
    if api == "responses":
        return body["text"]["format"]["schema"]
    if model.startswith("gpt"):
        assert body["response_format"]["json_schema"]["strict"] is True
        return body["response_format"]["json_schema"]["schema"]
    if model.startswith("claude"):
        assert body["tool_choice"] == {"type": "tool", "name": "answer"}
        return body["tools"][0]["input_schema"]
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    return body["generationConfig"]["responseJsonSchema"]


@pytest.mark.parametrize(("model", "api"), FAMILIES)
def test_nested_and_list_fields_round_trip_on_every_family(
    client: th.Client, sim: Any, model: str, api: str | None
) -> None:
    schema = schema_of(PERSON)
    result = client.chat("Describe a person.", model, api=api, schema=PERSON)
    sent = _structured_part(model, api, _posts(sim)[-1].json)
    assert sent["properties"]["pets"]["items"]["properties"]["kind"]["enum"] == ["cat", "dog"]
    data = result.data
    assert set(data) == set(schema.fields) and data == schema.parse(result.text)
    assert isinstance(data["address"]["zip"], int) and isinstance(data["ok"], bool)
    assert isinstance(data["score"], float) and data["mood"] in ("happy", "sad", "calm")
    assert len(data["pets"]) == 2 and data["pets"][0]["kind"] in ("cat", "dog")
    assert all(isinstance(tag, str) for tag in data["tags"])
    chunks = list(client.chat_stream("Describe a person.", model, api=api, schema=PERSON))
    final = chunks[-1].result
    assert final is not None and final.data == data
    assert "".join(c.text for c in chunks[:-1]) == final.text  # the JSON streamed as text


@pytest.mark.parametrize(("model", "api"), FAMILIES)
def test_dataclass_answers_come_back_as_instances(
    client: th.Client, model: str, api: str | None
) -> None:
    person = client.chat("Describe a person.", model, api=api, schema=Person).data
    assert isinstance(person, Person) and isinstance(person.address, Address)
    assert all(isinstance(p, Pet) for p in person.pets) and isinstance(person.colour, Colour)


@pytest.mark.parametrize(("model", "api"), FAMILIES)
def test_a_list_root_round_trips(client: th.Client, model: str, api: str | None) -> None:
    rows = client.chat("List two people.", model, api=api, schema="list[{name, age int}]").data
    assert isinstance(rows, list) and rows and set(rows[0]) == {"name", "age"}


@pytest.mark.parametrize(("model", "api"), FAMILIES)
@pytest.mark.parametrize("stream", [False, True])
def test_a_mismatch_keeps_the_paid_result_and_sends_nothing_again(
    client: th.Client, sim: Any, model: str, api: str | None, stream: bool
) -> None:
    sim.faults.add("schema-mismatch", times=1)
    with pytest.raises(th.SchemaMismatch) as caught:
        if stream:
            list(client.chat_stream("Describe a person.", model, api=api, schema=PERSON))
        else:
            client.chat("Describe a person.", model, api=api, schema=PERSON)
    error = caught.value
    assert error.result is not None and error.result.text == error.raw and error.raw
    assert error.result.usage is not None and error.result.usage.output_tokens > 0
    assert error.result.data is None and "'name' is a required property" in str(error)
    assert str(error).startswith(f"{model}'s answer does not match the schema")
    assert len(_posts(sim)) == 1


def test_a_cut_off_answer_says_so(client: th.Client) -> None:
    with pytest.raises(th.SchemaMismatch, match=r"cut off: raise max_tokens"):
        client.chat("Describe a person.", "gpt-5.4-mini", schema=PERSON, max_tokens=5)


def test_anthropic_with_thinking_lets_the_model_choose_the_tool(
    client: th.Client, sim: Any
) -> None:
    result = client.chat("Hi", "claude-sonnet-4-5-20250929", schema="n int", reasoning="low")
    assert _posts(sim)[-1].json["tool_choice"] == {"type": "auto"}  # forced is refused then
    assert isinstance(result.data["n"], int) and result.reasoning


def test_async_client_takes_a_schema(sim: Any) -> None:
    async def ask() -> Any:
        aclient = th.AsyncClient(sim.api_key, sim.base_url)
        return (await aclient.chat("Hi", "gemini-2.5-flash", schema=Person)).data

    from tokenhot_jupyter._runtime import runtime

    assert isinstance(runtime.run(ask()), Person)
