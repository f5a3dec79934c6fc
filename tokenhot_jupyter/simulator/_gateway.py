"""The request pipeline: route match, auth, faults, model routing, handler (new-api order)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from ._auth import authenticate, check_balance
from ._channels import GEMINI, OPENAI, SORA, lookup, serves
from ._context import Ctx, Route
from ._errors import (
    anthropic_error,
    console_page,
    content_error,
    convert_failed,
    google_error,
    middleware_error,
    relay_error,
    task_error,
)
from ._faults import Fault, parse_fault
from ._http import Drop, HttpError, Reply, Request, Result, Stream, json_reply, parse_body
from ._limits import retry_after
from ._state import FileRecord, RecordedRequest, State, Stopped, is_control, redact_headers

log = logging.getLogger("tokenhot_jupyter.simulator")

_API_PREFIXES = ("/v1/", "/api/", "/assets/")
RATE_LIMIT_MESSAGE = "您已达到请求数限制：1分钟内最多请求60次"
SATURATED = "当前分组上游负载已饱和，请稍后再试"
KIND_PATHS = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "responses": "/v1/responses",
    "messages": "/v1/messages",
    "images": "/v1/images/generations",
    "edits": "/v1/images/edits",
    "speech": "/v1/audio/speech",
    "stt": "/v1/audio/transcriptions",
}


class Gateway:
    """Turns a parsed `Request` into a `Result`, the way new-api's middleware chain does."""

    def __init__(self, state: State, routes: Sequence[Route]) -> None:
        self.state = state
        self.routes = tuple(routes)

    def handle(self, req: Request) -> Result:
        """Answer one request (``req.request_id`` already set, body not yet parsed)."""
        parse_body(req)
        record = _record(req)
        if not is_control(req.path):
            req.record = record
            self.state.record(record)
        route = self._match(req)
        result = fallback(req) if route is None else self._run(Ctx(self.state, req, route, record))
        if not isinstance(result, Drop):
            record.status = result.status
        return result

    def _match(self, req: Request) -> Route | None:
        for route in self.routes:
            match = route.regex.match(req.path)
            if match and route.method in ("*", req.method):
                req.params = match.groupdict()
                return route
        return None

    def _run(self, ctx: Ctx) -> Result:
        try:
            if ctx.route.auth:
                ctx.token = authenticate(self.state, ctx.req)
            if ctx.route.billable and (limited := _rate_limited_by_bucket(ctx)) is not None:
                return limited
            ctx.fault = self._fault(ctx)
            early = _middleware_fault(ctx)
            if early is not None:
                return _after(ctx, early)
            if ctx.route.model:
                _distribute(ctx)
            if ctx.route.billable:
                check_balance(ctx.token, ctx.req, ctx.route.style == "C")
            _upstream_fault(ctx)
            result = ctx.route.handler(ctx)
        except HttpError as exc:
            result = exc.reply
        except (Stopped, ConnectionError):
            raise
        except Exception as exc:  # a simulator bug or an odd body: say so, as JSON
            log.exception("simulator handler failed for %s %s", ctx.req.method, ctx.req.path)
            message = f"simulator error: {type(exc).__name__}: {exc}"
            result = relay_error(500, message, ctx.rid, code="simulator_error").reply
        return _after(ctx, result)

    def _fault(self, ctx: Ctx) -> Fault:
        if is_control(ctx.req.path):
            return Fault()
        spec = ctx.req.header("x-sim-fault")
        try:
            header = parse_fault(spec) if spec else Fault()
        except ValueError as exc:
            raise middleware_error(400, f"bad X-Sim-Fault header: {exc}", ctx.rid) from None
        return header.merge(self.state.faults.take(ctx.req.method, ctx.req.path))


def _record(req: Request) -> RecordedRequest:
    query = {k: ["sk-***"] if k == "key" else v for k, v in req.query.items()}
    files = [FileRecord(f.name, f.filename, f.content_type, len(f.data)) for f in req.files]
    body = req.json if isinstance(req.json, dict) else None
    return RecordedRequest(
        req.method,
        req.path,
        query,
        redact_headers(req.headers),
        body,
        dict(req.form),
        files,
        req.request_id,
        in_flight=req.in_flight,
    )


def fallback(req: Request) -> Reply:
    """No route: 404 under the API prefixes, else the console page (§1.3)."""
    if req.path == "/v1" or req.path.startswith(_API_PREFIXES):
        error = {
            "message": f"Invalid URL ({req.method} {req.path})",
            "type": "invalid_request_error",
            "param": "",
            "code": "",
        }
        return json_reply({"error": error}, 404)
    return console_page()


def _distribute(ctx: Ctx) -> None:
    """Find the model and its channel, as middleware/distributor.go does."""
    req = ctx.req
    if ctx.route.model == "path":
        name = req.params.get("model", "")
    else:
        if req.json_error:
            raise _bad_body(ctx)
        name = str(ctx.fields.get("model") or "") or ctx.route.default_model
    if not name:
        raise middleware_error(400, "Model name not specified, model name cannot be empty", ctx.rid)
    found = lookup(name)
    if found is None:
        group = ctx.state.options.group
        message = f"No available channel for model {name} under group {group} (distributor)"
        raise middleware_error(503, message, ctx.rid, code="model_not_found")
    ctx.served, ctx.effort = found
    if ctx.route.kind and not serves(ctx.served, ctx.route.kind):
        raise unsupported(ctx)


