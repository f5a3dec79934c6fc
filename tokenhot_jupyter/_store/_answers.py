"""The resume store: every finished row of a batch, kept the moment it finishes.

A row is keyed by what it asked (`answer_key`: the kind, the model, the canonical
parameters and the row's final request, system prompt, schema and input files included),
so re-running a batch after an interrupt, a crash or a kernel restart finds the rows that
already have an answer and sends only the others.  A row that failed is kept too, with
its error, so a re-run shows it instead of paying for it again until it is asked to
(``--retry-failed``).

``answers.sqlite3`` under ``TOKENHOT_HOME``: several kernels may share it (WAL, a busy
timeout, one short transaction per row), and an answer is never replaced by a failure.
Pictures are files beside it (``answers/<sha256>.<ext>``, written whole before their row),
named by content, so two kernels writing the same picture write the same file.  The API
key is never stored: bodies are redacted, and prompts are kept only as part of a hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import _exceptions as E
from .._redact import redact
from .._types import ChatResult, Image, ImageResult, Usage
from ._sqlite import Database

FILE_NAME = "answers.sqlite3"
MEDIA_DIR = "answers"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE answers (
        key   TEXT PRIMARY KEY,
        kind  TEXT NOT NULL,
        model TEXT NOT NULL,
        at    REAL NOT NULL,
        ok    INTEGER NOT NULL,
        body  TEXT NOT NULL
    );
    """,
)
_CHUNK = 500  # keys per SELECT: SQLite's variable limit is 999 on old builds


def answer_key(kind: str, model: str, request: Mapping[str, Any]) -> str:
    """The key of one row: a hash of the kind, the model and the canonical ``request``."""
    canonical = json.dumps(
        {"kind": kind, "model": model, "request": request},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=_digest,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _digest(value: Any) -> str:
    """A value JSON has no form for, by content (bytes) or by its text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    return f"{type(value).__name__}:{value}"


@dataclass(frozen=True)
class Stored:
    """One row as the store keeps it: an answer (``ok``) or a failure, and when."""

    ok: bool
    body: dict[str, Any]
    at: float


class Answers(Database):
    """The resume store file; opened lazily, safe to share between threads and kernels."""

    FILE_NAME = FILE_NAME
    WHAT = "answer store"
    MIGRATIONS = MIGRATIONS

    @property
    def media(self) -> Path:
        """The folder of stored pictures."""
        return self.path.parent / MEDIA_DIR

    def get(self, keys: Iterable[str]) -> dict[str, Stored]:
        """The stored rows among ``keys``."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Stored] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._rows(
                f"SELECT key, ok, body, at FROM answers WHERE key IN ({marks})", tuple(chunk)
            )
            for key, ok, body, at in rows:
                found[key] = Stored(bool(ok), json.loads(body), float(at))
        return found

    def put(self, key: str, kind: str, model: str, *, ok: bool, body: Mapping[str, Any]) -> None:
        """Keep one row now (its own transaction); a failure never replaces an answer."""
        text = redact(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO answers (key, kind, model, at, ok, body) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET at = excluded.at, ok = excluded.ok, "
                "body = excluded.body, model = excluded.model "
                "WHERE excluded.ok = 1 OR answers.ok = 0",
                (key, kind, model, self._clock(), int(ok), text),
            )

    def keep_media(self, data: bytes, extension: str) -> str:
        """Write a picture (once, by content) and return its file name."""
        name = hashlib.sha256(data).hexdigest()[:32] + extension
        target = self.media / name
        if target.exists():
            return name
        try:
            self.media.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{name}.{os.getpid()}.part")
            partial.write_bytes(data)
            os.replace(partial, target)  # a reader never sees half a file
        except OSError as exc:
            raise E.ConfigurationError(
                f"The {self.WHAT} cannot keep a picture in {self.media} ({exc.strerror or exc}).",
                hint="Make that folder writable, or set TOKENHOT_HOME to a writable folder.",
            ) from None
        return name

    def read_media(self, name: str) -> bytes | None:
        """A stored picture's bytes; None when the file is gone."""
        if "/" in name or "\\" in name or name.startswith("."):
            return None  # only names this store made
        with contextlib.suppress(OSError):
            return (self.media / name).read_bytes()
        return None


