"""``/__sim__`` control routes (no key): faults, clock, request log, tokens, tasks."""

from __future__ import annotations

from typing import Any

from ._auth import split_key
from ._context import Ctx
from ._errors import middleware_error
from ._http import HttpError, Result, json_reply
from ._video import snapshot


def _body(ctx: Ctx) -> dict[str, Any]:
    if ctx.req.json_error and ctx.req.body.strip():
        raise HttpError(json_reply({"error": ctx.req.json_error}, 400))
    return ctx.fields


def status(ctx: Ctx) -> Result:
    """``GET /__sim__``: a summary of the simulator."""
    state = ctx.state
    return json_reply(
        {
            "base_url": state.base_url,
            "now": state.now(),
            "speed": state.clock.speed,
            "faults": state.faults.pending(),
            "tasks": len(state.tasks),
            "requests": len(state.requests),
            "in_flight": state.in_flight,
            "rate_limit": state.options.rate_limit,
        }
    )


def add_fault(ctx: Ctx) -> Result:
    """``POST /__sim__/faults`` ``{spec, path?, method?, times?}``."""
    body = _body(ctx)
    try:
        ctx.state.faults.add(
            str(body.get("spec") or ""),
            body.get("path"),
            body.get("method"),
            int(body.get("times", 1)),
        )
        if not body.get("spec"):
            raise ValueError("spec is required")
    except (TypeError, ValueError) as exc:
        return json_reply({"error": str(exc)}, 400)
    return json_reply({"ok": True, "pending": ctx.state.faults.pending()})


def list_faults(ctx: Ctx) -> Result:
    """``GET /__sim__/faults``."""
    return json_reply({"pending": ctx.state.faults.pending()})


def clear_faults(ctx: Ctx) -> Result:
    """``DELETE /__sim__/faults``."""
    ctx.state.faults.clear()
    return json_reply({"ok": True})


def clock(ctx: Ctx) -> Result:
    """``GET``/``POST /__sim__/clock`` ``{advance: seconds}``."""
    if ctx.req.method == "POST":
        try:
            ctx.state.clock.advance(float(_body(ctx).get("advance") or 0))
        except (TypeError, ValueError) as exc:
            return json_reply({"error": str(exc)}, 400)
    return json_reply({"now": ctx.state.now(), "speed": ctx.state.clock.speed})


def requests(ctx: Ctx) -> Result:
    """``GET /__sim__/requests`` (the log) and ``DELETE`` (clear it)."""
    with ctx.state.lock:
        if ctx.req.method == "DELETE":
            ctx.state.requests.clear()
        log = [r.as_dict() for r in ctx.state.requests]
    return json_reply({"requests": log})


def tokens(ctx: Ctx) -> Result:
    """``POST /__sim__/tokens`` ``{key, exhausted: true|false}``: switch a token's quota."""
    body = _body(ctx)
    token = split_key(str(body.get("key") or ""))[0]
    if not token:
        raise _bad("key is required", ctx)
    with ctx.state.lock:
        if body.get("exhausted", True):
            ctx.state.exhausted.add(token)
        else:
            ctx.state.exhausted.discard(token)
        exhausted = len(ctx.state.exhausted)
    return json_reply({"ok": True, "exhausted": exhausted})


def tasks(ctx: Ctx) -> Result:
    """``GET /__sim__/tasks``: every video task with its current status."""
    now = ctx.state.now()
    with ctx.state.lock:
        rows = list(ctx.state.tasks.values())
    out = [
        {
            "id": t.id,
            "model": t.model,
            "status": snapshot(t, now).status,
            "created_at": t.created_at,
            "done_at": t.created_at + t.done_at,
        }
        for t in rows
    ]
    return json_reply({"tasks": out})


def _bad(message: str, ctx: Ctx) -> HttpError:
    return middleware_error(400, message, ctx.rid)
