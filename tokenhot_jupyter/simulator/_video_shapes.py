"""JSON shapes of a video task: raw upstream replies and the two poll DTOs (§10.6, §10.7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._video import (
    FAILURES,
    OPENAI_STATUS,
    WAN_STATUS,
    Snapshot,
    Task,
    _iso,
    snapshot,
)

DAY = 86400


def _seedance(task: Task, snap: Snapshot) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": task.upstream_id,
        "model": task.served.upstream_name,
        "status": snap.upstream_status,
        "created_at": int(task.created_at),
        "updated_at": snap.updated_at,
        "seed": 42,
        "resolution": task.extra.get("resolution", "720p"),
        "ratio": task.extra.get("ratio", "16:9"),
        "duration": task.seconds,
        "framespersecond": 24,
        "service_tier": "default",
    }
    if snap.phase == "success":
        tokens = 108900 * task.seconds // 5
        body.update(
            content={"video_url": snap.url},
            usage={"completion_tokens": tokens, "total_tokens": tokens},
        )
    if snap.phase == "fail":
        code, message = FAILURES["seedance"]
        body["error"] = {"code": code, "message": message}
    return body


def _sora(task: Task, snap: Snapshot) -> dict[str, Any]:
    done = snap.phase in ("success", "fail")
    error = None
    if snap.phase == "fail":
        code, message = FAILURES["sora"]
        error = {"code": code, "message": message}
    return {
        "id": task.upstream_id,
        "object": "video",
        "model": task.served.upstream_name,
        "status": snap.upstream_status or "queued",
        "progress": snap.progress,
        "created_at": int(task.created_at),
        "completed_at": snap.finish_time if done else None,
        "expires_at": snap.finish_time + DAY if done else None,
        "seconds": str(task.seconds),
        "size": task.size,
        "error": error,
        "remixed_from_video_id": task.remixed_from,
    }


def _hailuo(task: Task, snap: Snapshot) -> dict[str, Any]:
    base_resp = {"status_code": 0, "status_msg": "success"}
    if snap.phase == "fail":
        code, message = FAILURES["hailuo"]
        base_resp = {"status_code": int(code), "status_msg": message}
    width, height = (1920, 1080) if task.extra.get("resolution") == "1080P" else (1366, 768)
    return {
        "task_id": task.upstream_id,
        "status": snap.upstream_status,
        "file_id": f"{task.row}{task.upstream_id[-6:]}" if snap.phase == "success" else "",
        "video_width": width,
        "video_height": height,
        "base_resp": base_resp,
    }


def _wan(task: Task, snap: Snapshot) -> dict[str, Any]:
    output: dict[str, Any] = {
        "task_id": task.upstream_id,
        "task_status": snap.upstream_status,
        "submit_time": _iso(task.created_at),
        "orig_prompt": task.prompt,
    }
    if snap.start_time:
        output["scheduled_time"] = _iso(snap.start_time)
    if snap.finish_time:
        output["end_time"] = _iso(snap.finish_time)
    body: dict[str, Any] = {"request_id": task.extra.get("request_id", ""), "output": output}
    if snap.phase == "success":
        output["video_url"] = snap.url
        body["usage"] = {
            "video_duration": task.seconds,
            "video_count": 1,
            "video_ratio": task.extra.get("resolution", "720P"),
        }
    if snap.phase == "fail":
        output["code"], output["message"] = FAILURES["wan"]
    return body


RAW: dict[str, Callable[[Task, Snapshot], dict[str, Any]]] = {
    "seedance": _seedance,
    "sora": _sora,
    "hailuo": _hailuo,
    "wan": _wan,
}


def create_raw(task: Task) -> dict[str, Any]:
    """The upstream's reply to the create call (what ``data.data`` holds before a refresh)."""
    if task.family == "seedance":
        return {"id": task.upstream_id}
    if task.family == "hailuo":
        return {
            "task_id": task.upstream_id,
            "base_resp": {"status_code": 0, "status_msg": "success"},
        }
    if task.family == "wan":
        return {
            "request_id": task.extra.get("request_id", ""),
            "output": {"task_id": task.upstream_id, "task_status": "PENDING"},
        }
    return _sora(task, snapshot(task, task.created_at))


