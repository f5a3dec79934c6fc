"""Record/replay cassettes: a session's gateway exchanges, kept to be played back later.

A cassette is a folder, meant to be committed next to its notebook and read in a diff::

    PATH/cassette.jsonl      line 1: {"tokenhot_cassette": FORMAT, "gateway": ..., "created": ...}
                             then one exchange per line: canonical request, then the answer
    PATH/media/<hash>.<ext>  images, audio and video bytes, base64 taken out of JSON bodies
                             too, each stored once per content hash

Requests match by their canonical form (`_canonical`): method, path relative to the gateway,
sorted query, and the body as sorted JSON without `VOLATILE_FIELDS`, with media replaced by
its content hash (multipart parts too).  Identical requests answer in the order they were
recorded (a re-run cell, a comparison); past the last one, replay repeats the last answer
and ``auto`` asks the gateway and records it.  Only `KEPT_HEADERS` of a response are kept,
no request header at all, and every line passes the key redaction, so nothing secret lands
in a cassette.  The transport that records and replays is in `_cassette_transport`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from . import _exceptions as E
from ._canonical import MARK, Blobs, Canonical, keep, pack, pack_text
from ._redact import redact
from ._version import __version__

if TYPE_CHECKING:  # only annotations: loading the magics must not import httpx
    import httpx

log = logging.getLogger("tokenhot_jupyter")
Mode = Literal["record", "replay", "auto"]
MODES: tuple[Mode, ...] = ("record", "replay", "auto")
Sleep = Callable[[float], Awaitable[None]]

FORMAT = 1  # bump when a line's meaning changes; older cassettes are refused with one line
INDEX = "cassette.jsonl"
MEDIA = "media"
ENV_CASSETTE = "TOKENHOT_CASSETTE"
ENV_MODE = "TOKENHOT_CASSETTE_MODE"
ENV_SPEED = "TOKENHOT_CASSETTE_SPEED"
DEFAULT_MODE: Mode = "replay"  # a cassette alone never reaches the network
# The only response headers a cassette keeps: what the client reads (type, request id,
# rate-limit and retry hints) and where a redirect points. Never cookies, org or project ids.
KEPT_HEADERS = frozenset(
    {"content-type", "x-oneapi-request-id", "x-request-id", "request-id", "retry-after",
     "retry-after-ms", "location"}
)  # fmt: skip
KEPT_PREFIXES = ("x-ratelimit-", "ratelimit-")
_MEDIA_FILE = re.compile(r"[0-9a-f]{32}\.[a-z0-9]+")


# --- which outputs were replayed --------------------------------------------------------------


@dataclass
class Seen:
    """What one magic call's requests met: the name of the cassette that answered, if any."""

    cassette: str | None = None


_SEEN: contextvars.ContextVar[Seen | None] = contextvars.ContextVar("tokenhot_seen", default=None)


@contextlib.contextmanager
def watching() -> Iterator[Seen]:
    """Note replayed answers of the requests made inside (they inherit this context)."""
    seen = Seen()
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)


def current() -> Seen | None:
    """The `watching` record of the running call (background pollers inherit it)."""
    return _SEEN.get()


def replayed_from() -> str | None:
    """The cassette that answered the running call, or None when the answers are live."""
    seen = _SEEN.get()
    return seen.cassette if seen else None


def provenance() -> dict[str, Any]:
    """``replayed`` and ``cassette`` for output metadata, when the call was replayed."""
    name = replayed_from()
    return {"replayed": True, "cassette": name} if name else {}


def _note_replay(name: str) -> None:
    seen = _SEEN.get()
    if seen is not None:
        seen.cassette = name


# --- recorded exchanges --------------------------------------------------------------------------


@dataclass
class Exchange:
    """One request and what came back: a reply (maybe streamed), a transport failure, or both."""

    request: Canonical
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)  # {"json"|"text"|"media"|"chunks": ...}
    wait: float = 0.0  # seconds until the headers came (replayed for streams)
    error: dict[str, str] | None = None  # {"type": "ReadTimeout", "message": ...}

    @property
    def chunks(self) -> list[list[Any]] | None:
        """``[[seconds since the previous chunk, text], ...]`` of a streamed reply."""
        return cast("list[list[Any]] | None", self.body.get("chunks"))

    def as_json(self) -> dict[str, Any]:
        """The line written to the index (before redaction)."""
        line: dict[str, Any] = {"request": self.request.as_json()}
        if self.status is not None:
            line["response"] = {"status": self.status, "headers": self.headers, **self.body}
            if self.chunks is not None:
                line["response"]["wait"] = round(self.wait, 4)
        if self.error is not None:
            line["error"] = self.error
        return line

    @classmethod
    def from_json(cls, line: Mapping[str, Any]) -> Exchange:
        """An exchange from an index line (KeyError/TypeError/ValueError when malformed)."""
        req = line["request"]
        request = Canonical(str(req["method"]), str(req["url"]), req.get("body"))
        response = dict(line.get("response") or {})
        status = response.pop("status", None)
        headers = {str(k): str(v) for k, v in dict(response.pop("headers", {})).items()}
        wait = float(response.pop("wait", 0.0))
        error = line.get("error")
        if status is None and error is None:
            raise ValueError("neither a response nor an error")
        if error is not None:
            error = {str(k): str(v) for k, v in dict(error).items()}
        status = None if status is None else int(status)
        _check_body(response)
        return cls(request, status, headers, response, wait, error)


