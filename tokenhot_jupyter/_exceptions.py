"""The one error tree of tokenhot_jupyter.

TokenhotError
 ├── ConfigurationError          no key, bad base URL, bad local setting
 ├── InvalidInputError (+ValueError)   bad arguments caught before any request
 │    └── UnknownModelError (+KeyError)  with "did you mean" suggestions
 ├── APIConnectionError          the gateway could not be reached, or a reply broke off
 │    ├── APITimeoutError
 │    └── StreamIncompleteError      a streamed answer ended early; ``.result`` has what arrived
 ├── APIStatusError              the gateway answered with an error
 │    ├── BadRequestError          400, and the gateway's 500 validation errors
 │    ├── AuthenticationError      401 (bad key, or the token's quota ran out)
 │    ├── PermissionDeniedError    403
 │    │    └── InsufficientQuotaError
 │    ├── NotFoundError            404
 │    ├── RequestTooLargeError     413
 │    ├── RateLimitError           429
 │    ├── ModelUnavailableError    503 model_not_found
 │    ├── ServerError              other 5xx
 │    └── NotAnAPIResponseError    HTML or other non-JSON where JSON was due
 ├── SchemaMismatch               a structured answer is not JSON that matches its schema;
 │                                 ``.raw`` keeps the text, ``.result`` the whole answer
 ├── VideoTaskError               a video task went wrong after it was created
 │    ├── TaskFailedError           the task ended in failure (refunded by the gateway)
 │    ├── TaskMaybeCreatedError     the create request may have reached the gateway
 │    ├── TaskTimeoutError          our own deadline passed; the task may still finish
 │    └── ResultUnavailableError    the result could not be downloaded (expired URL, ...)
 ├── CassetteError                record/replay: the cassette cannot answer
 │    ├── CassetteMissError         replay met a request that was never recorded
 │    └── CassetteFormatError       the cassette is missing, corrupt or of another format
 ├── BudgetExceeded               not sent: its estimate would pass a day or session budget
 └── NotConfirmed                 not sent: a batch above Tokenhot.confirm_over was not confirmed

Every message is one or two short sentences: what happened, for which model, the
gateway's request id, and what to do.  IPython shows ``_render_traceback_`` instead of a
traceback, so a notebook user sees those lines and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._redact import redact

if TYPE_CHECKING:
    from ._types import ChatResult

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceeded",
    "CassetteError",
    "CassetteFormatError",
    "CassetteMissError",
    "ConfigurationError",
    "InsufficientQuotaError",
    "InvalidInputError",
    "ModelUnavailableError",
    "NotAnAPIResponseError",
    "NotConfirmed",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "ResultUnavailableError",
    "SchemaMismatch",
    "ServerError",
    "StreamIncompleteError",
    "TaskFailedError",
    "TaskMaybeCreatedError",
    "TaskTimeoutError",
    "TokenhotError",
    "UnknownModelError",
    "VideoTaskError",
]


class TokenhotError(Exception):
    """Base class of every error this package raises."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None, model: str | None = None) -> None:
        self.message = redact(message)
        self.model = model
        if hint is not None:
            self.hint = redact(hint)
        super().__init__(self.message)

    def __str__(self) -> str:
        text = self.message
        if self.hint and self.hint not in text:
            text = f"{text} {self.hint}"
        return redact(text)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def _render_traceback_(self) -> list[str]:
        """Short lines IPython prints instead of a traceback."""
        return [f"{type(self).__name__}: {self}"]


class ConfigurationError(TokenhotError):
    """A setting is missing or wrong (API key, base URL, a local folder)."""


class InvalidInputError(TokenhotError, ValueError):
    """An argument is wrong; caught before anything was sent."""


class UnknownModelError(InvalidInputError, KeyError):
    """No model by that id, in the catalog or the live list."""

    def __init__(self, model_id: str, suggestions: list[str], *, kind: str | None = None) -> None:
        self.suggestions = suggestions
        what = f"{kind} model" if kind else "model"
        msg = f"Unknown {what} {model_id!r}."
        if suggestions:
            msg += " Did you mean " + ", ".join(repr(s) for s in suggestions) + "?"
        hint = "List models with Client().models() or %tokenhot models."
        super().__init__(msg, hint=hint, model=model_id)

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return TokenhotError.__str__(self)


class APIConnectionError(TokenhotError):
    """The gateway could not be reached, or the connection broke."""


class APITimeoutError(APIConnectionError):
    """The gateway did not answer in time."""


class StreamIncompleteError(APIConnectionError):
    """A streamed answer stopped before its end marker; ``result`` holds the text that came."""

    hint = "What arrived is kept (in error.result); run it again for a whole answer."

    def __init__(self, message: str, *, result: ChatResult, hint: str | None = None) -> None:
        self.result = result
        super().__init__(message, hint=hint, model=result.model)


