"""A route of the simulated gateway and the per-request context its handler receives."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._channels import Served
from ._errors import anthropic_error, invalid_request, task_error
from ._faults import Fault
from ._http import HttpError, Request, Result
from ._state import RecordedRequest, State

Handler = Callable[["Ctx"], Result]


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/v1/videos/{task_id}`` → a regex with named groups; ``{*}`` matches any rest."""
    parts = re.split(r"\{(\w+|\*)\}", pattern)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else (".*" if part == "*" else f"(?P<{part}>[^/]+)")
        for i, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


@dataclass(frozen=True)
class Route:
    """One entry of the route table: method, path pattern, handler and middleware flags."""

    method: str  # "*" for any method
    pattern: str
    handler: Handler
    kind: str = ""  # endpoint kind, checked against the model's channel (`ROUTES`)
    model: str = ""  # where the distributor finds the model: "body", "path" or "" (none)
    default_model: str = ""  # routing fallback when the body names none
    style: str = "A"  # error envelope: A, B (Anthropic relay), C (task), D (content), G (Gemini)
    auth: bool = True
    billable: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", compile_pattern(self.pattern))


@dataclass
class Ctx:
    """Everything a handler needs for one request."""

    state: State
    req: Request
    route: Route
    record: RecordedRequest
    token: str = ""
    served: Served | None = None
    effort: str | None = None  # from a model-name suffix
    fault: Fault = field(default_factory=Fault)

    @property
    def rid(self) -> str:
        """The request id."""
        return self.req.request_id

    @property
    def model(self) -> Served:
        """The served model the distributor picked."""
        if self.served is None:
            raise RuntimeError("route has no model")
        return self.served

    @property
    def fields(self) -> dict[str, Any]:
        """The request body's fields (empty for unparsed content types)."""
        return self.req.fields

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self.state.now()

    def invalid(self, message: str) -> HttpError:
        """The validation error of this route's relay (500 A/B, 400 C)."""
        if self.route.style == "B":
            return anthropic_error(500, message, self.rid)
        if self.route.style == "C":
            return task_error(400, "invalid_request", message)
        return invalid_request(message, self.rid)

    def forward(self, body: Any) -> None:
        """Note the body the gateway would send upstream (visible in ``sim.requests``)."""
        self.record.upstream = body
