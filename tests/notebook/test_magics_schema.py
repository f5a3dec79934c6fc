"""``%%chat --schema``: structured answers through a real InteractiveShell and the simulator."""

from __future__ import annotations

import dataclasses
import json
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest

from tokenhot_jupyter import ChatResult, InvalidInputError, SchemaMismatch

if TYPE_CHECKING:
    from magics_support import Shell

pytest_plugins = ("magics_support",)

SPEC = "'name, age int, ok bool, address {city, zip int}, pets list[{name, kind cat|dog}]'"


@dataclasses.dataclass
class Book:
    title: str
    year: int


def _plain(out: dict[str, Any]) -> str:
    return str(out["data"].get("text/plain", ""))


def _posts(shell: Shell) -> list[Any]:
    return [r for r in shell.sim.requests if r.method == "POST"]


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr()
    return [line for line in (err.out + err.err).splitlines() if line.strip()]


@pytest.mark.parametrize("stream", ["", "--no-stream"])
def test_a_concise_schema_shows_a_table_and_o_gets_the_object(shell: Shell, stream: str) -> None:
    shell.ok(f"%%chat --schema {SPEC} -o person {stream}\nDescribe a person <b>x</b>")
    person = shell.ip.user_ns["person"]
    assert set(person) == {"name", "age", "ok", "address", "pets"}
    assert isinstance(person["address"]["zip"], int) and person["pets"][0]["kind"] in ("cat", "dog")
    final = shell.final()
    assert set(final["data"]) == {"text/html", "text/plain"}
    html, plain = final["data"]["text/html"], _plain(final)
    assert html.startswith("<table>") and "<th style='text-align:left'>field</th>" in html
    assert f"<td style='text-align:left'>{person['name']}</td>" in html
    assert json.dumps(person["address"]) in plain and "est." in plain
    assert "<b>" not in html and "<script" not in html
    meta = final["metadata"]["tokenhot"]
    assert meta["params"]["schema"] == "answer" and meta["usage"]["output_tokens"] > 0
    body = _posts(shell)[-1].json
    assert body["response_format"]["json_schema"]["strict"] is True
    assert (body.get("stream") is True) == (stream == "")
    assert shell.session.tally.models["gpt-5.4-mini"].calls == 1


def test_a_list_of_objects_is_a_table_of_rows(shell: Shell) -> None:
    shell.ok("%%chat --schema 'list[{title, year int}]' -o rows\nList two books")
    rows = shell.ip.user_ns["rows"]
    assert isinstance(rows, list) and len(rows) == 2
    plain = _plain(shell.final())
    header = plain.splitlines()[0].split()
    assert header == ["title", "year"]
    assert all(str(r["year"]) in plain for r in rows)


@pytest.mark.parametrize("model", ["claude-sonnet-4-5-20250929", "gemini-2.5-flash"])
def test_a_dataclass_in_the_notebook(shell: Shell, model: str) -> None:
    shell.ip.user_ns["Book"] = Book
    shell.ok(f"%%chat -m {model} --schema Book -o book\nA classic")
    book = shell.ip.user_ns["book"]
    assert isinstance(book, Book) and isinstance(book.year, int)
    assert "title" in _plain(shell.final()) and book.title in _plain(shell.final())


