"""HTTP to the gateway: auth headers, retries with backoff, error translation, SSE.

Retry rules follow spec §2.3: reads retry on any transient failure; billable POSTs retry
only when the request provably did nothing (connection never opened, 429, overload); a
video-creating POST is never re-sent once it may have reached the gateway.  Inside
`throttles_raised` (a batch row), a 429 or overload is raised at once instead: the batch
re-queues the row and slows every row down (`_batch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from . import _exceptions as E
from ._cassette import Cassette
from ._cassette_transport import CassetteTransport
from ._config import MAX_BODY_BYTES
from ._envelopes import error_from_response, is_retryable_status
from ._net import direct_transport
from ._redact import guard_logs, redact, register_secret
from ._runtime import runtime
from ._sse import SSEEvent, parse_sse
from ._version import __version__

log = logging.getLogger("tokenhot_jupyter")

Mode = Literal["read", "write", "create"]
Sleep = Callable[[float], Awaitable[None]]
Body = dict[str, Any]  # a JSON request body, or multipart form fields, as the families build them
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0
# Connection failures where the request certainly never left this machine.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# False inside a batch row: its throttles go to the batch's limiter, which paces every row,
# instead of one row sleeping and re-sending alone while the others keep hitting the limit.
_RETRY_THROTTLES = contextvars.ContextVar("tokenhot_retry_throttles", default=True)


@contextlib.contextmanager
def throttles_raised() -> Iterator[None]:
    """Within: a 429 or 503 overload is raised at once (never slept on and re-sent here)."""
    token = _RETRY_THROTTLES.set(False)
    try:
        yield
    finally:
        _RETRY_THROTTLES.reset(token)


def is_throttle(error: BaseException) -> bool:
    """A 429 or 503 overload: the gateway refused before doing anything billable (§2.3)."""
    return isinstance(error, E.APIStatusError) and is_retryable_status(
        error.status_code, error.code
    )


@dataclass
class Connection:
    """How this client reaches one gateway with one key: retries, timeouts, key, cassette.

    Cheap, and no socket of its own: requests go over the process-wide pool (`_runtime`).
    """

    api_key: str | None
    base_url: str
    timeout: float
    max_retries: int
    backoff: float = 1.0
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    cassette: Cassette | None = field(default=None, repr=False)
    _own_http: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        register_secret(self.api_key)
        guard_logs()  # httpx logs every URL at INFO; a key in one must not reach a log

    def http(self) -> httpx.AsyncClient:
        """The shared pool, or a private client over a custom transport (tests) or a cassette."""
        if self.transport is None and self.cassette is None:
            return runtime.http()
        if self._own_http is None:
            transport = self.transport
            if self.cassette is not None:  # records or replays what the inner way would send
                transport = CassetteTransport(
                    self.cassette, self._send_live, self.base_url, self.api_key
                )
            self._own_http = httpx.AsyncClient(transport=transport, follow_redirects=True)
        return self._own_http

    async def _send_live(self, request: httpx.Request) -> httpx.Response:
        if self.transport is not None:
            return await self.transport.handle_async_request(request)
        return await runtime.http().send(request, stream=True)

    def _build(
        self, method: str, url: str, headers: dict[str, str], timeout: float | None, **kwargs: Any
    ) -> httpx.Request:
        """The request as ``http().build_request`` makes it; to the gateway, made directly.

        The gateway needs none of the client's merging (cookies, params, base URL), which
        costs more CPU than our whole request; its default headers still go under ours.
        """
        extensions = {"timeout": self._timeout(timeout).as_dict()}
        if self._direct(url) is None:
            return self.http().build_request(
                method, url, headers=headers, extensions=extensions, **kwargs
            )
        ours = {name.lower() for name in headers}  # ours win, whatever their case
        merged = [(k, v) for k, v in self.http().headers.items() if k not in ours]
        merged += headers.items()
        return httpx.Request(method, _parsed(url), headers=merged, extensions=extensions, **kwargs)

    def _direct(self, url: str) -> httpx.AsyncBaseTransport | None:
        """The transport a gateway request may go straight to (None: through the client)."""
        if not url.startswith(self.base_url + "/"):
            return None  # file hosts may redirect or set cookies: the client handles those
        return direct_transport(self.http())  # the pool's, a test's, or the cassette's

    async def _transmit(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        """One attempt, straight over the transport for the gateway (see `_build`).

        A redirect (a base URL that moved) is sent again through the client, which follows it.
        """
        transport = self._direct(str(request.url))
        if transport is None:
            return await self.http().send(request, stream=stream)
        response = await transport.handle_async_request(request)
        response.request = request
        if log.isEnabledFor(logging.DEBUG):  # the URL is only worth redacting when logged
            url = redact(str(request.url.copy_with(query=None)))
            log.debug("%s %s: HTTP %d", request.method, url, response.status_code)
        if response.is_redirect:
            await response.aclose()
            return await self.http().send(request, stream=stream)
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response

    def __repr__(self) -> str:
        return f"Connection(base_url={self.base_url!r}, key={'set' if self.api_key else 'not set'})"

    def url(self, path: str) -> str:
        """An absolute URL for a gateway path (absolute URLs pass through)."""
        return path if "://" in path else self.base_url + path

    def headers(self, url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Request headers; the key goes only to the gateway host, never to file hosts."""
        headers = {"User-Agent": f"tokenhot-jupyter/{__version__}", "Accept": "application/json"}
        if url.startswith(self.base_url + "/"):
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            elif self.cassette is None or self.cassette.mode == "record":  # a replay needs none
                raise E.ConfigurationError(
                    "No API key is set.",
                    hint="Set TOKENHOT_API_KEY, pass api_key=..., or run %tokenhot login.",
                )
        headers.update(extra or {})
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        mode: Mode,
        model: str | None = None,
        what: str = "request",
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request with the retry rules of ``mode``; return the (read) response."""
        url = self.url(path)
        encoded = _encode(kwargs, model)  # before the request is built from kwargs
        extra = {**encoded, **(headers or {})}
        request = self._build(method, url, self.headers(url, extra), timeout, **kwargs)
        _check_size(request, model)
        return await self._send(request, mode=mode, model=model, what=what, stream=False)

    async def stream(
        self, method: str, path: str, *, model: str | None, what: str = "stream", **kwargs: Any
    ) -> AsyncIterator[SSEEvent]:
        """POST and yield server-sent events; a non-SSE reply comes as one ``__body__`` event."""
        url = self.url(path)
        headers = self.headers(url, {**_encode(kwargs, model), "Accept": "text/event-stream"})
        request = self._build(method, url, headers, None, **kwargs)
        _check_size(request, model)
        response = await self._send(request, mode="write", model=model, what=what, stream=True)
        received = 0
        try:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                body = await response.aread()
                yield SSEEvent("__body__", body.decode("utf-8", "replace"))
                return
            async for event in parse_sse(response.aiter_lines()):
                received += len(event.data)
                yield event
        except _MAYBE_SENT as exc:
            raise E.APIConnectionError(
                f"The stream from {model or 'the gateway'} broke after {received} bytes "
                f"({_reason(exc)}).",
                hint="It was not retried because partial output is already billed; run it again.",
                model=model,
            ) from None
        finally:
            await response.aclose()

    async def download(self, url: str, *, limit: int, what: str = "download") -> Download:
        """GET a file to send on, reading no more than ``limit`` bytes of it."""
        request = self._build("GET", url, self.headers(url), None)
        response = await self._send(request, mode="read", model=None, what=what, stream=True)
        size = int(response.headers.get("content-length") or 0)  # too big: refused unread
        data, cut = b"", False
        try:
            if size <= limit:
                data, size = await _read_upto(response, limit)
                cut = size > limit
        except _MAYBE_SENT as exc:
            raise E.APIConnectionError(
                f"The {what} from {request.url.host} broke ({_reason(exc)}).",
                hint="Check the URL, or download the file and pass its path.",
            ) from None
        finally:
            await response.aclose()
        return Download(data, size, cut)

    def _timeout(self, timeout: float | None) -> httpx.Timeout:
        total = self.timeout if timeout is None else timeout
        return httpx.Timeout(total, connect=min(15.0, total))

    async def _send(
        self, request: httpx.Request, *, mode: Mode, model: str | None, what: str, stream: bool
    ) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            last = attempt >= self.max_retries
            started = time.monotonic()
            try:
                response = await self._transmit(request, stream=stream)
            except _NOT_SENT as exc:
                if last:
                    raise self._connection_error(exc, request, model) from None
                await self._pause(attempt, None, f"{_reason(exc)}", request)
                continue
            except _MAYBE_SENT as exc:
                if mode == "read" and not last:
                    await self._pause(attempt, None, _reason(exc), request)
                    continue
                raise self._maybe_sent_error(exc, mode, model, what, started) from None
            if response.status_code < 400:
                return response
            body = await response.aread()
            await response.aclose()
            error = error_from_response(
                response.status_code, response.headers, body, model=model, what=what
            )
            if not last and self._should_retry(mode, error):
                await self._pause(attempt, error.retry_after, f"HTTP {error.status_code}", request)
                continue
            if mode == "create" and _may_have_created(error):
                raise E.TaskMaybeCreatedError(
                    f"Creating the {model} video got HTTP {error.status_code}; the task may exist.",
                    model=model,
                ) from error
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _should_retry(mode: Mode, error: E.APIStatusError) -> bool:
        if is_retryable_status(error.status_code, error.code):
            return _RETRY_THROTTLES.get()
        if mode != "read" or isinstance(error, (E.ModelUnavailableError, E.BadRequestError)):
            return False
        return error.status_code >= 500 and error.status_code != 501

    async def _pause(
        self, attempt: int, retry_after: float | None, reason: str, request: httpx.Request
    ) -> None:
        if retry_after is not None:
            delay = min(retry_after, RETRY_AFTER_CAP)
        else:
            delay = min(BACKOFF_CAP, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
        log.debug(
            "retrying %s %s in %.2fs after %s (attempt %d of %d)",
            request.method, redact(str(request.url.copy_with(query=None))), delay, reason,
            attempt + 1, self.max_retries,
        )  # fmt: skip
        await self.sleep(delay)

    def _connection_error(
        self, exc: Exception, request: httpx.Request, model: str | None
    ) -> E.APIConnectionError:
        host = request.url.host
        cls = E.APITimeoutError if isinstance(exc, httpx.TimeoutException) else E.APIConnectionError
        return cls(
            f"Could not reach the gateway at {host} ({_reason(exc)}).",
            hint="Check your network and TOKENHOT_BASE_URL, then run it again.",
            model=model,
        )

    def _maybe_sent_error(
        self, exc: Exception, mode: Mode, model: str | None, what: str, started: float
    ) -> E.TokenhotError:
        waited = time.monotonic() - started
        if mode == "create":
            return E.TaskMaybeCreatedError(
                f"The connection failed after the {model} video request was sent "
                f"({_reason(exc)}); the task may exist.",
                model=model,
            )
        cls = E.APITimeoutError if isinstance(exc, httpx.TimeoutException) else E.APIConnectionError
        return cls(
            f"{what.capitalize()} for {model or 'the gateway'} got no complete answer after "
            f"{waited:.0f} s ({_reason(exc)}).",
            hint="It was not re-sent: it may already have run and been billed. Run it again.",
            model=model,
        )


@functools.lru_cache(maxsize=1024)
def _parsed(url: str) -> httpx.URL:
    """Gateway URLs repeat (a chat route, a task's poll): parsing each once saves CPU."""
    return httpx.URL(url)


@dataclass(frozen=True)
class Download:
    """A fetched file: its bytes (empty when it was over the limit) and its size."""

    data: bytes
    size: int
    cut: bool  # reading stopped at the limit: ``size`` is a lower bound


async def _read_upto(response: httpx.Response, limit: int) -> tuple[bytes, int]:
    """(body, size), stopping one chunk past ``limit`` (the body is then left out)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return b"", size
        chunks.append(chunk)
    return b"".join(chunks), size


# 5xx codes that prove the gateway refused before any task existed (spec §2.2, §10.10).
_NOTHING_CREATED = {
    "invalid_request", "invalid_json", "convert_request_failed", "fail_to_fetch_task",
    "model_not_found", "model_price_error", "api_not_implemented",
}  # fmt: skip


def _may_have_created(error: E.APIStatusError) -> bool:
    """Whether a failed video create may still have made (and billed) a task."""
    if error.status_code < 500 or error.status_code == 501:
        return False
    code = error.code or ""
    return code not in _NOTHING_CREATED and not code.startswith("system_")


def encode_json(body: Any, *, model: str | None = None) -> bytes:
    """``body`` as httpx would send it (compact UTF-8 JSON), or one clear InvalidInputError
    naming the value JSON cannot carry: NaN or Infinity, a lone surrogate, an object."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        raise _unsendable(body, model) from None


def set_if_given(body: Body, key: str, value: Any) -> None:
    """Set ``key`` when ``value`` was given: a body leaves out what the caller did not say."""
    if value is not None:
        body[key] = value


def form_fields(fields: Mapping[str, Any], *, model: str | None = None) -> dict[str, str]:
    """Multipart form values as text: strings as they are, everything else as JSON."""
    encode_json(dict(fields), model=model)  # the same check as for JSON bodies
    return {k: _form_value(v) for k, v in fields.items()}


def _form_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)  # True → "true", as form parsers expect


