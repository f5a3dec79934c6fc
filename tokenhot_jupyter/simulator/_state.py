"""Shared simulator state: options, the request log, stored files and tokens."""

from __future__ import annotations

import itertools
import math
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ._clock import SimClock
from ._faults import FaultPlan
from ._limits import RateLimiter

if TYPE_CHECKING:
    from ._video import Task

ALNUM = string.ascii_letters + string.digits
LOG_LIMIT = 1000  # a long-running demo server must not grow without bound
_REDACT_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")


class Stopped(Exception):
    """The server is shutting down; abandon the reply."""


@dataclass
class Options:
    """Behaviour switches of one simulator (see `Simulator`); settable while it runs."""

    api_keys: frozenset[str] | None = None
    token_delay: float = 0.02
    image_delay: float = 0.0
    wan_shape2: bool = False
    happyhorse_documented_body: bool = True
    max_body_bytes: int = 128 * 1024 * 1024
    group: str = "default"
    ping: bool = False
    video_base: float = 60.0  # a video task takes video_base + video_per_second × seconds
    video_per_second: float = 6.0
    rate_limit: float | None = None  # billable requests per simulated second, per user token
    rate_burst: float | None = None  # the bucket's size (None: one second's worth)
    rate_retry_after: bool = False  # an over-limit 429 carries Retry-After (the gateway's none)


class FileRecord(NamedTuple):
    """One uploaded file as the request log shows it."""

    name: str
    filename: str
    content_type: str
    size: int


@dataclass
class RecordedRequest:
    """What a client sent (keys redacted), plus what the simulated gateway did with it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, list[str]] = field(default_factory=dict)
    files: list[FileRecord] = field(default_factory=list)
    request_id: str = ""
    status: int | None = None
    upstream: Any = None  # the body the gateway would forward upstream, where it rewrites one
    in_flight: int = 0  # requests being served when this one arrived, itself included
    completed: bool = False  # the whole reply went out (not dropped, cut or abandoned)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (for ``GET /__sim__/requests``)."""
        out = dict(self.__dict__)
        out["files"] = [f._asdict() for f in self.files]
        return out


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers with every credential replaced by ``sk-***``."""
    out = dict(headers)
    for name in _REDACT_HEADERS:
        if name in out:
            scheme = out[name].split(" ", 1)[0] if " " in out[name].strip() else ""
            out[name] = f"{scheme} sk-***" if scheme else "sk-***"
    return out


@dataclass
class StoredFile:
    """A file on the simulated vendor file host (``/__files/<name>``)."""

    content_type: str
    make: Callable[[], bytes]
    available_at: float = 0.0  # simulated time
    expires_at: float = math.inf
    data: bytes | None = None

    def content(self) -> bytes:
        """The bytes, made once on first use."""
        if self.data is None:
            self.data = self.make()
        return self.data


class State:
    """Everything the handlers share; guarded by ``lock``."""

    def __init__(self, clock: SimClock, options: Options, faults: FaultPlan) -> None:
        self.clock = clock
        self.options = options
        self.faults = faults
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.base_url = ""
        self.tasks: dict[str, Task] = {}
        self.files: dict[str, StoredFile] = {}
        self.exhausted: set[str] = set()
        self.requests: list[RecordedRequest] = []
        self.limiter = RateLimiter()
        self.in_flight = 0  # API requests being served now (control routes not counted)
        self._ids = itertools.count(1)

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self.clock.now()

    def next_id(self) -> int:
        """A process-wide increasing integer (row ids)."""
        with self.lock:
            return next(self._ids)

    def request_id(self) -> str:
        """A new-api style request id: timestamp, nanoseconds, random letters."""
        stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(self.now()))
        return f"{stamp}{time.time_ns() % 10**9:09d}{random_string(8)}"

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` real seconds unless the server stops first."""
        if seconds > 0 and self.stopping.wait(seconds):
            raise Stopped
        if self.stopping.is_set():
            raise Stopped

    def add_file(self, name: str, stored: StoredFile) -> str:
        """Host a file; return its absolute URL."""
        with self.lock:
            self.files[name] = stored
        return f"{self.base_url}/__files/{name}"

    def enter(self, path: str) -> int:
        """An API request arrives: how many are being served now, itself included (0 for a
        control route, which is not counted)."""
        if is_control(path):
            return 0
        with self.lock:
            self.in_flight += 1
            return self.in_flight

    def leave(self, counted: int) -> None:
        """A request counted by `enter` (``counted`` > 0) is no longer in flight."""
        if counted:
            with self.lock:
                self.in_flight -= 1

    def completed(self, entry: RecordedRequest | None, completed: bool) -> None:
        """Note in the log whether a request's whole reply went out."""
        if entry is not None:
            with self.lock:
                entry.completed = completed

    def record(self, entry: RecordedRequest) -> None:
        """Append to the request log (only the newest `LOG_LIMIT` entries are kept)."""
        with self.lock:
            self.requests.append(entry)
            del self.requests[:-LOG_LIMIT]


def is_control(path: str) -> bool:
    """The simulator's own ``/__sim__`` routes: never logged, limited or counted in flight."""
    return path.startswith("/__sim__")


def random_string(n: int) -> str:
    """``n`` random letters and digits."""
    return "".join(secrets.choice(ALNUM) for _ in range(n))
