"""Video tasks: create bodies per family, one normaliser for both poll shapes, download.

Each family is a `VideoWire`: how it builds a create body, where its tasks are polled, and
the second body it may send when the first is refused with proof that nothing was made.

Creating a task costs money and the gateway takes no idempotency key, so the create
POST runs in ``create`` mode: it is re-sent only when the connection never opened.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from . import _exceptions as E
from ._catalog import Model
from ._config import DEFAULT_POLL_INTERVAL, FIRST_POLL_DELAY
from ._http import Body, Connection, json_body, set_if_given
from ._media import Media, load_inputs, load_media
from ._poll import Clock, poll
from ._types import VideoStatus, VideoTask

log = logging.getLogger("tokenhot_jupyter")

# Status words of both poll shapes (spec §10.6, §10.7) → our four.
STATUS: dict[str, VideoStatus] = {
    "NOT_START": "queued", "SUBMITTED": "queued", "QUEUED": "queued", "UNKNOWN": "queued",
    "unknown": "queued", "queued": "queued", "pending": "queued", "PENDING": "queued",
    "IN_PROGRESS": "running", "in_progress": "running", "RUNNING": "running", "running": "running",
    "processing": "running",
    "SUCCESS": "succeeded", "completed": "succeeded", "succeeded": "succeeded",
    "SUCCEEDED": "succeeded",
    "FAILURE": "failed", "failed": "failed", "FAILED": "failed", "cancelled": "failed",
    "CANCELED": "failed",
}  # fmt: skip
SORA_SIZES = {
    ("720p", "16:9"): "1280x720", ("720p", "9:16"): "720x1280",
    ("1024p", "16:9"): "1792x1024", ("1024p", "9:16"): "1024x1792",
}  # fmt: skip


@dataclass(kw_only=True)
class VideoCall:
    """A video request with its inputs resolved."""

    model: Model
    prompt: str
    duration: int | None
    resolution: str | None
    ratio: str | None
    images: list[Media]  # first frame, last frame, then references
    video: Media | None  # a reference video
    extra: Mapping[str, Any]

    @classmethod
    def of(
        cls,
        model: Model,
        prompt: str,
        *,
        duration: Any,
        resolution: Any,
        ratio: Any,
        image: Any,
        video: Any,
        params: Mapping[str, Any],
    ) -> VideoCall:
        """A call with its parameters checked against the catalog and its inputs loaded."""
        return cls(
            model=model,
            prompt=prompt,
            duration=_opt_int(model.check("duration", duration)),
            resolution=_opt_str(model.check("resolution", resolution)),
            ratio=_opt_str(model.check("ratio", ratio)),
            images=load_inputs(image),
            video=None if video is None else load_media(video, what="video"),
            extra=params,
        )

    def check(self) -> None:
        """Catch what the gateway would refuse, before anything is paid for."""
        if not self.prompt or not self.prompt.strip():
            raise E.InvalidInputError("A video needs a prompt.", model=self.model.id)
        if "image" in self.model.requires and not self.images:
            raise E.InvalidInputError(
                f"{self.model.id} needs a first-frame image: pass image=<path, URL or bytes> "
                "(--image in %%video).",
                model=self.model.id,
            )
        if "video" in self.model.requires and self.video is None:
            raise E.InvalidInputError(
                f"{self.model.id} needs a reference video: pass video=<URL or path> "
                "(--video in %%video).",
                model=self.model.id,
            )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# --- the families ----------------------------------------------------------------------------


def _seedance(call: VideoCall) -> Body:
    meta: Body = {}
    set_if_given(meta, "resolution", call.resolution)
    set_if_given(meta, "ratio", call.ratio)
    roles = ("first_frame", "last_frame")
    content = [
        _item("image_url", m, roles[i] if i < 2 else "reference_image")
        for i, m in enumerate(call.images)
    ]
    if call.video is not None:
        content.append(_item("video_url", call.video, "reference_video"))
    if content:
        meta["content"] = content  # role-tagged items; replaces plain `images` (spec §10.4.1)
    body: Body = {"model": call.model.id, "prompt": call.prompt, "metadata": meta}
    seconds = str(call.duration) if call.duration else None  # the adaptor reads a string
    set_if_given(body, "seconds", seconds)
    return body


def _item(kind: str, media: Media, role: str) -> Body:
    return {"type": kind, kind: {"url": media.as_url()}, "role": role}


def _sora(call: VideoCall) -> Body:
    body: Body = {"model": call.model.id, "prompt": call.prompt}
    set_if_given(body, "seconds", str(call.duration) if call.duration else None)
    if call.resolution or call.ratio:
        key = (call.resolution or "720p", call.ratio or "9:16")
        set_if_given(body, "size", SORA_SIZES.get(key))
    if call.images:
        body["input_reference"] = call.images[0].as_url()
    return body


def _hailuo(call: VideoCall) -> Body:
    meta: Body = {}
    if call.images:
        meta["first_frame_image"] = call.images[0].as_url()  # `images` is ignored by this adaptor
    if len(call.images) > 1:
        meta["last_frame_image"] = call.images[1].as_url()
    body: Body = {"model": call.model.id, "prompt": call.prompt, "metadata": meta}
    set_if_given(body, "duration", call.duration)
    set_if_given(body, "size", call.resolution)
    return body


def _happyhorse(call: VideoCall) -> Body:
    """Tokenhot's documented DashScope-native body (spec §10.4.4); see `happyhorse_fallback`."""
    inputs: Body = {"prompt": call.prompt}
    media = _happyhorse_media(call)
    if media:
        inputs["media"] = media
    params: Body = {"watermark": False}
    set_if_given(params, "resolution", call.resolution)
    if "no-duration" not in call.model.quirks:
        set_if_given(params, "duration", call.duration)
    if "no-ratio" not in call.model.quirks:
        set_if_given(params, "ratio", call.ratio)
    return {"model": call.model.id, "input": inputs, "parameters": params}