def _encode(kwargs: dict[str, Any], model: str | None) -> dict[str, str]:
    """Encode a ``json=`` body here (and check form fields), so every body passes one check."""
    if isinstance(kwargs.get("data"), Mapping):
        encode_json(dict(kwargs["data"]), model=model)
    if "json" not in kwargs:
        return {}
    kwargs["content"] = encode_json(kwargs.pop("json"), model=model)
    return {"Content-Type": "application/json"}


def _unsendable(body: Any, model: str | None) -> E.InvalidInputError:
    found = _find_unsendable(body, "", set())
    where, problem, hint = found or ("the body", "is not JSON", _FIX_TYPE)
    return E.InvalidInputError(
        f"The request{f' for {model}' if model else ''} cannot be sent: {where} {problem}.",
        hint=hint,
        model=model,
    )


def _find_unsendable(value: Any, path: str, open_: set[int]) -> tuple[str, str, str] | None:
    """(where, what is wrong, what to do) for the first value JSON cannot carry, or None."""
    where = path or "the body"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            surrogate = f"({value[exc.start]!r} at character {exc.start})"
            return where, f"has a lone surrogate {surrogate}, which is not Unicode", _FIX_TEXT
        return None
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, f"is {value!r}", _FIX_NUMBER)
    if not isinstance(value, (Mapping, list, tuple)):
        return where, f"is {_a(type(value).__name__)}, which is not a JSON value", _FIX_TYPE
    if id(value) in open_:
        return where, "contains itself", "Pass a copy without the loop."
    open_.add(id(value))
    try:
        return next(
            filter(None, (_find_unsendable(v, p, open_) for p, v in _items(value, path))), None
        )
    finally:
        open_.discard(id(value))


