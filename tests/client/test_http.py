"""Retry rules (spec §2.3), key handling and stream breaks, with httpx.MockTransport."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import tokenhot_jupyter as th
from tokenhot_jupyter._media import encode_png

KEY = "sk-unitTESTkey0123456789abcdef"
_PNG = encode_png(2, 2, bytes(12))


class Recorder:
    """A MockTransport handler that answers from a script and remembers every request."""

    def __init__(
        self, *replies: Callable[[httpx.Request], httpx.Response] | httpx.Response
    ) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply(request) if callable(reply) else reply


def _client(handler: Recorder, sleeps: list[float] | None = None, **kw: object) -> th.Client:
    async def sleep(seconds: float) -> None:
        (sleeps if sleeps is not None else []).append(seconds)

    return th.Client(
        KEY,
        "https://gw.example",
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        live_models=False,
        **kw,  # type: ignore[arg-type]
    )


def _ok_chat(text: str = "hi") -> httpx.Response:
    body = {
        "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    return httpx.Response(200, json=body)


def _raise(exc: type[Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)  # type: ignore[call-arg]

    return handler


def test_429_is_retried_with_retry_after_then_succeeds() -> None:
    rec = Recorder(
        httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(429), _ok_chat()
    )
    sleeps: list[float] = []
    result = _client(rec, sleeps, backoff=0.5).chat("hello", model="gpt-5")
    assert result.text == "hi" and len(rec.requests) == 3
    assert sleeps[0] == 2.0 and 0.25 <= sleeps[1] <= 1.0


def test_validation_500_and_401_are_not_retried() -> None:
    for reply, cls in (
        (
            httpx.Response(500, json={"error": {"message": "m", "code": "invalid_request"}}),
            th.BadRequestError,
        ),
        (
            httpx.Response(401, json={"error": {"message": "Invalid token", "code": ""}}),
            th.AuthenticationError,
        ),
        (httpx.Response(403, json={"error": {"message": "no"}}), th.PermissionDeniedError),
        (
            httpx.Response(503, json={"error": {"message": "x", "code": "model_not_found"}}),
            th.ModelUnavailableError,
        ),
    ):
        rec = Recorder(reply)
        with pytest.raises(cls):
            _client(rec).chat("hello", model="gpt-5")
        assert len(rec.requests) == 1


def test_overload_503_is_retried_for_posts_but_plain_502_is_not() -> None:
    rec = Recorder(
        httpx.Response(503, json={"error": {"code": "system_cpu_overloaded"}}), _ok_chat()
    )
    assert _client(rec).chat("x", model="gpt-5").text == "hi"
    rec = Recorder(httpx.Response(502, text="bad gateway"), _ok_chat())
    with pytest.raises(th.ServerError):
        _client(rec).chat("x", model="gpt-5")
    assert len(rec.requests) == 1


def test_reads_retry_on_5xx_and_read_errors() -> None:
    task = {
        "code": "success",
        "message": "",
        "data": {"task_id": "task_x", "status": "IN_PROGRESS", "progress": "30%"},
    }
    rec = Recorder(httpx.Response(502), _raise(httpx.ReadError), httpx.Response(200, json=task))
    got = _client(rec).get_video("task_x", model="doubao-seedance-2.0")
    assert got.status == "running" and got.progress == 30 and len(rec.requests) == 3


def test_connect_error_is_retried_even_for_video_create() -> None:
    created = {
        "id": "task_abc",
        "task_id": "task_abc",
        "object": "video",
        "status": "queued",
        "progress": 0,
    }
    rec = Recorder(_raise(httpx.ConnectError), httpx.Response(200, json=created))
    task = _client(rec).video("a cat", model="doubao-seedance-2.0")
    assert task.id == "task_abc" and task.status == "queued" and len(rec.requests) == 2


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
def test_video_create_is_never_resent_once_it_may_have_arrived(exc: type[Exception]) -> None:
    rec = Recorder(_raise(exc))
    with pytest.raises(th.TaskMaybeCreatedError, match="may exist"):
        _client(rec).video("a cat", model="doubao-seedance-2.0")
    assert len(rec.requests) == 1


def test_video_create_502_is_maybe_created_not_retried() -> None:
    rec = Recorder(httpx.Response(502))
    with pytest.raises(th.TaskMaybeCreatedError):
        _client(rec).video("a cat", model="sora-2")
    assert len(rec.requests) == 1


def test_chat_post_is_not_resent_after_a_read_timeout() -> None:
    rec = Recorder(_raise(httpx.ReadTimeout), _ok_chat())
    with pytest.raises(th.APITimeoutError, match="may already have run"):
        _client(rec).chat("x", model="gpt-5")
    assert len(rec.requests) == 1


def test_retries_give_up_after_max_retries() -> None:
    rec = Recorder(httpx.Response(429))
    with pytest.raises(th.RateLimitError):
        _client(rec, max_retries=2).chat("x", model="gpt-5")
    assert len(rec.requests) == 3


def test_key_is_sent_as_bearer_to_the_gateway_only() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    gen = {"data": [{"url": "https://files.example/a.png"}]}
    rec = Recorder(
        lambda r: (
            httpx.Response(200, json=gen)
            if r.url.host == "gw.example"
            else httpx.Response(200, content=png, headers={"content-type": "image/png"})
        )
    )
    result = _client(rec).image("a cat", model="gpt-image-2")
    assert result.images[0].data == png and result.images[0].mime == "image/png"
    gw, files = rec.requests
    assert gw.headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in files.headers and KEY not in str(files.url)


def test_key_never_in_errors_or_reprs() -> None:
    rec = Recorder(lambda r: httpx.Response(401, json={"error": {"message": f"bad key {KEY}"}}))
    client = _client(rec)
    with pytest.raises(th.AuthenticationError) as info:
        client.chat("x", model="gpt-5")
    for text in (
        str(info.value),
        repr(info.value),
        repr(client),
        "".join(info.value._render_traceback_()),
    ):
        assert KEY not in text
    assert "sk-***" in str(info.value)


def test_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENHOT_API_KEY", raising=False)
    client = th.Client(
        base_url="https://gw.example", transport=httpx.MockTransport(Recorder(_ok_chat()))
    )
    with pytest.raises(th.ConfigurationError, match="TOKENHOT_API_KEY"):
        client.chat("x", model="gpt-5")


def test_stream_broken_midway_is_reported_not_retried() -> None:
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            chunk = {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            raise httpx.ReadError("connection reset")

    rec = Recorder(
        lambda r: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Broken()
        )
    )
    got = []
    with pytest.raises(th.APIConnectionError, match="broke after"):
        for chunk in _client(rec).chat_stream("x", model="gpt-5"):
            got.append(chunk.text)
    assert got == ["Hel"] and len(rec.requests) == 1


def test_malformed_json_reply_is_a_clear_error() -> None:
    rec = Recorder(
        httpx.Response(200, content=b'{"choices": [', headers={"content-type": "application/json"})
    )
    with pytest.raises(th.ServerError, match="malformed reply"):
        _client(rec).chat("x", model="gpt-5")


def test_debug_logs_never_carry_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    task = {"code": "success", "message": "", "data": {"status": "SUCCESS", "progress": "100%"}}
    rec = Recorder(httpx.Response(429), httpx.Response(502), httpx.Response(200, json=task))
    client = _client(rec)
    assert client.wait_video("task_x", model="doubao-seedance-2.0").status == "succeeded"
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying" in m for m in messages) and any("poll task_x" in m for m in messages)
    assert not any(KEY in m for m in messages)


@pytest.mark.parametrize(
    ("kwargs", "text"), [({"timeout": 0}, "timeout"), ({"max_retries": -1}, "max_retries")]
)
def test_bad_client_settings_are_clear(kwargs: dict[str, float], text: str) -> None:
    with pytest.raises(th.InvalidInputError, match=text):
        th.Client(KEY, "https://gw.example", **kwargs)  # type: ignore[arg-type]


def test_unreadable_create_reply_recovers_the_task_id() -> None:
    rec = Recorder(httpx.Response(200, content=b'{"id":"task_' + b"A" * 32 + b'","obj'))
    task = _client(rec).video("a cat", model="doubao-seedance-2.0")
    assert task.id == "task_" + "A" * 32 and task.status == "queued"
    assert len(rec.requests) == 1


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'["not", "an", "object"]', b"{}"])
def test_create_reply_without_an_id_is_maybe_created(body: bytes) -> None:
    rec = Recorder(httpx.Response(200, content=body))
    with pytest.raises(th.TaskMaybeCreatedError, match="may exist"):
        _client(rec).video("a cat", model="doubao-seedance-2.0")
    assert len(rec.requests) == 1


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("", th.TaskMaybeCreatedError),
        ("upstream_error", th.TaskMaybeCreatedError),
        ("invalid_request", th.BadRequestError),
        ("fail_to_fetch_task", th.ServerError),
    ],
)
def test_video_create_5xx_is_maybe_created_unless_it_proves_otherwise(
    code: str, cls: type[Exception]
) -> None:
    rec = Recorder(httpx.Response(500, json={"code": code, "message": "boom", "data": None}))
    with pytest.raises(cls) as info:
        _client(rec).video("a cat", model="doubao-seedance-2.0")
    assert type(info.value) is cls and len(rec.requests) == 1


def test_a_body_over_the_gateways_cap_is_refused_before_sending() -> None:
    rec = Recorder(_ok_chat())
    half = b"\x89PNG\r\n\x1a\n" + bytes(50 * 2**20)  # each fits; base64 makes both ~133 MB
    with pytest.raises(th.InvalidInputError, match="at most 128 MB"):
        _client(rec).chat("what is this?", model="gpt-5", images=[half, half])
    assert rec.requests == []


def test_nan_parameters_are_refused() -> None:
    with pytest.raises(th.InvalidInputError, match="temperature"):
        _client(Recorder(_ok_chat())).chat("x", model="gpt-5", temperature=float("nan"))


def test_redaction_keeps_the_text_around_a_bearer_token() -> None:
    from tokenhot_jupyter._redact import redact

    assert redact("(sent Bearer abc.def-123) ok") == "(sent Bearer sk-***) ok"


def _nothing_sent() -> tuple[Recorder, th.Client]:
    rec = Recorder(_ok_chat())
    return rec, _client(rec)


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"seed": float("nan")}, "seed is nan"),
        ({"x": float("inf")}, "x is inf"),
        (
            {"extra_body": {"google": {"scale": [1.0, float("-inf")]}}},
            r"google\.scale\[1\] is -inf",
        ),
        ({"extra_field": object()}, "extra_field is an object, which is not a JSON value"),
        ({"tags": ["ok", "caf\udce9"]}, r"tags\[1\] has a lone surrogate"),
        ({"meta": {1j: "x"}}, "a key of meta is a complex"),
    ],
)
def test_a_value_json_cannot_carry_is_one_line_before_sending(
    params: dict[str, Any], said: str
) -> None:
    rec, client = _nothing_sent()
    with pytest.raises(th.InvalidInputError, match=said) as info:
        client.chat("hi", model="gpt-5", **params)
    assert "\n" not in str(info.value) and rec.requests == []
    with pytest.raises(th.InvalidInputError, match=said):
        list(client.chat_stream("hi", model="gpt-5", **params))
    assert rec.requests == []


def test_a_lone_surrogate_in_a_prompt_is_one_line_before_sending() -> None:
    rec, client = _nothing_sent()
    with pytest.raises(th.InvalidInputError, match=r"messages\[0\]\.content has a lone surrogate"):
        client.chat("caf\udce9", model="gpt-5")
    with pytest.raises(th.InvalidInputError, match="prompt has a lone surrogate"):
        client.image("caf\udce9", model="gpt-image-1.5", images=[_PNG])  # a multipart form
    assert rec.requests == []


def test_a_body_that_contains_itself_is_one_line() -> None:
    loop: dict[str, object] = {}
    loop["again"] = loop
    rec, client = _nothing_sent()
    with pytest.raises(th.InvalidInputError, match=r"loop\.again contains itself"):
        client.chat("hi", model="gpt-5", loop=loop)
    shared = [1, 2]
    assert client.chat("hi", model="gpt-5", a=shared, b=shared).text == "hi"  # shared is fine
    assert json.loads(rec.requests[-1].content)["b"] == [1, 2]


def test_no_key_in_httpx_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    with pytest.raises(th.ConfigurationError, match="API key in its path") as info:
        th.Client(KEY, f"https://gw.example/{KEY}/v1")
    assert KEY not in str(info.value)

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.host == "files.example":
            return httpx.Response(200, content=_PNG)
        return httpx.Response(200, json={"candidates": [{"content": {"parts": [{"text": "ok"}]}}]})

    client = _client(Recorder(gateway))
    client.chat("What?", model="gemini-2.5-flash", images=[f"https://files.example/{KEY}/a.png"])
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("files.example/sk-***/a.png" in line for line in lines), lines
    assert not any(KEY in line for line in lines)


# --- gateway requests go straight to the transport ----------------------------------------------


def test_a_gateway_request_carries_each_header_once() -> None:
    rec = Recorder(_ok_chat())
    _client(rec).chat("hi", model="gpt-5")
    names = [name.lower() for name, _ in rec.requests[0].headers.raw]
    assert len(names) == len(set(names)), names
    headers = rec.requests[0].headers
    assert (
        headers["user-agent"].startswith("tokenhot-jupyter/")
        and "gzip" in headers["accept-encoding"]
    )


def test_a_gateway_that_redirects_is_followed() -> None:
    def moved(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1/"):
            return httpx.Response(307, headers={"Location": "https://gw.example/v2/chat"})
        return _ok_chat("moved")

    rec = Recorder(moved)
    assert _client(rec).chat("hi", model="gpt-5").text == "moved"
    assert rec.requests[-1].url.path == "/v2/chat" and rec.requests[-1].method == "POST"
    assert rec.requests[-1].content == rec.requests[0].content