def _check_body(body: Mapping[str, Any]) -> None:
    """Refuse a recorded body that replay could not play (ValueError), at load, not mid-cell."""
    kinds = [k for k in ("json", "text", "media", "chunks") if k in body]
    text_ok = all(isinstance(body[k], str) for k in ("text", "media") if k in body)
    chunks = body.get("chunks", [])
    chunks_ok = isinstance(chunks, list) and all(
        isinstance(c, list)
        and len(c) == 2
        and isinstance(c[0], (int, float))
        and isinstance(c[1], str)
        for c in chunks
    )
    if len(kinds) > 1 or not text_ok or not chunks_ok:
        raise ValueError("a body replay cannot play")


def kept_headers(headers: httpx.Headers) -> dict[str, str]:
    """The response headers a cassette may hold (`KEPT_HEADERS` and the rate-limit family)."""
    return {
        name: value
        for name, value in ((k.lower(), v) for k, v in headers.items())
        if name in KEPT_HEADERS or name.startswith(KEPT_PREFIXES)
    }


def scrub(text: str, secret: str | None) -> str:
    """``text`` without the key in any form we know: whole, Bearer tokens, its last 8 chars."""
    text = redact(text)
    if secret and len(secret) >= 20:  # shorter keys are stand-ins (sk-simulator) with word tails
        text = text.replace(secret, "sk-***").replace(secret[-8:], "********")
    return text


# --- the cassette -------------------------------------------------------------------------------