def _happyhorse_media(call: VideoCall) -> list[Body]:
    if "first-frame" in call.model.quirks:
        return [{"type": "first_frame", "url": m.as_url()} for m in call.images[:1]]
    media = [{"type": "reference_image", "url": m.as_url()} for m in call.images]
    if call.video is not None:
        media.insert(0, {"type": "video", "url": call.video.as_url()})
    return media


def happyhorse_fallback(body: Body) -> Body:
    """The upstream Wan-adaptor form: top-level prompt, vendor fields under metadata."""
    inputs, params = body.get("input") or {}, body.get("parameters") or {}
    fallback: Body = {"model": body["model"], "prompt": inputs.get("prompt", "")}
    set_if_given(fallback, "duration", params.get("duration"))
    fallback["metadata"] = {"input": inputs, "parameters": params}
    return fallback


def is_prompt_required(error: E.APIStatusError) -> bool:
    """The 400 that proves no task exists and the HappyHorse fallback may be sent."""
    return error.status_code == 400 and "prompt is required" in error.message


_GENERIC_POLL = "/v1/video/generations/{id}"  # the generic shape, which carries result URLs


@dataclass(frozen=True, kw_only=True)
class VideoWire:
    """How one video family creates and polls its tasks (created at the catalog's endpoint)."""

    build: Callable[[VideoCall], Body]
    poll: str = _GENERIC_POLL  # {id} is the task id
    fallback: Callable[[Body], Body] | None = None  # sent once after a 400 proving no task


VIDEO_WIRES: dict[str, VideoWire] = {
    "seedance": VideoWire(build=_seedance),
    "sora": VideoWire(build=_sora, poll="/v1/videos/{id}"),  # the OpenAI shape
    "hailuo": VideoWire(build=_hailuo),
    "happyhorse": VideoWire(build=_happyhorse, fallback=happyhorse_fallback),
}


def video_wire(model: Model) -> VideoWire:
    """The family wire of ``model``; a model of another kind cannot make video."""
    if model.family not in VIDEO_WIRES:
        raise E.InvalidInputError(
            f"{model.id} is a {model.kind} model; it cannot make video.",
            hint="Pick a video model (Client().models('video') lists them).",
            model=model.id,
        )
    return VIDEO_WIRES[model.family]


def build_body(call: VideoCall) -> Body:
    """The JSON create body in the model's family, the caller's extra fields merged in."""
    body = video_wire(call.model).build(call)
    _deep_update(body, dict(call.extra))
    return body