def _items(
    value: Mapping[Any, Any] | list[Any] | tuple[Any, ...], path: str
) -> Iterator[tuple[str, Any]]:
    """(path, value) of each key and item of a dict, or each item of a list."""
    if not isinstance(value, Mapping):
        yield from ((f"{path}[{i}]", item) for i, item in enumerate(value))
        return
    for key, item in value.items():
        yield f"a key of {path or 'the body'}", key
        yield (f"{path}.{key}" if path else str(key)), item


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


_FIX_NUMBER = "JSON has no NaN or Infinity: pass a finite number."
_FIX_TEXT = "Fix the text, e.g. text.encode('utf-8', 'replace').decode()."
_FIX_TYPE = "Pass text, numbers, True/False, None, lists and dicts (e.g. str(value))."


def _check_size(request: httpx.Request, model: str | None) -> None:
    """Refuse a body over the gateway's cap before sending it (it would only get a 413)."""
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_BODY_BYTES:
        raise E.InvalidInputError(
            f"The request{f' for {model}' if model else ''} is {size / 2**20:.0f} MB; the gateway "
            f"accepts at most {MAX_BODY_BYTES // 2**20} MB.",
            hint="Pass a URL instead of the file, or a smaller file.",
            model=model,
        )


def _reason(exc: Exception) -> str:
    text = redact(str(exc)) or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."


def json_body(response: httpx.Response, *, model: str | None, what: str) -> Any:
    """The JSON of a successful reply; HTML or malformed bodies raise clear errors."""
    content_type = response.headers.get("content-type", "")
    rid = response.headers.get("x-oneapi-request-id")
    if "html" in content_type:
        raise error_from_response(
            response.status_code, response.headers, response.content, model=model, what=what
        )
    try:
        return json.loads(response.content)
    except ValueError:
        raise E.ServerError(
            f"{what.capitalize()} for {model or 'the gateway'} got a malformed reply "
            f"(not JSON; HTTP {response.status_code}" + (f", request id {rid})." if rid else ")."),
            status_code=response.status_code,
            request_id=rid,
            model=model,
        ) from None