# --- results to bodies and back -------------------------------------------------------------


def chat_body(result: ChatResult, store: Answers) -> dict[str, Any]:
    """What a chat answer keeps (its pictures as files of the store)."""
    return {
        "text": result.text,
        "model": result.model,
        "usage": asdict(result.usage) if result.usage else None,
        "latency": result.latency,
        "reasoning": result.reasoning,
        "finish_reason": result.finish_reason,
        "request_id": result.request_id,
        "images": [_image_body(i, store) for i in result.images],
        "raw": result.raw,
    }


def chat_result(body: Mapping[str, Any], store: Answers) -> ChatResult | None:
    """The answer again; None when one of its pictures is gone (the row is sent again)."""
    images = [_image(i, store) for i in body.get("images") or []]
    if any(i is None for i in images):
        return None
    return ChatResult(
        text=str(body.get("text") or ""),
        model=str(body.get("model") or ""),
        usage=_usage(body.get("usage")),
        latency=float(body.get("latency") or 0.0),
        reasoning=str(body.get("reasoning") or ""),
        finish_reason=body.get("finish_reason"),
        request_id=body.get("request_id"),
        images=[i for i in images if i is not None],
        raw=body.get("raw"),
    )


def image_body(result: ImageResult, store: Answers) -> dict[str, Any]:
    """What a picture answer keeps (the pictures themselves as files of the store)."""
    return {
        "images": [_image_body(i, store) for i in result.images],
        "model": result.model,
        "latency": result.latency,
        "usage": asdict(result.usage) if result.usage else None,
        "text": result.text,
        "request_id": result.request_id,
    }


def image_result(body: Mapping[str, Any], store: Answers) -> ImageResult | None:
    """The pictures again; None when a file is gone (the row is sent again)."""
    images = [_image(i, store) for i in body.get("images") or []]
    if not images or any(i is None for i in images):
        return None
    return ImageResult(
        images=[i for i in images if i is not None],
        model=str(body.get("model") or ""),
        latency=float(body.get("latency") or 0.0),
        usage=_usage(body.get("usage")),
        text=str(body.get("text") or ""),
        request_id=body.get("request_id"),
    )


def _image_body(image: Image, store: Answers) -> dict[str, Any]:
    return {
        "file": store.keep_media(image.data, image.extension),
        "mime": image.mime,
        "url": image.url,
        "revised_prompt": image.revised_prompt,
    }


def _image(body: Any, store: Answers) -> Image | None:
    data = store.read_media(str(body.get("file") or "")) if isinstance(body, Mapping) else None
    if data is None:
        return None
    return Image(
        data, str(body.get("mime") or "image/png"), body.get("url"), body.get("revised_prompt")
    )


def _usage(body: Any) -> Usage | None:
    if not isinstance(body, Mapping):
        return None
    return Usage(**{k: int(v) for k, v in body.items() if k in Usage.__dataclass_fields__})


def error_body(error: E.TokenhotError) -> dict[str, Any]:
    """What a failed row keeps: its error's class, message and the gateway's details."""
    body: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    for name in _DETAILS:
        value = getattr(error, name, None)
        if value is not None:
            body[name] = value
    return body


_DETAILS = ("status_code", "code", "request_id", "model", "problem", "raw")


def error_from(body: Mapping[str, Any]) -> E.TokenhotError:
    """The stored error again: its own class, message and details (else the root class).

    It is rebuilt without its class's constructor (whose arguments differ from class to
    class): only what `error_body` kept is set, and the message already holds the hint.
    """
    cls = getattr(E, str(body.get("type") or ""), None)
    if not (isinstance(cls, type) and issubclass(cls, E.TokenhotError)):
        cls = E.TokenhotError
    error = cls.__new__(cls)
    E.TokenhotError.__init__(error, str(body.get("message") or "failed"), hint="")
    error.model = body.get("model")
    if isinstance(error, E.APIStatusError):
        error.status_code = int(body.get("status_code") or 0)
        error.code, error.request_id = body.get("code"), body.get("request_id")
        error.body, error.retry_after = None, None
    if isinstance(error, E.SchemaMismatch):
        error.problem, error.raw = str(body.get("problem") or ""), str(body.get("raw") or "")
        error.result = None  # not kept: the paid answer's text is in .raw
    return error