class Cassette:
    """A cassette folder opened to ``record``, ``replay`` or ``auto`` (replay, else record)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: str = DEFAULT_MODE,
        *,
        speed: float = 1.0,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path).expanduser()  # as given, for messages
        self.root = self.path.resolve()  # for the files: a later chdir must not move it
        self.name = self.root.name or str(self.path)
        self.mode: Mode = check_mode(mode)
        self.speed = check_speed(speed)
        self.sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self.clock = clock
        self.replayed = 0  # answers given from the cassette
        self.recorded = 0  # exchanges written in this session
        self._lock = threading.Lock()
        self._answers: dict[str, list[Exchange]] = {}
        self._used: dict[str, int] = {}
        self._media: dict[str, bytes] = {}
        self.problem: str | None = None  # why an exchange could not be written, if one could not
        self._gateway = ""
        if self.mode == "record":
            self._start_afresh()
        else:
            self._load()

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r}, speed={self.speed:g})"

    @property
    def index(self) -> Path:
        """The JSONL index file."""
        return self.root / INDEX

    @property
    def size(self) -> int:
        """Exchanges recorded in the cassette (for replay and auto: as loaded)."""
        return sum(len(v) for v in self._answers.values()) if self.mode != "record" else 0

    def gateways(self, current: str) -> tuple[str, ...]:
        """The hosts whose URLs count as gateway paths: the one in use and the recorded one."""
        return tuple(dict.fromkeys(g for g in (current, self._gateway) if g))

    # --- replaying ------------------------------------------------------------------------------

    def take(self, request: Canonical) -> Exchange | None:
        """The next recorded answer to ``request`` (past the last: the last, or None in auto)."""
        key = request.key
        with self._lock:
            answers = self._answers.get(key)
            if not answers:
                return None
            used = self._used.get(key, 0)
            if used >= len(answers) and self.mode == "auto":
                return None  # this run asks more often than the recording did: record it
            self._used[key] = used + 1
            self.replayed += 1
        _note_replay(self.name)
        return answers[min(used, len(answers) - 1)]

    def body_bytes(self, body: Mapping[str, Any]) -> bytes:
        """The bytes of a recorded body, media put back in."""
        if "json" in body:
            return json.dumps(self.unpack(body["json"]), ensure_ascii=False).encode("utf-8")
        if "text" in body:
            return str(self.unpack(str(body["text"]))).encode("utf-8")
        return self.media(str(body["media"])) if "media" in body else b""

    def unpack(self, value: Any) -> Any:
        """A recorded value with every ``@@media:`` mark turned back into its base64."""
        if isinstance(value, str):
            if "@@media:" not in value:
                return value
            return MARK.sub(lambda m: base64.b64encode(self.media(m.group(1))).decode(), value)
        if isinstance(value, dict):
            return {key: self.unpack(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.unpack(item) for item in value]
        return value

    def media(self, name: str) -> bytes:
        """A media file's bytes, checked against the hash in its name."""
        if name not in self._media:
            try:
                data = (self.root / MEDIA / name).read_bytes()
            except OSError:
                raise self._broken(f"its media file {MEDIA}/{name} is missing") from None
            if hashlib.sha256(data).hexdigest()[:32] != name.split(".")[0]:
                raise self._broken(f"its media file {MEDIA}/{name} was changed")
            self._media[name] = data
        return self._media[name]

    async def pause(self, seconds: float) -> None:
        """Wait a recorded interval, scaled by ``speed`` (0: not at all)."""
        if self.speed > 0 and seconds > 0:
            await self.sleep(seconds / self.speed)

    # --- recording ------------------------------------------------------------------------------

    def add(self, exchange: Exchange, blobs: Blobs, gateway: str, secret: str | None) -> None:
        """Append one exchange (and its media, once per hash) to the cassette."""
        line = scrub(json.dumps(exchange.as_json(), ensure_ascii=False, sort_keys=True), secret)
        with self._lock:
            try:
                self._append(line, blobs, scrub(gateway, secret))
            except OSError as exc:  # the answer was paid for: hand it on, and say so in status
                self.problem = f"could not write to {self.path}: {exc.strerror or exc}"
                log.warning("cassette %s: %s", self.name, self.problem)
                return
            self.recorded += 1

    def _append(self, line: str, blobs: Blobs, gateway: str) -> None:
        self.root.joinpath(MEDIA).mkdir(parents=True, exist_ok=True)
        for name, data in blobs.items():
            self._write_media(name, data)
        fresh = not self.index.exists() or self.index.stat().st_size == 0
        with self.index.open("a", encoding="utf-8") as index:
            if fresh:
                index.write(self._header(gateway) + "\n")
            index.write(line + "\n")

    def pack_body(self, content: bytes, content_type: str, blobs: Blobs) -> dict[str, Any]:
        """A reply body as the index keeps it: JSON, text, or a media file."""
        if not content:
            return {}
        if "json" in content_type:
            with contextlib.suppress(ValueError):
                return {"json": pack(json.loads(content), blobs)}
        if content_type.startswith("text/"):
            with contextlib.suppress(UnicodeDecodeError):
                return {"text": pack_text(content.decode("utf-8"), blobs)}
        return {"media": keep(blobs, content, content_type)}

    def prune(self) -> int:
        """Delete media files the index no longer names (after ``record``); how many went."""
        folder = self.root / MEDIA
        if self.mode != "record" or not folder.is_dir():
            return 0
        with self._lock:
            named = self.index.read_text(encoding="utf-8") if self.index.exists() else ""
        used = set(_MEDIA_FILE.findall(named))
        stale = [
            f for f in folder.iterdir() if _MEDIA_FILE.fullmatch(f.name) and f.name not in used
        ]
        for file in stale:
            file.unlink(missing_ok=True)
        return len(stale)

    def disk_size(self) -> int:
        """Bytes of the index and its media files."""
        files = [self.index, *(self.root / MEDIA).glob("*")]
        return sum(f.stat().st_size for f in files if f.is_file())

    def status(self) -> str:
        """One line for ``%tokenhot status``."""
        if self.mode == "record":
            line = f"recording to {self.path}: {self.recorded} exchanges so far"
        elif self.mode == "replay":
            line = (
                f"replaying {self.path} at speed {self.speed:g}: {self.replayed} answers given "
                f"from {self.size} recorded"
            )
        else:
            line = (
                f"auto on {self.path}: {self.replayed} answers replayed, {self.recorded} recorded"
            )
        return line + (f"; {self.problem}" if self.problem else "")

    # --- the files ------------------------------------------------------------------------------

    def _start_afresh(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.index.unlink(missing_ok=True)
        except OSError as exc:
            raise E.ConfigurationError(
                f"Cannot record into {self.path}: {exc.strerror or exc}.",
                hint="Pick a folder you can write to.",
            ) from None

    def _write_media(self, name: str, data: bytes) -> None:
        target = self.root / MEDIA / name
        if not target.exists():
            partial = target.with_name(f".{name}.{os.getpid()}.part")
            partial.write_bytes(data)
            os.replace(partial, target)  # a reader never sees half a file

    def _header(self, gateway: str) -> str:
        self._gateway = self._gateway or gateway
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        head = {
            "tokenhot_cassette": FORMAT,
            "gateway": self._gateway,
            "created": stamp,
            "written_by": f"tokenhot-jupyter {__version__}",
        }
        return json.dumps(head, sort_keys=True)

    def _load(self) -> None:
        if not self.index.is_file():
            if self.mode == "replay":
                raise E.CassetteFormatError(
                    f"No cassette at {self.path} ({INDEX} is missing).",
                    hint="Record one first: %tokenhot record PATH "
                    "(or TOKENHOT_CASSETTE_MODE=record).",
                )
            return
        try:
            lines = self.index.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise self._broken(f"{INDEX} cannot be read ({exc})") from None
        self._check_header(lines[0] if lines else "")
        for number, text in enumerate(lines[1:], 2):
            if text.strip():
                self._load_line(number, text)

    def _check_header(self, text: str) -> None:
        try:
            head = json.loads(text)
        except ValueError:
            head = None
        version = head.get("tokenhot_cassette") if isinstance(head, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            raise self._broken(f"the first line of {INDEX} has no format version")
        if version != FORMAT:
            age = "an older" if version < FORMAT else "a newer"
            raise E.CassetteFormatError(
                f"The cassette {self.path} is in {age} format ({version}) than this "
                f"tokenhot-jupyter reads ({FORMAT}).",
                hint=None if version < FORMAT else "Upgrade: pip install -U tokenhot-jupyter.",
            )
        self._gateway = str(head.get("gateway") or "")

    def _load_line(self, number: int, text: str) -> None:
        try:
            exchange = Exchange.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise self._broken(f"line {number} of {INDEX} is not a valid exchange") from None
        names = set(MARK.findall(text))
        names |= {str(exchange.body["media"])} if "media" in exchange.body else set()
        for name in names:
            if not (self.root / MEDIA / name).is_file():
                raise self._broken(f"line {number} needs {MEDIA}/{name}, which is missing")
        self._answers.setdefault(exchange.request.key, []).append(exchange)

    def _broken(self, why: str) -> E.CassetteFormatError:
        return E.CassetteFormatError(f"The cassette {self.path} is corrupt: {why}.")


def check_mode(mode: str, source: str = "cassette_mode") -> Mode:
    """``mode`` if it is record, replay or auto."""
    value = str(mode).strip().lower()
    if value not in MODES:
        raise E.InvalidInputError(f"{source} must be record, replay or auto, not {mode!r}.")
    return value


def check_speed(speed: float) -> float:
    """A replay speed: 1 as recorded, 4 four times faster, 0 as fast as possible."""
    try:
        value = float(speed)
    except (TypeError, ValueError):
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise E.InvalidInputError(
            f"The replay speed must be a number of 0 or more, not {speed!r}.",
            hint="1 plays as recorded, 4 four times faster, 0 as fast as possible.",
        )
    return value


# --- opening cassettes ----------------------------------------------------------------------------

_open_lock = threading.Lock()
_open: dict[tuple[Path, Mode], Cassette] = {}


def open_cassette(
    path: str | os.PathLike[str],
    mode: str = DEFAULT_MODE,
    *,
    speed: float = 1.0,
    restart: bool = False,
) -> Cassette:
    """The process's cassette for ``path`` and ``mode``, shared by every client using it.

    Sharing keeps one replay position per cassette and stops a second client from starting a
    recording afresh; ``restart=True`` (the magics) opens it anew.
    """
    key = (Path(path).expanduser().resolve(), check_mode(mode))
    with _open_lock:
        found = _open.get(key)
        if found is None or restart:
            found = _open[key] = Cassette(path, key[1], speed=speed)
        return found


def resolve(
    cassette: str | os.PathLike[str] | Cassette | Literal[False] | None, mode: str | None
) -> Cassette | None:
    """argument → ``TOKENHOT_CASSETTE`` (with ``_MODE`` and ``_SPEED``) → none; False: none."""
    if cassette is False:
        return None
    if isinstance(cassette, Cassette):
        return cassette
    if cassette is not None:
        return open_cassette(cassette, mode or DEFAULT_MODE)
    path = os.environ.get(ENV_CASSETTE, "").strip()
    if not path:
        return None
    try:
        chosen = mode or os.environ.get(ENV_MODE, "").strip() or DEFAULT_MODE
        speed = float(os.environ.get(ENV_SPEED, "").strip() or 1.0)
        return open_cassette(path, check_mode(chosen, ENV_MODE), speed=check_speed(speed))
    except (ValueError, E.InvalidInputError) as exc:
        raise E.ConfigurationError(
            str(exc) if isinstance(exc, E.TokenhotError) else f"{ENV_SPEED} must be a number.",
            hint=f"Check {ENV_CASSETTE}, {ENV_MODE} (record, replay or auto) and {ENV_SPEED}.",
        ) from None
