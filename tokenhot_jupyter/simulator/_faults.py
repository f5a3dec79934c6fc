"""Injected faults: parse a fault spec and queue faults aimed at requests.

A spec is one or more comma-separated items, e.g. ``"slow=0.5,503"``:

===================  ======================================================================
``429``              429 with an empty body (the gateway's in-memory rate limiter)
``429:retry-after=N``  the same plus a ``Retry-After: N`` header
``429:redis``        429 with the Redis limiter's Chinese message (envelope A)
``500`` ``502``      an upstream failure relayed in the route's error envelope
``503``              503 ``system_cpu_overloaded``
``503:model``        503 ``model_not_found``
``drop``             close the connection before replying
``drop-mid-stream``  send part of the reply (some SSE events or some bytes), then close
``end-early``        end an SSE stream cleanly just before its last event, the family's end
                     marker (``[DONE]``, ``response.completed``, ``message_stop``, the
                     Gemini chunk with ``finishReason``)
``malformed``        200 with truncated JSON (or a broken SSE event)
``html``             200 with the web console's HTML page
``slow=S``           wait S real seconds before replying
``ping``             chat streams carry a ``: PING`` comment
``task-fail``        the created video task ends in FAILURE with a reason
``task-stuck``       the created task never turns terminal until the 1440-minute sweep
``expire-url``       the created task's result URL is already expired when it succeeds
``upstream-429``     video create answers 429 envelope C (saturated upstream); relay routes 429
``schema-mismatch``  a structured answer (any chat dialect) leaves out a required field, so
                     it does not match the schema it was asked for
===================  ======================================================================
"""

from __future__ import annotations

import dataclasses
import fnmatch
import threading
from dataclasses import dataclass
from typing import Any

_FLAGS = {
    "drop": "drop",
    "drop-mid-stream": "drop_mid_stream",
    "end-early": "end_early",
    "malformed": "malformed",
    "html": "html",
    "ping": "ping",
    "expire-url": "expire_url",
    "upstream-429": "upstream_429",
    "schema-mismatch": "schema_mismatch",
}
_STATUSES = {"429", "500", "502", "503"}


@dataclass(frozen=True)
class Fault:
    """What to break in one request (fields combine)."""

    status: int | None = None
    variant: str = ""  # "redis" (429) or "model" (503)
    retry_after: str | None = None
    drop: bool = False
    drop_mid_stream: bool = False
    end_early: bool = False
    malformed: bool = False
    html: bool = False
    slow: float = 0.0
    ping: bool = False
    task: str = ""  # "fail" or "stuck"
    expire_url: bool = False
    upstream_429: bool = False
    schema_mismatch: bool = False
    spec: str = ""

    def merge(self, other: Fault | None) -> Fault:
        """This fault with every field ``other`` sets added on top."""
        if other is None:
            return self
        changes = {
            f.name: getattr(other, f.name)
            for f in dataclasses.fields(other)
            if getattr(other, f.name) not in (None, "", False, 0.0)
        }
        changes["spec"] = ",".join(s for s in (self.spec, other.spec) if s)
        return dataclasses.replace(self, **changes)


def parse_fault(spec: str) -> Fault:
    """Parse a fault spec such as ``"429:retry-after=2"``; ValueError if unknown."""
    fault = Fault(spec=spec.strip())
    for item in (part.strip().lower() for part in spec.split(",")):
        if item:
            fault = dataclasses.replace(fault, **_item_fields(item))
    return fault


def _item_fields(item: str) -> dict[str, Any]:
    head, _, arg = item.partition(":")
    if head in _STATUSES:
        return _status_fields(int(head), arg)
    if head in _FLAGS and not arg:
        return {_FLAGS[head]: True}
    if head in ("task-fail", "task-stuck") and not arg:
        return {"task": head.removeprefix("task-")}
    name, _, value = item.partition("=")
    if name == "slow" and value:
        seconds = float(value)
        if seconds < 0:
            raise ValueError(f"bad fault spec {item!r}: slow must be >= 0")
        return {"slow": seconds}
    raise ValueError(f"unknown fault spec {item!r}")


def _status_fields(status: int, arg: str) -> dict[str, Any]:
    if not arg:
        return {"status": status}
    if status == 429 and arg == "redis":
        return {"status": status, "variant": "redis"}
    if status == 429 and arg.startswith("retry-after="):
        return {"status": status, "retry_after": arg.partition("=")[2]}
    if status == 503 and arg == "model":
        return {"status": status, "variant": "model"}
    raise ValueError(f"unknown fault spec {status}:{arg}")


@dataclass
class _Entry:
    fault: Fault
    path: str | None
    method: str | None
    remaining: int  # < 0: forever

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


class FaultPlan:
    """A thread-safe queue of faults, each aimed at a path (glob) and method."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []

    def add(
        self, spec: str, path: str | None = None, method: str | None = None, times: int = 1
    ) -> Fault:
        """Break the next ``times`` matching requests (``times=-1``: every one)."""
        fault = parse_fault(spec)
        if times == 0:
            return fault
        with self._lock:
            self._entries.append(_Entry(fault, path or None, method or None, times))
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Consume and return the first fault aimed at this request, if any."""
        with self._lock:
            for entry in self._entries:
                if entry.matches(method, path):
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._entries.remove(entry)
                    return entry.fault
        return None

    def clear(self) -> None:
        """Forget every queued fault."""
        with self._lock:
            self._entries.clear()

    def pending(self) -> list[dict[str, Any]]:
        """The queued faults, as JSON-friendly dicts."""
        with self._lock:
            return [
                {"spec": e.fault.spec, "path": e.path, "method": e.method, "times": e.remaining}
                for e in self._entries
            ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