# --- reading tasks ---------------------------------------------------------------------------


def normalize(raw: Any, task_id: str, model: str) -> VideoTask:
    """A VideoTask from a create reply or either poll shape (the one place for this guess)."""
    if not isinstance(raw, Mapping):
        raise E.ServerError(
            f"The {model} task reply was not an object.", status_code=200, model=model
        )
    if isinstance(raw.get("data"), Mapping) and "code" in raw:  # generic shape, spec §10.6
        return _from_generic(raw["data"], task_id, model, raw)
    return _from_openai(raw, task_id, model)


def _from_generic(d: Mapping[str, Any], task_id: str, model: str, raw: Any) -> VideoTask:
    upstream = str(d.get("status") or "")
    status = STATUS.get(upstream, "queued")
    url = None
    if status == "succeeded":
        inner: Any = d.get("data") if isinstance(d.get("data"), Mapping) else {}
        url = (
            d.get("result_url")
            or _dig(inner, "content", "video_url")
            or _dig(inner, "output", "video_url")
        )
    error = (d.get("fail_reason") or "task failed") if status == "failed" else None
    props: Any = d.get("properties") if isinstance(d.get("properties"), Mapping) else {}
    name = props.get("origin_model_name") or model
    return VideoTask(
        id=task_id,
        model=str(name),
        status=status,
        progress=_progress(d.get("progress"), status),
        error=error,
        url=str(url) if url else None,
        created_at=_float(d.get("submit_time") or d.get("created_at")),
        upstream_status=upstream,
        raw=raw,
    )


def _from_openai(d: Mapping[str, Any], task_id: str, model: str) -> VideoTask:
    upstream = str(d.get("status") or "")
    status = STATUS.get(upstream, "queued")
    meta: Any = d.get("metadata") if isinstance(d.get("metadata"), Mapping) else {}
    url = (meta.get("url") or None) if status == "succeeded" else None
    error = None
    if status == "failed":
        err = d.get("error")
        error = str(
            err.get("message")
            if isinstance(err, Mapping)
            else err or meta.get("url") or "task failed"
        )
    return VideoTask(
        id=task_id,
        model=str(d.get("model") or model),
        status=status,
        progress=_progress(d.get("progress"), status),
        error=error,
        url=str(url) if url else None,
        created_at=_float(d.get("created_at")),
        upstream_status=upstream,
        raw=d,
    )


def _progress(value: Any, status: VideoStatus) -> int:
    if status in ("succeeded", "failed"):
        return 100
    try:
        return max(0, min(100, int(float(str(value or 0).rstrip("%")))))
    except ValueError:
        return 0


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _dig(d: Any, *keys: str) -> Any:
    for key in keys:
        d = d.get(key) if isinstance(d, Mapping) else None
    return d


def poll_path(model: Model, task_id: str) -> str:
    """Where the task is polled: in its family's shape (Sora's is OpenAI's), else the generic."""
    wire = VIDEO_WIRES.get(model.family)
    return (wire.poll if wire else _GENERIC_POLL).format(id=task_id)


# --- creating, waiting, downloading ------------------------------------------------------------


async def create(conn: Connection, call: VideoCall) -> VideoTask:
    """Create the task once; a family with a fallback body (HappyHorse) may send it after a
    400 that proves no task was made."""
    call.check()
    body, path = build_body(call), call.model.endpoint
    try:
        response = await _post(conn, call.model.id, path, body)
    except E.BadRequestError as exc:
        fallback = VIDEO_WIRES[call.model.family].fallback
        if fallback is None or not is_prompt_required(exc):
            raise
        response = await _post(conn, call.model.id, path, fallback(body))
    return created(response, call.model.id)


_TASK_ID = re.compile(r"\btask_[A-Za-z0-9]{16,64}\b")