def raw(task: Task, snap: Snapshot) -> dict[str, Any]:
    """The latest raw upstream poll reply stored for the task."""
    return create_raw(task) if snap.phase == "not_start" else RAW[task.family](task, snap)


def create_reply(task: Task) -> dict[str, Any]:
    """The 200 reply to a create (§10.5); Sora adds its video object's fields."""
    body: dict[str, Any] = {
        "id": task.id,
        "task_id": task.id,
        "object": "video",
        "model": task.model,
        "status": "queued",
        "progress": 0,
        "created_at": int(task.created_at),
    }
    if task.family == "sora":
        body.update(
            seconds=str(task.seconds),
            size=task.size,
            completed_at=None,
            expires_at=None,
            error=None,
            remixed_from_video_id=task.remixed_from,
        )
    return body


def generic(task: Task, snap: Snapshot, group: str) -> dict[str, Any]:
    """``GET /v1/video/generations/{id}`` data: upper-case status, "NN%" progress (§10.6)."""
    created = int(task.created_at)
    data: dict[str, Any] = {
        "id": task.row,
        "task_id": task.id,
        "platform": str(task.served.channel.type),
        "user_id": 1,
        "group": group,
        "channel_id": task.served.channel.id,
        "quota": task.quota,
        "action": "remix" if task.remixed_from else "generate",
        "status": snap.status,
        "progress": f"{snap.progress}%",
        "fail_reason": snap.fail_reason,
        "submit_time": created,
        "start_time": snap.start_time,
        "finish_time": snap.finish_time,
        "created_at": created,
        "updated_at": snap.updated_at,
        "properties": {
            "input": "",
            "upstream_model_name": task.served.upstream_name,
            "origin_model_name": task.model,
        },
        "data": raw(task, snap),
    }
    result_url = snap.url or (snap.fail_reason if snap.status == "FAILURE" else "")
    if result_url:
        data["result_url"] = result_url
    return data


def openai(task: Task, snap: Snapshot) -> dict[str, Any]:
    """``GET /v1/videos/{id}``: lower-case status, integer progress, per-adaptor quirks (§10.7)."""
    upstream = raw(task, snap)
    if task.family == "sora":
        return {**upstream, "id": task.id}
    body: dict[str, Any] = {
        "id": task.id,
        "task_id": task.id,
        "object": "video",
        "model": task.served.upstream_name,
        "status": OPENAI_STATUS.get(snap.status, "unknown"),
        "progress": snap.progress,
        "created_at": int(task.created_at),
        "completed_at": snap.updated_at,
        "metadata": {"url": snap.url},
    }
    _QUIRKS[task.family](body, upstream, snap)
    return body


def _seedance_quirks(body: dict[str, Any], upstream: dict[str, Any], snap: Snapshot) -> None:
    if upstream.get("status") == "failed":
        body["error"] = dict(upstream["error"])


def _hailuo_quirks(body: dict[str, Any], upstream: dict[str, Any], snap: Snapshot) -> None:
    del body["task_id"]
    if snap.status == "FAILURE":
        body["metadata"]["url"] = snap.fail_reason
    base = upstream.get("base_resp") or {}
    if base.get("status_code"):
        body["error"] = {"code": str(base["status_code"]), "message": base.get("status_msg", "")}


def _wan_quirks(body: dict[str, Any], upstream: dict[str, Any], snap: Snapshot) -> None:
    output = upstream.get("output") or {}
    body["status"] = WAN_STATUS.get(str(output.get("task_status")), "unknown")
    body["metadata"]["url"] = output.get("video_url", "")
    if output.get("code"):
        body["error"] = {"code": output["code"], "message": output.get("message", "")}


_QUIRKS: dict[str, Callable[[dict[str, Any], dict[str, Any], Snapshot], None]] = {
    "seedance": _seedance_quirks,
    "hailuo": _hailuo_quirks,
    "wan": _wan_quirks,
}
