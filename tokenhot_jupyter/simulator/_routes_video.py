"""Video task routes: create (both paths), both poll shapes, ``/content``, remix (§10)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import media
from ._channels import TASK_ADAPTORS
from ._context import Ctx
from ._errors import content_error, task_error
from ._http import HttpError, Reply, Result, dumps, json_reply
from ._state import StoredFile, random_string
from ._video import Task, snapshot
from ._video_shapes import create_reply, generic, openai

DAY = 86400.0
SORA_SIZES = {"sora-2": ("720x1280", "1280x720")}
SORA_PRO_SIZES = ("720x1280", "1280x720", "1792x1024", "1024x1792")
SEEDANCE_KEYS = frozenset(
    [
        "resolution",
        "ratio",
        "duration",
        "frames",
        "seed",
        "camera_fixed",
        "watermark",
        "generate_audio",
        "return_last_frame",
        "draft",
        "callback_url",
        "service_tier",
        "execution_expires_after",
        "tools",
        "priority",
        "safety_identifier",
    ]
)
_FORM_KEYS = frozenset(
    [
        "model",
        "prompt",
        "image",
        "images",
        "input_reference",
        "size",
        "duration",
        "seconds",
        "mode",
        "metadata",
    ]
)


@dataclass
class Submit:
    """A create body after the gateway's generic parsing (§10.3)."""

    prompt: str
    seconds: int | None  # the string field `seconds`
    duration: int | None  # the integer (or numeric string) field `duration`
    size: str
    images: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    documented: bool = False  # a HappyHorse DashScope-native body


REFRESH_SECONDS = 15.0  # the gateway refreshes each task every 15 s (spec §10.2)


def create(ctx: Ctx) -> Result:
    """``POST /v1/video/generations`` and ``POST /v1/videos``: both use the channel's adaptor."""
    served = ctx.model
    adaptor = TASK_ADAPTORS.get(served.channel.type)
    if adaptor is None:
        raise task_error(
            400, "invalid_api_platform", f"invalid api platform: {served.channel.type}"
        )
    if served.family != adaptor:
        upstream = {
            "error": {"message": f"invalid model: {served.id}", "type": "invalid_request_error"}
        }
        raise task_error(400, "fail_to_fetch_task", json.dumps(upstream))
    submit = parse_submit(ctx)
    body, seconds, size, extra = _BUILDERS[adaptor](ctx, submit)
    ctx.forward(body)
    task = _new_task(ctx, submit.prompt, seconds, size, extra)
    ratios = {"seconds": seconds, "size": 1.666667 if size in ("1792x1024", "1024x1792") else 1}
    return json_reply(
        create_reply(task), headers={"X-New-Api-Other-Ratios": dumps(ratios).decode()}
    )


def parse_submit(ctx: Ctx) -> Submit:
    """Generic create parsing and validation (envelope C errors)."""
    f = ctx.fields
    metadata = _metadata(ctx)
    seconds, duration = _seconds(f.get("seconds")), _duration(f.get("duration"))
    prompt, documented = str(f.get("prompt") or "").strip(), False
    native = f.get("input")
    documented_ok = ctx.state.options.happyhorse_documented_body and ctx.model.family == "wan"
    if not prompt and isinstance(native, dict) and documented_ok:
        prompt = str(native.get("prompt") or "").strip()
        documented = bool(prompt)
    if not prompt:
        raise task_error(400, "invalid_request", "prompt is required")
    for value in (seconds, duration):
        if value is not None and not 0 <= value <= 3600:
            raise task_error(400, "invalid_seconds", "seconds must be between 0 and 3600")
    images = _images(ctx)
    return Submit(prompt, seconds, duration, str(f.get("size") or ""), images, metadata, documented)


