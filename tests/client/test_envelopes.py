"""Every error envelope of the gateway becomes one short, typed error (spec §2.1, §2.2)."""

from __future__ import annotations

import json

import pytest

from tokenhot_jupyter import _exceptions as E
from tokenhot_jupyter._envelopes import error_from_response, parse_error_body


def _err(
    status: int, body: object, ctype: str = "application/json", **headers: str
) -> E.APIStatusError:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    hdrs = {"content-type": ctype, "x-oneapi-request-id": "RID1", **headers}
    return error_from_response(status, hdrs, raw, model="gpt-5", what="chat")


def test_openai_envelope_with_request_id_suffix() -> None:
    exc = _err(
        500,
        {
            "error": {
                "message": "field messages is required (request id: 2026X)",
                "type": "new_api_error",
                "param": "",
                "code": "invalid_request",
            }
        },
    )
    assert isinstance(exc, E.BadRequestError)
    assert exc.code == "invalid_request" and exc.request_id == "RID1"
    assert str(exc).startswith(
        "Chat for gpt-5 failed: field messages is required (HTTP 500, request id RID1)."
    )
    assert "(request id: 2026X)" not in str(exc)


def test_numeric_code_and_anthropic_envelope() -> None:
    exc = _err(400, {"error": {"message": "bad", "type": "upstream_error", "code": 400}})
    assert exc.code == "400" and isinstance(exc, E.BadRequestError)
    exc = _err(
        400, {"type": "error", "error": {"type": "new_api_error", "message": "bad thinking config"}}
    )
    assert "bad thinking config" in str(exc)


def test_task_envelope_and_task_not_exist() -> None:
    exc = _err(400, {"code": "task_not_exist", "message": "task_not_exist", "data": None})
    assert isinstance(exc, E.NotFoundError) and "Check the task id" in str(exc)


def test_empty_429_uses_status_and_retry_after() -> None:
    exc = _err(429, b"", "text/plain", **{"retry-after": "3"})
    assert isinstance(exc, E.RateLimitError)
    assert exc.retry_after == 3.0
    assert "Too many requests" in str(exc) and "Wait a little" in str(exc)


def test_html_page_is_not_an_api_response() -> None:
    exc = _err(200, b"<!doctype html><html><body>console</body></html>", "text/html")
    assert isinstance(exc, E.NotAnAPIResponseError)
    assert "HTML page instead of JSON" in str(exc) and "TOKENHOT_BASE_URL" in str(exc)


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (
            401,
            {"error": {"message": "无效的令牌", "type": "new_api_error", "code": ""}},
            E.AuthenticationError,
        ),
        (
            403,
            {"error": {"message": "用户额度不足, 剩余额度: 0", "code": "insufficient_user_quota"}},
            E.InsufficientQuotaError,
        ),
        (
            403,
            {"error": {"message": "This token has no access to model gpt-5"}},
            E.PermissionDeniedError,
        ),
        (
            404,
            {"error": {"message": "Invalid URL (GET /v1/xyz)", "type": "invalid_request_error"}},
            E.NotFoundError,
        ),
        (
            413,
            {"error": {"message": "too big", "code": "read_request_body_failed"}},
            E.RequestTooLargeError,
        ),
        (500, {"error": {"message": "boom", "code": "convert_request_failed"}}, E.BadRequestError),
        (500, {"error": {"message": "upstream exploded", "type": "upstream_error"}}, E.ServerError),
        (501, {"error": {"message": "nope", "code": "api_not_implemented"}}, E.BadRequestError),
        (
            503,
            {"error": {"message": "No available channel for model x", "code": "model_not_found"}},
            E.ModelUnavailableError,
        ),
        (503, {"error": {"message": "cpu", "code": "system_cpu_overloaded"}}, E.ServerError),
    ],
)
def test_status_table(status: int, body: dict[str, object], cls: type[E.APIStatusError]) -> None:
    exc = _err(status, body)
    assert type(exc) is cls
    assert exc.status_code == status
    assert len(str(exc)) < 400 and "\n" not in str(exc)


def test_chinese_messages_get_an_english_gloss() -> None:
    assert "invalid token" in str(_err(401, {"error": {"message": "无效的令牌"}}))
    exc = _err(403, {"error": {"message": "普通用户不支持指定渠道"}})
    assert "cannot choose a channel" in str(exc) and "exactly as issued" in str(exc)


def test_render_traceback_is_one_line() -> None:
    exc = _err(401, {"error": {"message": "Invalid token"}})
    lines = exc._render_traceback_()
    assert len(lines) == 1 and lines[0].startswith("AuthenticationError: ")


def test_parse_error_body_non_json() -> None:
    assert parse_error_body(b"oops", "text/plain")[0] == "oops"
    assert parse_error_body(b"", "application/json") == ("", None, None, None)


def test_task_envelope_unwraps_the_upstream_json_body() -> None:
    body = {"code": "fail_to_fetch_task", "data": None,
            "message": '{"error": {"message": "upstream said no", "type": "x"}}'}  # fmt: skip
    exc = _err(500, body)
    assert "upstream said no" in str(exc) and '{"error"' not in str(exc)