class APIStatusError(TokenhotError):
    """The gateway answered with an error status."""

    hint = ""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        code: str | None = None,
        model: str | None = None,
        body: Any = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.request_id = request_id
        self.code = code
        self.body = body
        self.retry_after = retry_after
        super().__init__(message, hint=hint, model=model)


class BadRequestError(APIStatusError):
    """The gateway rejected the request as invalid (400, or its 500 validation errors)."""

    hint = "Check the parameters for this model (Client().models() lists them)."


class AuthenticationError(APIStatusError):
    """401: the key is missing, wrong, disabled, expired, or its quota is used up."""

    hint = (
        "Check the key in force (%tokenhot status says which: TOKENHOT_API_KEY, the key "
        "stored from the Tokenhot panel, or %tokenhot login); the gateway also says this "
        "when the key's quota is used up."
    )


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this (model not allowed, IP, group, banned)."""

    hint = "Ask the key's owner to allow this model, or use another key."


class InsufficientQuotaError(PermissionDeniedError):
    """403: the account balance is too low for this request."""

    hint = "Top up the account balance, then run it again."


class NotFoundError(APIStatusError):
    """404: no such route or object."""

    hint = "Check the base URL (TOKENHOT_BASE_URL) and the id."


class RequestTooLargeError(APIStatusError):
    """413: the request body is over the gateway's size cap."""

    hint = "Send smaller or fewer images (or pass URLs instead of files)."


class RateLimitError(APIStatusError):
    """429: too many requests."""

    hint = "Wait a little and run it again."


class ModelUnavailableError(APIStatusError):
    """503 model_not_found: no channel serves this model for your key's group."""

    hint = "Pick another model; %tokenhot models lists the ones your key can use."


class ServerError(APIStatusError):
    """5xx from the gateway or the provider behind it."""

    hint = "The gateway or the provider behind it failed; try again in a moment."


class NotAnAPIResponseError(APIStatusError):
    """The reply was an HTML page or other non-JSON where JSON was expected."""

    hint = "Check TOKENHOT_BASE_URL: it should be the gateway host, e.g. https://api.tokenhot.ai."


class SchemaMismatch(TokenhotError):
    """The answer is not JSON that matches the schema; ``raw`` keeps its text, ``result``
    the answer (set by the client: its usage is paid, so it is never sent again)."""

    hint = "The answer's text is kept (error.result.text); run it again or loosen the schema."

    def __init__(
        self,
        problem: str,
        *,
        raw: str,
        result: ChatResult | None = None,
        model: str | None = None,
    ) -> None:
        self.problem = problem
        self.raw = raw
        self.result = result
        who = f"{model}'s answer" if model else "The answer"
        super().__init__(f"{who} does not match the schema: {problem}.", model=model)


class VideoTaskError(TokenhotError):
    """A video task went wrong after it was created."""

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None = None,
        model: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.task_id = task_id
        super().__init__(message, hint=hint, model=model)


class TaskFailedError(VideoTaskError):
    """The task ended in failure; the gateway refunds failed tasks."""

    hint = "Failed tasks are refunded; change the prompt or parameters and try again."


class TaskMaybeCreatedError(VideoTaskError):
    """The create request may have reached the gateway; it was not sent again."""

    hint = (
        "It was not sent again, to avoid paying twice. If the gateway made the task it will "
        "finish on its own; check your account's task log before creating another."
    )


class TaskTimeoutError(VideoTaskError):
    """Our own deadline passed while the task was still pending."""

    hint = "The task may still finish: poll it again later with get_video(id) or %tokenhot attach."


class ResultUnavailableError(VideoTaskError):
    """The finished result could not be downloaded."""

    hint = "Result URLs expire about 24 h after the task ends; download results promptly."


class CassetteError(TokenhotError):
    """A record/replay cassette cannot answer a request."""


class CassetteMissError(CassetteError):
    """Replay mode met a request the cassette does not hold; nothing was sent."""

    hint = (
        "Record it (%tokenhot record PATH, or TOKENHOT_CASSETTE_MODE=record), or use auto mode "
        "(%tokenhot replay PATH --auto, or TOKENHOT_CASSETTE_MODE=auto) to record what is missing."
    )


class CassetteFormatError(CassetteError):
    """The cassette is missing, corrupt, or written in another format version."""

    hint = "Record it again (%tokenhot record PATH)."


class BudgetExceeded(TokenhotError):
    """A request was not sent: its estimated cost would pass the day or session budget."""

    def __init__(
        self,
        message: str,
        *,
        scope: str,
        limit: float,
        spent: float,
        cost: float | None,
        hint: str | None = None,
        model: str | None = None,
    ) -> None:
        self.scope = scope  # "day" (every kernel, from the usage ledger) or "session"
        self.limit, self.spent, self.cost = limit, spent, cost
        super().__init__(message, hint=hint, model=model)


class NotConfirmed(TokenhotError):
    """A batch above ``Tokenhot.confirm_over`` was declined, or could not be asked about."""

    hint = "Add --yes to send without asking."
