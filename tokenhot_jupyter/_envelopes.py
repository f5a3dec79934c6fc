"""Turn any error reply of the gateway into one exception of our tree (spec §2.1, §2.2).

Parse order: empty body → status alone; HTML → not an API route; ``{"error": {...}}`` →
envelopes A, B and D; ``{"code", "data"}`` → task envelope C.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from . import _exceptions as E

_REQUEST_ID = re.compile(r"\s*\(request id: ([^)]*)\)\s*$")

# The gateway speaks Chinese in some messages; a short English gloss follows them.
GLOSSES = {
    "无效的令牌": "invalid token",
    "用户额度不足": "account balance too low",
    "预扣费额度失败": "pre-charge failed",
    "普通用户不支持指定渠道": "ordinary users cannot choose a channel",
    "您已达到请求数限制": "request limit reached",
    "当前分组上游负载已饱和": "upstream capacity for your group is saturated, retry later",
    "任务超时": "task timed out",
}

_BY_STATUS: dict[int, type[E.APIStatusError]] = {
    400: E.BadRequestError,
    401: E.AuthenticationError,
    403: E.PermissionDeniedError,
    404: E.NotFoundError,
    413: E.RequestTooLargeError,
    429: E.RateLimitError,
}
_VALIDATION_CODES = {
    "invalid_request",
    "convert_request_failed",
    "invalid_json",
    "api_not_implemented",
}
_EMPTY_MESSAGES = {
    429: "Too many requests (rate limited)",
    401: "Invalid token",
    500: "Internal error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def gloss(message: str) -> str:
    """Append an English gloss to a known Chinese gateway message."""
    for chinese, english in GLOSSES.items():
        if chinese in message and english not in message:
            return f"{message} ({english})"
    return message


def parse_error_body(body: bytes, content_type: str) -> tuple[str, str | None, str | None, Any]:
    """(message, code, type, parsed body) from an error reply body."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return "", None, None, None
    if "html" in content_type.lower() or text[:1] == "<":
        return "", None, "html", text[:200]
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300], None, None, text[:300]
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping):  # envelopes A, B, D
            return (
                str(err.get("message") or ""),
                _code(err.get("code")),
                _code(err.get("type")),
                data,
            )
        if isinstance(err, str):
            return err, _code(data.get("code")), None, data
        if "code" in data and "message" in data:  # envelope C
            return _unwrap(str(data.get("message") or "")), _code(data.get("code")), None, data
    return text[:300], None, None, data


def _unwrap(message: str) -> str:
    """The upstream's own message when envelope C carries its raw JSON body (spec §10.10)."""
    if not message.lstrip().startswith("{"):
        return message
    try:
        inner = json.loads(message)
    except ValueError:
        return message
    err = inner.get("error") if isinstance(inner, Mapping) else None
    found = err.get("message") if isinstance(err, Mapping) else None
    found = found or (inner.get("message") if isinstance(inner, Mapping) else None)
    return str(found) if found else message


def _code(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    model: str | None = None,
    what: str = "request",
) -> E.APIStatusError:
    """The exception for a gateway error reply."""
    request_id = headers.get("x-oneapi-request-id") or None
    message, code, etype, parsed = parse_error_body(body, headers.get("content-type", ""))
    match = _REQUEST_ID.search(message)
    if match:
        request_id = request_id or match.group(1)
        message = message[: match.start()]
    message = gloss(message.strip() or _EMPTY_MESSAGES.get(status, f"HTTP {status}"))
    cls = _classify(status, code, message, etype)
    if etype == "html":
        message = "The gateway sent an HTML page instead of JSON"
    where = f" for {model}" if model else ""
    text = f"{what.capitalize()}{where} failed: {message} (HTTP {status}"
    text += f", request id {request_id})." if request_id else ")."
    return cls(
        text,
        status_code=status,
        request_id=request_id,
        code=code,
        model=model,
        body=parsed,
        hint=_hint(cls, code, message),
        retry_after=_retry_after(headers),
    )


def _classify(
    status: int, code: str | None, message: str, etype: str | None
) -> type[E.APIStatusError]:
    if etype == "html":
        return E.NotAnAPIResponseError
    if code == "insufficient_user_quota" or "额度不足" in message:
        return E.InsufficientQuotaError
    if code == "task_not_exist":
        return E.NotFoundError
    if status == 503 and code == "model_not_found":
        return E.ModelUnavailableError
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if code in _VALIDATION_CODES or status == 501:
        return E.BadRequestError
    if status >= 500:
        return E.ServerError
    return E.BadRequestError


def _hint(cls: type[E.APIStatusError], code: str | None, message: str) -> str | None:
    if "指定渠道" in message:
        return "Send the key exactly as issued, without anything appended."
    if code == "task_not_exist":
        return "Check the task id; tasks made with another key are not visible."
    if code == "convert_request_failed":
        return "This model is not served on that endpoint; pick another model or endpoint."
    return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def is_retryable_status(status: int, code: str | None) -> bool:
    """Whether a reply proves nothing billable happened and a retry may help (spec §2.3)."""
    if status == 429:
        return True
    return status == 503 and (code or "").startswith("system_")