def _bad_body(ctx: Ctx) -> HttpError:
    if ctx.route.style == "C":
        return task_error(400, "invalid_json", ctx.req.json_error)
    return ctx.invalid(ctx.req.json_error)


def unsupported(ctx: Ctx) -> HttpError:
    """The error a channel gives for an endpoint it cannot serve (§3.4, §8.3.5)."""
    served, kind, rid = ctx.model, ctx.route.kind, ctx.rid
    if served.channel.type == GEMINI.type and kind == "images":
        message = "not supported model for image generation, only imagen models are supported"
        return convert_failed(message, rid)
    if served.channel.type == GEMINI.type and kind == "chat":
        message = "Model does not support the requested response modalities: text"
        return google_error(400, message, rid)
    if served.channel.type in (OPENAI.type, SORA.type):
        message = f"The model `{served.id}` does not support {KIND_PATHS.get(kind, kind)}"
        return relay_error(
            400, message, rid, code="model_not_supported", type_="invalid_request_error"
        )
    return convert_failed("not implemented", rid)


def _middleware_fault(ctx: Ctx) -> Result | None:
    """Faults that strike before routing: delays, drops, HTML, 429 and 503."""
    fault = ctx.fault
    ctx.state.wait(fault.slow)
    if fault.drop:
        return Drop()
    if fault.html:
        return console_page()
    if fault.status == 429:
        return _rate_limited(ctx)
    if fault.status == 503:
        if fault.variant == "model":
            name = ctx.req.params.get("model") or ctx.fields.get("model") or "unknown"
            group = ctx.state.options.group
            message = f"No available channel for model {name} under group {group} (distributor)"
            raise middleware_error(503, message, ctx.rid, code="model_not_found")
        message = "系统 CPU 负载过高，请稍后再试 (system CPU overloaded)"
        raise middleware_error(503, message, ctx.rid, code="system_cpu_overloaded")
    return None


def _rate_limited_by_bucket(ctx: Ctx) -> Reply | None:
    """The per-user request limit (`Options.rate_limit`): 429 with an empty body when over."""
    options = ctx.state.options
    if not options.rate_limit:
        return None
    wait = ctx.state.limiter.take(ctx.token, ctx.now(), options.rate_limit, options.rate_burst)
    if wait <= 0:
        return None
    headers = {"Retry-After": retry_after(wait)} if options.rate_retry_after else {}
    return Reply(429, b"", "text/plain; charset=utf-8", headers)


def _rate_limited(ctx: Ctx) -> Reply:
    headers = {"Retry-After": ctx.fault.retry_after} if ctx.fault.retry_after else {}
    if ctx.fault.variant == "redis":
        reply = middleware_error(429, RATE_LIMIT_MESSAGE, ctx.rid).reply
        reply.headers.update(headers)
        return reply
    return Reply(429, b"", "text/plain; charset=utf-8", headers)


def _upstream_fault(ctx: Ctx) -> None:
    """Faults that strike after routing, as if the upstream failed."""
    fault, style = ctx.fault, ctx.route.style
    if fault.upstream_429:
        if style == "C":
            raise task_error(429, "fail_to_fetch_task", SATURATED)
        message = "Rate limit reached for requests"
        raise relay_error(429, message, ctx.rid, code="rate_limit_exceeded", type_="requests")
    if fault.status in (500, 502):
        raise _upstream_error(ctx, fault.status)


def _upstream_error(ctx: Ctx, status: int) -> HttpError:
    message = f"simulated upstream failure (status {status})"
    style = ctx.route.style
    if style == "B":
        return anthropic_error(status, message, ctx.rid, type_="api_error")
    if style == "C":
        body = json.dumps({"error": {"message": message, "type": "server_error"}})
        return task_error(status, "fail_to_fetch_task", body)
    if style == "D":
        return content_error(502, f"Upstream service returned status {status}")
    if style == "G":
        return google_error(status, message, ctx.rid)
    code = "bad_response_status_code" if status == 502 else None
    return relay_error(status, message, ctx.rid, code=code, type_="upstream_error")


def _after(ctx: Ctx, result: Result) -> Result:
    """Apply the reply-mangling faults: cut short, ended early, malformed."""
    fault = ctx.fault
    if isinstance(result, Stream):
        result.cut = result.cut or fault.drop_mid_stream
        result.malformed = result.malformed or fault.malformed
        result.end_early = result.end_early or fault.end_early
    elif isinstance(result, Reply):
        result.cut = result.cut or fault.drop_mid_stream
        if fault.malformed:
            body = result.body or b'{"error":{}}'
            result.status, result.body = 200, body[: max(1, len(body) // 2)]
            result.content_type = "application/json; charset=utf-8"
    return result