def _metadata(ctx: Ctx) -> dict[str, Any]:
    value = ctx.fields.get("metadata")
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except ValueError:
            raise task_error(400, "invalid_json", "metadata is not a JSON object") from None
    metadata = dict(value) if isinstance(value, dict) else {}
    if ctx.req.is_multipart:
        for key, values in ctx.req.form.items():
            if key not in _FORM_KEYS:
                metadata[key] = _number(values[-1])
    return metadata


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _seconds(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        message = (
            "json: cannot unmarshal number into Go struct field TaskSubmitReq.seconds "
            "of type string"
        )
        raise task_error(400, "invalid_json", message)
    try:
        return int(float(value))
    except ValueError:
        raise task_error(400, "invalid_seconds", f"invalid seconds: {value}") from None


def _duration(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise task_error(400, "invalid_json", "json: cannot unmarshal duration")
    try:
        return int(float(value))
    except ValueError:
        raise task_error(400, "invalid_json", f"invalid duration: {value}") from None


def _images(ctx: Ctx) -> list[str]:
    f = ctx.fields
    images = f.get("images") or []
    images = [str(i) for i in (images if isinstance(images, list) else [images])]
    if not images and f.get("image"):
        images = [str(f["image"])]
    reference = f.get("input_reference")
    if isinstance(reference, str) and reference and ctx.model.family in ("sora", "wan"):
        images = [reference]
    return images


# --- per-adaptor bodies -------------------------------------------------------------------

Built = tuple[dict[str, Any], int, str, dict[str, Any]]  # upstream body, seconds, size, extras


def _seedance(ctx: Ctx, s: Submit) -> Built:
    md = s.metadata
    seconds = s.seconds if s.seconds is not None else _int(md.get("duration"), 5)
    content: list[Any] = [{"type": "text", "text": s.prompt}]
    if isinstance(md.get("content"), list):
        content += [
            i for i in md["content"] if not (isinstance(i, dict) and i.get("type") == "text")
        ]
    else:
        content += [{"type": "image_url", "image_url": {"url": u}} for u in s.images]
    body = {
        "model": ctx.model.upstream_name,
        "content": content,
        **{k: md[k] for k in SEEDANCE_KEYS if k in md},
    }
    body.setdefault("duration", seconds)
    ratio = str(md.get("ratio") or "16:9")
    return body, seconds, ratio, {"resolution": md.get("resolution", "720p"), "ratio": ratio}


def _sora(ctx: Ctx, s: Submit) -> Built:
    size = s.size or "720x1280"
    allowed = SORA_SIZES.get(ctx.model.id, SORA_PRO_SIZES)
    if size not in allowed:
        raise task_error(400, "invalid_size", f"size {size} is not supported by {ctx.model.id}")
    seconds = s.seconds if s.seconds is not None else (s.duration or 4)
    body = {k: v for k, v in ctx.fields.items() if k != "model"}
    body.update(model=ctx.model.upstream_name, seconds=str(seconds), size=size)
    body.update({f.name: f"<file {f.filename}, {len(f.data)} bytes>" for f in ctx.req.files})
    return body, seconds, size, {}


def _hailuo(ctx: Ctx, s: Submit) -> Built:
    md = s.metadata
    seconds = _int(md.get("duration"), s.duration or 6)
    resolution = str(md.get("resolution") or _resolution(s.size) or "768P")
    if ctx.model.id.endswith("2.3-Fast") and not md.get("first_frame_image"):
        message = (
            f"hailuo api error: invalid params, first_frame_image is required for {ctx.model.id}"
        )
        raise task_error(400, "2013", message)
    body = {
        "model": ctx.model.upstream_name,
        "prompt": s.prompt,
        "prompt_optimizer": True,
        **md,
        "duration": seconds,
        "resolution": resolution,
    }
    return body, seconds, "16:9", {"resolution": resolution}


def _resolution(size: str) -> str:
    for needle, value in (("1080", "1080P"), ("768", "768P"), ("720", "720P"), ("512", "512P")):
        if needle in size:
            return value
    return ""


def _wan(ctx: Ctx, s: Submit) -> Built:
    f = ctx.fields
    if s.documented:
        params = f.get("parameters") if isinstance(f.get("parameters"), dict) else {}
        body: dict[str, Any] = {
            "model": ctx.model.upstream_name,
            "input": f["input"],
            "parameters": params,
        }
    else:
        params = {
            "prompt_extend": True,
            "watermark": False,
            "duration": s.duration if s.duration is not None else (s.seconds or 5),
        }
        if s.size:
            params["size" if "*" in s.size else "resolution"] = s.size
        first = {"img_url": s.images[0]} if s.images else {}
        body = _merge(
            {
                "model": ctx.model.upstream_name,
                "input": {"prompt": s.prompt, **first},
                "parameters": params,
            },
            s.metadata,
        )
    parameters = body.get("parameters") or {}
    seconds = _int(parameters.get("duration"), 5)
    extra = {
        "resolution": str(parameters.get("resolution") or "720P"),
        "request_id": str(uuid.uuid4()),
    }
    return body, seconds, str(parameters.get("ratio") or "16:9"), extra


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` unmarshalled onto ``base`` as Go does: objects merge, other values replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None and value != "" else default
    except (TypeError, ValueError):
        return default


_BUILDERS: dict[str, Callable[[Ctx, Submit], Built]] = {
    "seedance": _seedance,
    "sora": _sora,
    "hailuo": _hailuo,
    "wan": _wan,
}


# --- tasks --------------------------------------------------------------------------------

_UPSTREAM_IDS: dict[str, Callable[[], str]] = {
    "seedance": lambda: f"cgt-{secrets.randbelow(10**14):014d}-{random_string(5).lower()}",
    "sora": lambda: f"video_{secrets.token_hex(16)}",
    "hailuo": lambda: str(secrets.randbelow(10**15)),
    "wan": lambda: str(uuid.uuid4()),
}


def _new_task(
    ctx: Ctx,
    prompt: str,
    seconds: int,
    size: str,
    extra: dict[str, Any],
    remixed_from: str | None = None,
) -> Task:
    state, served = ctx.state, ctx.model
    task_id = "task_" + random_string(32)
    outcome = {"fail": "fail", "stuck": "stuck"}.get(ctx.fault.task, "success")
    task = Task(
        id=task_id,
        row=state.next_id(),
        token=ctx.token,
        model=str(ctx.fields.get("model") or served.id),
        served=served,
        family=served.family,
        prompt=prompt,
        seconds=seconds,
        size=size,
        created_at=ctx.now(),
        upstream_id=_UPSTREAM_IDS[served.family](),
        proxy_url=f"{state.base_url}/v1/videos/{task_id}/content",
        outcome=outcome,
        quota=max(1, seconds) * 50000,
        work=state.options.video_base + state.options.video_per_second * max(1, seconds),
        remixed_from=remixed_from,
        extra=extra,
    )
    if outcome == "success":
        task.file_url = _host_video(ctx, task)
    with state.lock:
        state.tasks[task_id] = task
    return task


def _host_video(ctx: Ctx, task: Task) -> str:
    ready = task.created_at + task.done_at
    expires = ready if ctx.fault.expire_url else ready + DAY
    width, height = _frame(task.size)
    prompt, seconds = task.prompt, float(max(1, task.seconds))
    stored = StoredFile(
        "video/mp4", lambda: media.mp4(prompt, seconds, width, height), ready, expires
    )
    return ctx.state.add_file(f"{secrets.token_urlsafe(18)}.mp4", stored)


def _frame(size: str) -> tuple[int, int]:
    """A small frame with the video's aspect ratio (long side 320 pixels)."""
    try:
        width, height = media.image_size(size or "16:9")
    except ValueError:
        width, height = 16, 9
    scale = 320 / max(width, height)
    return 2 * max(8, round(width * scale / 2)), 2 * max(8, round(height * scale / 2))


def _owned(ctx: Ctx, missing: HttpError) -> Task:
    with ctx.state.lock:
        task = ctx.state.tasks.get(ctx.req.params.get("task_id", ""))
    if task is None or task.token != ctx.token:
        raise missing
    return task


def _not_exist() -> HttpError:
    return task_error(400, "task_not_exist", "task_not_exist")


def poll_generic(ctx: Ctx) -> Result:
    """``GET /v1/video/generations/{id}``."""
    task = _owned(ctx, _not_exist())
    data = generic(task, snapshot(task, ctx.now()), ctx.state.options.group)
    return json_reply({"code": "success", "message": "", "data": data}, headers=_poll_hint(ctx))


def poll_openai(ctx: Ctx) -> Result:
    """``GET /v1/videos/{id}``."""
    task = _owned(ctx, _not_exist())
    return json_reply(openai(task, snapshot(task, ctx.now())), headers=_poll_hint(ctx))


def _poll_hint(ctx: Ctx) -> dict[str, str]:
    """When to poll again, in real milliseconds: one gateway refresh (15 simulated s).

    The real gateway sends no hint; this lets clients that honour OpenAI's
    ``openai-poll-after-ms`` keep pace with a fast simulated clock.  A manual clock
    (speed 0) never moves by itself, so it sends none.
    """
    speed = ctx.state.clock.speed
    if speed <= 0:
        return {}
    return {"openai-poll-after-ms": str(max(20, round(REFRESH_SECONDS * 1000 / speed)))}


def content(ctx: Ctx) -> Result:
    """``GET /v1/videos/{id}/content``: the bytes once SUCCESS; ``Range`` is ignored (§10.9)."""
    task = _owned(ctx, content_error(404, "Task not found"))
    snap = snapshot(task, ctx.now())
    if snap.status != "SUCCESS":
        raise content_error(400, f"Task is not completed yet, current status: {snap.status}")
    name = task.file_url.rsplit("/", 1)[-1]
    with ctx.state.lock:
        stored = ctx.state.files.get(name)
    if stored is None or ctx.now() >= stored.expires_at:
        raise content_error(502, "Upstream service returned status 403")
    headers = {"Cache-Control": "public, max-age=86400"}
    return Reply(200, stored.content(), "video/mp4", headers)


def remix(ctx: Ctx) -> Result:
    """``POST /v1/videos/{id}/remix`` (Sora only): a new task on the original's channel."""
    original = _owned(ctx, _not_exist())
    if original.family != "sora":
        raise task_error(400, "invalid_request", "remix is only supported for sora videos")
    prompt = str(ctx.fields.get("prompt") or "").strip()
    if not prompt:
        raise task_error(400, "invalid_request", "prompt is required")
    ctx.served = original.served
    task = _new_task(ctx, prompt, original.seconds, original.size, {}, remixed_from=original.id)
    return json_reply(create_reply(task), headers={"X-New-Api-Other-Ratios": '{"seconds":1}'})
