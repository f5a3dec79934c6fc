"""The gateway's error envelopes (spec §2.1) and its console page, as `HttpError`s.

A: OpenAI ``{"error":{message,type,param?,code}}``; B: Anthropic
``{"type":"error","error":{type,message}}``; C: task ``{code,message,data:null}``;
D: video content ``{"error":{message,type}}``.
"""

from __future__ import annotations

from typing import Any

from ._http import HttpError, Reply, json_reply

CONSOLE_HTML = (
    '<!doctype html><html lang="zh"><head><meta charset="utf-8"/>'
    '<title>New API</title><meta name="viewport" content="width=device-width"/></head>'
    "<body><noscript>You need to enable JavaScript to run this app.</noscript>"
    '<div id="root"></div><script type="module" src="/assets/index.js"></script>'
    "</body></html>"
)


def with_rid(message: str, rid: str) -> str:
    """``message`` with the gateway's ``(request id: …)`` suffix."""
    return f"{message} (request id: {rid})" if rid else message


def middleware_error(status: int, message: str, rid: str, code: Any = "") -> HttpError:
    """Envelope A as middleware writes it: no ``param`` key (auth, routing, limits)."""
    error = {"message": with_rid(message, rid), "type": "new_api_error", "code": code}
    return HttpError(json_reply({"error": error}, status))


def relay_error(
    status: int,
    message: str,
    rid: str,
    code: Any = "invalid_request",
    type_: str = "new_api_error",
    param: str = "",
) -> HttpError:
    """Envelope A raised inside the relay (has ``param``)."""
    error = {"message": with_rid(message, rid), "type": type_, "param": param, "code": code}
    return HttpError(json_reply({"error": error}, status))


def anthropic_error(status: int, message: str, rid: str, type_: str = "new_api_error") -> HttpError:
    """Envelope B, for errors inside the ``/v1/messages`` relay."""
    body = {"type": "error", "error": {"type": type_, "message": with_rid(message, rid)}}
    return HttpError(json_reply(body, status))


def task_error(status: int, code: str, message: str) -> HttpError:
    """Envelope C, for video create and poll."""
    return HttpError(json_reply({"code": code, "message": message, "data": None}, status))


def content_error(status: int, message: str, type_: str = "invalid_request_error") -> HttpError:
    """Envelope D, for ``GET /v1/videos/{id}/content``."""
    return HttpError(json_reply({"error": {"message": message, "type": type_}}, status))


def console_page() -> Reply:
    """The web console's HTML page (200), served for unknown non-API paths."""
    return Reply(200, CONSOLE_HTML.encode(), "text/html; charset=utf-8")


def convert_failed(message: str, rid: str) -> HttpError:
    """500 ``convert_request_failed``: the model's channel cannot serve this endpoint."""
    return relay_error(500, message, rid, code="convert_request_failed")


def invalid_request(message: str, rid: str) -> HttpError:
    """500 ``invalid_request``: request validation after routing (§2.2)."""
    return relay_error(500, message, rid)


def google_error(status: int, message: str, rid: str) -> HttpError:
    """A Google upstream error re-wrapped in envelope A with a numeric code (§2.1)."""
    return relay_error(status, message, rid, code=status, type_="upstream_error")
