"""The canonical request: what a cassette matches on, with media taken out of bodies.

Two requests match when they ask the same: method, URL relative to the gateway (so a
cassette recorded against the simulator replays against any host), sorted query, and the
body as sorted JSON without `VOLATILE_FIELDS`.  Media (base64 strings, data URIs, multipart
files, binary bodies) is replaced by an ``@@media:<hash>.<ext>@@`` mark and collected in
``blobs``, so it is matched by content hash and stored once, as a file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from ._media import sniff_mime
from ._redact import redact

if TYPE_CHECKING:  # only annotations: loading the magics must not import httpx
    import httpx

Blobs = dict[str, bytes]  # media of one exchange, by file name, written with its line
# Body fields that differ between two runs of the same cell without changing its question
# (top level only): they are left out of the match and out of the file.
VOLATILE_FIELDS = frozenset(
    {"user", "request_id", "client_request_id", "idempotency_key", "timestamp"}
)
MEDIA_MIN = 256  # base64 at least this long is media, kept as a file
MARK = re.compile(r"@@media:([0-9a-f]{32}\.[a-z0-9]+)@@")
_DATA_URI = re.compile(r"(data:[\w/+.-]+(?:;[\w=.-]+)*;base64,)([A-Za-z0-9+/]+={0,2})")
_QUOTED_B64 = re.compile(rf'"([A-Za-z0-9+/]{{{MEDIA_MIN},}}={{0,2}})"')
_MODEL_IN_PATH = re.compile(r"/models/([^/:?]+)")
_EXTENSIONS = {
    "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
    "audio/wav": "wav", "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/flac": "flac",
    "video/mp4": "mp4", "audio/l16": "pcm", "application/json": "json", "text/plain": "txt",
}  # fmt: skip


# --- media out of bodies ----------------------------------------------------------------------


def media_name(data: bytes, mime: str = "") -> str:
    """The file name of ``data`` in a cassette: its content hash and an extension."""
    kind = sniff_mime(data, mime.split(";")[0].strip().lower() or "application/octet-stream")
    return f"{hashlib.sha256(data).hexdigest()[:32]}.{_EXTENSIONS.get(kind, 'bin')}"


def keep(blobs: Blobs, data: bytes, mime: str = "") -> str:
    """Put ``data`` into ``blobs``; returns its file name."""
    name = media_name(data, mime)
    blobs.setdefault(name, data)
    return name


def _mark(blobs: Blobs, data: bytes, mime: str = "") -> str:
    return f"@@media:{keep(blobs, data, mime)}@@"


def _b64(text: str) -> bytes | None:
    """The bytes of a base64 text that encodes back to exactly itself (so nothing is lost)."""
    if len(text) < MEDIA_MIN:
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if base64.b64encode(data).decode("ascii") == text else None


def pack(value: Any, blobs: Blobs, mime: str = "") -> Any:
    """A JSON value with its base64 media (whole strings, data URIs) as ``@@media:`` marks.

    A ``mimeType`` beside the data (Gemini's inline data) names the file's extension.
    """
    if isinstance(value, str):
        data = _b64(value)
        return _mark(blobs, data, mime) if data is not None else pack_text(value, blobs, raw=False)
    if isinstance(value, dict):
        mime = str(value.get("mimeType") or value.get("mime_type") or "")
        return {key: pack(item, blobs, mime) for key, item in value.items()}
    if isinstance(value, list):
        return [pack(item, blobs) for item in value]
    return value


def pack_text(text: str, blobs: Blobs, *, raw: bool = True) -> str:
    """Text with data-URI payloads (and, in raw JSON text such as SSE, base64 strings) marked."""

    def uri(match: re.Match[str]) -> str:
        data = _b64(match.group(2))
        return match.group(1) + (_mark(blobs, data) if data is not None else match.group(2))

    def quoted(match: re.Match[str]) -> str:
        data = _b64(match.group(1))
        return f'"{_mark(blobs, data)}"' if data is not None else match.group(0)

    text = _DATA_URI.sub(uri, text) if "base64," in text else text
    return _QUOTED_B64.sub(quoted, text) if raw else text


# --- the canonical request ----------------------------------------------------------------------


@dataclass(frozen=True)
class Canonical:
    """A request as it is matched: method, gateway-relative URL and canonical body."""

    method: str
    url: str
    body: Any = None

    def as_json(self) -> dict[str, Any]:
        """The form written to the index."""
        line: dict[str, Any] = {"method": self.method, "url": self.url}
        if self.body is not None:
            line["body"] = self.body
        return line

    @property
    def key(self) -> str:
        """The match key: a hash of the redacted canonical form."""
        text = redact(json.dumps(self.as_json(), sort_keys=True, ensure_ascii=False))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """``POST /v1/chat/completions for gpt-5.4, prompt 'Explain a…'`` (for a miss)."""
        fields = _fields(self.body)
        path = self.url.split("?", 1)[0]
        found = _MODEL_IN_PATH.search(path)
        model = fields.get("model") or (found.group(1) if found else None)
        prompt = _first_text(fields)
        text = f"{self.method} {path}" + (f" for {model}" if isinstance(model, str) else "")
        return text + (f", prompt {_clip(prompt)!r}" if prompt else "")


def canonical(request: httpx.Request, gateways: Sequence[str], blobs: Blobs) -> Canonical:
    """The canonical form of a request whose body was read; its media lands in ``blobs``."""
    return Canonical(request.method, _relative_url(request.url, gateways), _body(request, blobs))


def _relative_url(url: httpx.URL, gateways: Sequence[str]) -> str:
    base = str(url.copy_with(query=None, fragment=None))
    for gateway in gateways:
        if gateway and base.startswith(gateway + "/"):
            base = base[len(gateway) :]
            break
    query = sorted(url.params.multi_items())
    return base + (f"?{urlencode(query)}" if query else "")


def _body(request: httpx.Request, blobs: Blobs) -> Any:
    content = request.content
    if not content:
        return None
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        return _multipart(content, kind, blobs)
    if "json" in kind:
        with contextlib.suppress(ValueError):
            parsed = json.loads(content)
            if isinstance(parsed, dict):
                parsed = {k: v for k, v in parsed.items() if k not in VOLATILE_FIELDS}
            return pack(parsed, blobs)
    if kind.startswith("application/x-www-form-urlencoded"):
        return sorted(parse_qsl(content.decode("utf-8", "replace")))
    return _mark(blobs, content, kind)


def _multipart(content: bytes, kind: str, blobs: Blobs) -> Any:
    """The parts in order, files by content hash (the random boundary is left out)."""
    boundary = _param(kind, "boundary")
    if not boundary:
        return _mark(blobs, content, kind)
    parts = []
    for chunk in content.split(b"--" + boundary.encode("latin-1"))[1:-1]:
        head, _, data = chunk[2:-2].partition(b"\r\n\r\n")  # CRLF after the boundary and before
        headers = dict(_header_line(line) for line in head.decode("latin-1").split("\r\n"))
        disposition = headers.get("content-disposition", "")
        part: dict[str, Any] = {"name": _param(disposition, "name")}
        filename = _param(disposition, "filename")
        if filename is None:
            part["value"] = pack_text(data.decode("utf-8", "replace"), blobs, raw=False)
        else:
            mime = headers.get("content-type", "")
            part |= {"filename": filename, "content_type": mime, "file": _mark(blobs, data, mime)}
        parts.append(part)
    return {"multipart": parts}


def _header_line(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def _param(header: str, name: str) -> str | None:
    found = re.search(rf'(?:^|;)\s*{name}=(?:"([^"]*)"|([^;\s]*))', header, re.I)
    if found is None:
        return None
    return found.group(1) if found.group(1) is not None else found.group(2)


def _fields(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("multipart"), list):
        parts = [p for p in body["multipart"] if isinstance(p, dict)]
        return {str(p.get("name")): p.get("value") for p in parts}
    return body if isinstance(body, dict) else {}


_PROMPT_KEYS = ("prompt", "input", "text", "content", "parts", "messages", "contents")


def _first_text(value: Any) -> str | None:
    """The prompt of a body: its prompt/input/text field, else the newest message's text."""
    if isinstance(value, str):
        return value if value.strip() and not value.startswith("@@media:") else None
    if isinstance(value, dict):
        keys = [k for k in _PROMPT_KEYS if k in value]
        return next((t for k in keys if (t := _first_text(value[k]))), None)
    if isinstance(value, list):
        return next((t for item in reversed(value) if (t := _first_text(item))), None)
    return None


def _clip(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
