"""Transport-neutral request and reply objects, body parsing and SSE framing."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_PARAM = re.compile(r'(?:^|;)\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


@dataclass(frozen=True)
class FilePart:
    """One uploaded file of a multipart body."""

    name: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Request:
    """One parsed HTTP request as the simulated gateway sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    request_id: str = ""
    json: Any = None
    json_error: str = ""
    form: dict[str, list[str]] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    in_flight: int = 0  # requests being served when it arrived (`State.enter`)
    record: Any = None  # its entry in the request log, once the gateway made one

    def header(self, name: str) -> str:
        """A header value, or ``""``."""
        return self.headers.get(name.lower(), "")

    def arg(self, name: str) -> str:
        """The first value of a query parameter, or ``""``."""
        values = self.query.get(name)
        return values[0] if values else ""

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters."""
        return self.header("content-type").split(";")[0].strip().lower()

    @property
    def is_multipart(self) -> bool:
        """True for ``multipart/form-data`` bodies."""
        return self.content_type == "multipart/form-data"

    @property
    def fields(self) -> dict[str, Any]:
        """The body's fields: the JSON object, else form fields, else nothing (§1.6)."""
        if isinstance(self.json, dict):
            return self.json
        return {k: v[0] if len(v) == 1 else list(v) for k, v in self.form.items()}

    def form_list(self, name: str) -> list[str]:
        """Every value of a repeated form field."""
        return list(self.form.get(name, []))

    def files_named(self, *prefixes: str) -> list[FilePart]:
        """Uploaded files whose field name equals or starts with one of ``prefixes``."""
        return [f for f in self.files if any(f.name.startswith(p) for p in prefixes)]


@dataclass
class Reply:
    """A complete reply with a known length."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False  # fault: send half of the body, then close


@dataclass
class Stream:
    """A server-sent-events reply; each item is one event, flushed on its own."""

    events: Iterable[bytes]
    status: int = 200
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False  # fault: close after two events
    malformed: bool = False  # fault: the second event is broken JSON
    end_early: bool = False  # fault: end cleanly without the last event (the end marker)


class Drop:
    """Close the connection without any reply."""


Result = Reply | Stream | Drop


class HttpError(Exception):
    """Raised by handlers to answer with ``reply`` instead."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as Go's encoder writes it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """A JSON reply."""
    return Reply(status, dumps(obj), "application/json; charset=utf-8", dict(headers or {}))


def text_reply(text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
    """A plain-text reply."""
    return Reply(200, text.encode(), content_type)


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event: optional ``event:`` line, one ``data:`` line, a blank line."""
    payload = data if isinstance(data, str) else dumps(data).decode()
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def header_param(value: str, name: str) -> str | None:
    """A ``name=value`` parameter of a header such as Content-Disposition."""
    for match in _PARAM.finditer(value):
        if match.group(1).lower() == name:
            quoted = match.group(2)
            return quoted.replace('\\"', '"') if quoted is not None else match.group(3).strip()
    return None


def parse_body(req: Request) -> None:
    """Fill ``req.json``/``form``/``files`` from the body by content type (§1.6)."""
    ctype = req.content_type
    if ctype.startswith("application/json"):
        _parse_json(req)
    elif ctype == "multipart/form-data":
        boundary = header_param(req.header("content-type"), "boundary") or ""
        req.form, req.files = parse_multipart(req.body, boundary)
    elif ctype == "application/x-www-form-urlencoded":
        req.form = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"))


def _parse_json(req: Request) -> None:
    if not req.body.strip():
        req.json_error = "unexpected end of JSON input"
        return
    try:
        req.json = json.loads(req.body)
    except ValueError as exc:
        req.json_error = f"invalid character in JSON body: {exc}"
        return
    if not isinstance(req.json, dict):
        req.json_error = "json: cannot unmarshal a non-object into the request"


def parse_multipart(body: bytes, boundary: str) -> tuple[dict[str, list[str]], list[FilePart]]:
    """Split a ``multipart/form-data`` body into text fields and files."""
    fields: dict[str, list[str]] = {}
    files: list[FilePart] = []
    if not boundary:
        return fields, files
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        data = data[:-2] if data.endswith(b"\r\n") else data
        headers = _part_headers(head.decode("utf-8", "replace"))
        disposition = headers.get("content-disposition", "")
        name = header_param(disposition, "name") or ""
        filename = header_param(disposition, "filename")
        if filename is None:
            fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
        else:
            ctype = headers.get("content-type", "application/octet-stream")
            files.append(FilePart(name, filename, ctype, data))
    return fields, files


def _part_headers(head: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return headers