def test_a_json_schema_dict_and_a_pydantic_model(shell: Shell) -> None:
    pydantic = pytest.importorskip("pydantic")
    shell.ip.user_ns["spec"] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    shell.ok("%%chat --schema spec -o got\nA number")
    assert isinstance(shell.ip.user_ns["got"]["n"], int)

    class Film(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        title: str
        minutes: int

    shell.ip.user_ns["Film"] = Film
    shell.ok("%%chat -m gemini-2.5-flash --schema Film -o film\nA film")
    assert isinstance(shell.ip.user_ns["film"], Film)


@pytest.mark.parametrize("stream", ["", "--no-stream"])
def test_a_mismatch_is_one_line_keeps_the_text_in_o_and_is_paid_once(
    shell: Shell, capsys: pytest.CaptureFixture[str], stream: str
) -> None:
    shell.sim.faults.add("schema-mismatch", times=1)
    capsys.readouterr()
    result = shell.run(f"%%chat --schema {SPEC} -o person {stream}\nDescribe a person")
    assert isinstance(result.error_in_exec, SchemaMismatch)
    lines = [line for line in _error_lines(capsys) if "Error" in line or "Mismatch" in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("SchemaMismatch: gpt-5.4-mini's answer does not match the schema")
    assert "'name' is a required property" in lines[0] and "person.text" in lines[0]
    kept = shell.ip.user_ns["person"]
    assert isinstance(kept, ChatResult) and kept.data is None and kept.text.startswith("{")
    shown = _plain(shell.final())
    assert kept.text[:20] in shown and "does not match the schema" in shown
    assert len(_posts(shell)) == 1  # nothing sent again
    assert shell.session.thread(None).turns == []  # not kept as context
    spend = shell.session.tally.models["gpt-5.4-mini"]  # paid, so counted, once
    assert kept.usage is not None and spend.calls == 1
    assert spend.usage.output_tokens == kept.usage.output_tokens


def test_a_mismatch_without_o_says_how_to_keep_the_text(
    shell: Shell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.sim.faults.add("schema-mismatch", times=1)
    capsys.readouterr()
    result = shell.run("%%chat --schema 'n int'\nA number")
    assert isinstance(result.error_in_exec, SchemaMismatch)
    assert "Add -o NAME to keep its text." in str(result.error_in_exec)


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("--schema Missing", "--schema Missing: no variable by that name"),
        ("--schema 'name age'", "unknown type 'age'"),
        ("--schema 'x {a'", "missing '}'"),
        ("--schema notaspec", "no variable by that name"),
        ("--schema number", "A schema cannot be made from int 7"),
    ],
)
def test_a_bad_spec_is_one_line_and_nothing_is_sent(
    shell: Shell, capsys: pytest.CaptureFixture[str], option: str, said: str
) -> None:
    shell.ip.user_ns["number"] = 7
    capsys.readouterr()
    result = shell.run(f"%%chat {option}\nHi")
    lines = _error_lines(capsys)
    assert len(lines) == 1 and said in lines[0], lines
    assert _posts(shell) == []
    error = result.error_in_exec
    assert isinstance(error, InvalidInputError) or lines[0].startswith("UsageError: ")


def test_compare_shows_each_models_object(shell: Shell) -> None:
    shell.ok(
        "%%chat -m gpt-5.4-mini,claude-sonnet-4-5-20250929,gemini-2.5-flash "
        "--schema 'title, year int' -o cmp\nA book"
    )
    cmp = shell.ip.user_ns["cmp"]
    assert set(cmp) == {"gpt-5.4-mini", "claude-sonnet-4-5-20250929", "gemini-2.5-flash"}
    assert all(isinstance(v["year"], int) for v in cmp.values())
    final = shell.final()
    html, plain = final["data"]["text/html"], _plain(final)
    assert html.count("<th style='text-align:left'>field</th>") == 3
    for value in cmp.values():
        assert f"<td style='text-align:left'>{value['title']}</td>" in html
        assert value["title"] in plain
    (claude,) = [r.json for r in _posts(shell) if r.path == "/v1/messages"]
    assert claude["tool_choice"] == {"type": "tool", "name": "answer"}


def test_compare_with_one_mismatch_keeps_the_others(shell: Shell) -> None:
    shell.sim.faults.add("schema-mismatch", path="/v1/messages", times=1)
    shell.ok("%%chat -m gpt-5.4-mini,claude-sonnet-4-5-20250929 --schema 'n int' -o cmp\nHi")
    cmp = shell.ip.user_ns["cmp"]
    assert isinstance(cmp["gpt-5.4-mini"]["n"], int)
    failed = cmp["claude-sonnet-4-5-20250929"]
    assert isinstance(failed, SchemaMismatch) and failed.result is not None
    assert "does not match the schema" in _plain(shell.final())
    assert len(_posts(shell)) == 2
    assert shell.session.tally.models["claude-sonnet-4-5-20250929"].calls == 1  # paid, counted


def test_the_saved_output_is_inert(shell: Shell) -> None:
    # A model's strings land in cells: markup in them must stay text (the const is echoed).
    evil = "<img src=x onerror=alert(1)> [a](javascript:x) \\(\\href{javascript:x}{y}\\) $5"
    shell.ip.user_ns["spec"] = {"type": "object", "properties": {"html": {"const": evil}}}
    shell.ok("%%chat --schema spec\nHi")
    html = shell.final()["data"]["text/html"]
    tags = _Tags()
    tags.feed(html)
    assert tags.names <= {"table", "thead", "tbody", "tr", "th", "td", "sub", "span"}, tags.names
    assert tags.attributes <= {"style"}, tags.attributes
    assert "\\(" not in html and "$" not in html  # no maths for MathJax to typeset, no \href
    assert evil in _plain(shell.final())


class _Tags(HTMLParser):
    """Every tag and attribute name in an HTML text."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes |= {name for name, _ in attrs}


def test_help_documents_the_schema_option(shell: Shell) -> None:
    doc = " ".join(shell.ip.find_cell_magic("chat").__doc__.split())
    assert "with --schema, the parsed object" in doc
    assert "--schema SPEC" in doc and "list[{...}]" in doc and "-o gets the parsed object" in doc


def test_terminal_gets_a_plain_table(shell: Shell, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.displaypub import DisplayPublisher

    capturing = shell.ip.display_pub
    shell.ip.display_pub = DisplayPublisher(shell=shell.ip)  # type: ignore[no-untyped-call]
    try:
        result = shell.ip.run_cell("%%chat --schema 'title, year int' -o b\nA book")
        assert result.error_in_exec is None
        out = capsys.readouterr().out
        assert "field" in out and "year" in out and "est.]" in out and "<td" not in out
        assert str(shell.ip.user_ns["b"]["year"]) in out
    finally:
        shell.ip.display_pub = capturing