def created(response: httpx.Response, model: str) -> VideoTask:
    """The new task from a 2xx create reply; an unreadable one is never a plain error.

    The gateway has already made (and billed) the task, so a malformed reply must not
    invite a second create: its id is dug out of the bytes, or TaskMaybeCreatedError says so.
    """
    try:
        raw = json_body(response, model=model, what="video request")
        task_id = str(raw.get("id") or raw.get("task_id") or "")
    except (E.TokenhotError, AttributeError):
        raw, task_id = None, ""
    if task_id and isinstance(raw, Mapping):
        return replace(normalize(raw, task_id, model), poll_after=poll_hint(response.headers))
    found = _TASK_ID.search(response.content.decode("utf-8", "replace"))
    if found:
        log.warning("unreadable create reply for %s; recovered task id %s", model, found.group(0))
        return VideoTask(id=found.group(0), model=model, status="queued", raw=response.text[:500])
    raise E.TaskMaybeCreatedError(
        f"The gateway accepted the {model} video request but its reply had no readable task id; "
        "the task may exist.",
        model=model,
    )


async def _post(conn: Connection, model: str, path: str, body: Body) -> Any:
    return await conn.request(
        "POST", path, mode="create", model=model, what="video request", json=body
    )


def check_task_id(task_id: str) -> None:
    """Refuse an empty task id before anything is asked."""
    if not task_id or not str(task_id).strip():
        raise E.InvalidInputError("A task id is needed (it looks like task_...).")


async def get(conn: Connection, model: Model, task_id: str) -> VideoTask:
    """Poll once."""
    try:
        response = await conn.request(
            "GET", poll_path(model, task_id), mode="read", model=model.id, what="video poll"
        )
    except E.AuthenticationError as exc:
        exc.hint = (
            "The gateway says this when the key's quota runs out, too; the task is kept: "
            "top up, then poll it again."
        )
        raise
    task = normalize(json_body(response, model=model.id, what="video poll"), task_id, model.id)
    return replace(task, poll_after=poll_hint(response.headers))


def poll_hint(headers: Mapping[str, str]) -> float | None:
    """Seconds until the next poll, when the server says (OpenAI's ``openai-poll-after-ms``)."""
    try:
        return max(0.0, float(headers["openai-poll-after-ms"]) / 1000)
    except (KeyError, ValueError):
        return None


OnUpdate = Callable[[VideoTask], Any]


async def wait(
    conn: Connection,
    model: Model,
    task_id: str,
    *,
    timeout: float,
    on_update: OnUpdate | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    first_delay: float = FIRST_POLL_DELAY,
) -> VideoTask:
    """Poll until the task ends or our own deadline passes (the task id is always kept)."""
    seen: list[VideoTask] = []

    async def look() -> VideoTask:
        task = await get(conn, model, task_id)
        if on_update is not None and seen[-1:] != [task]:
            result = on_update(task)
            if isinstance(result, Awaitable):
                await result
        seen[:] = [task]
        return task

    polled = await poll(
        look,
        interval=poll_interval,
        deadline=timeout,
        clock=Clock(sleep=conn.sleep),
        lead=(0.0, first_delay),  # at once (it may be old), then soon, then every interval
    )
    task = polled.task
    assert task is not None  # every look answers or raises
    if polled.ending != "done":
        raise E.TaskTimeoutError(
            f"The {model.id} task {task_id} is still {task.status} ({task.progress}%) after "
            f"{polled.elapsed:.0f} s.",
            task_id=task_id,
            model=model.id,
        )
    return task


async def download(conn: Connection, model: Model, task: VideoTask) -> bytes:
    """The MP4 bytes: the vendor URL first, then the gateway's ``/content`` route."""
    if task.status != "succeeded":
        raise E.VideoTaskError(
            f"The {model.id} task {task.id} is {task.status}; there is nothing to download yet.",
            task_id=task.id,
            model=model.id,
            hint="Wait for it with wait_video(id).",
        )
    failures = []
    for url in _sources(task):
        try:
            response = await conn.request("GET", url, mode="read", what="video download")
        except (E.APIStatusError, E.APIConnectionError) as exc:
            failures.append(exc)
            continue
        return response.content
    raise E.ResultUnavailableError(
        f"The {model.id} video {task.id} could not be downloaded ({failures[-1].message}).",
        task_id=task.id,
        model=model.id,
    )


def _sources(task: VideoTask) -> Sequence[str]:
    proxy = f"/v1/videos/{task.id}/content"
    if task.url and not task.url.endswith(proxy):
        return (task.url, proxy)
    return (proxy,)


def _deep_update(body: Body, extra: Body) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(body.get(key), dict):
            _deep_update(body[key], dict(value))
        else:
            body[key] = value
