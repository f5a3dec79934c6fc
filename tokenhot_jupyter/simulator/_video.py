"""Simulated video tasks: the status ladder over simulated time and the two poll shapes.

A task's state is a pure function of the simulated clock (spec §10.2, §10.8): ``NOT_START``
until the gateway's first 15 s refresh, then the family's upstream ladder, refreshed every
15 s, ``SUCCESS``/``FAILURE`` at the first refresh after ``60 s + 6 s × video seconds``,
and the 1440-minute sweep for tasks that never finish.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ._channels import Served

REFRESH = 15.0
SWEEP = 1440 * 60.0
TIMEOUT_REASON = "任务超时（1440分钟）"

# family → phase → (upstream status, stored status, progress %); §10.8.
LADDERS: dict[str, dict[str, tuple[str, str, int]]] = {
    "seedance": {
        "queued": ("queued", "QUEUED", 10), "running": ("running", "IN_PROGRESS", 50),
        "stuck": ("cancelled", "IN_PROGRESS", 30), "success": ("succeeded", "SUCCESS", 100),
        "fail": ("failed", "FAILURE", 100),
    },
    "sora": {  # in-progress percentages come from the upstream (see `snapshot`)
        "queued": ("queued", "QUEUED", 20), "running": ("in_progress", "IN_PROGRESS", 0),
        "stuck": ("in_progress", "IN_PROGRESS", 0), "success": ("completed", "SUCCESS", 100),
        "fail": ("failed", "FAILURE", 100),
    },
    "hailuo": {  # never QUEUED
        "queued": ("Queueing", "IN_PROGRESS", 30), "running": ("Processing", "IN_PROGRESS", 50),
        "stuck": ("Unknown", "IN_PROGRESS", 30), "success": ("Success", "SUCCESS", 100),
        "fail": ("Fail", "FAILURE", 100),
    },
    "wan": {
        "queued": ("PENDING", "QUEUED", 20), "running": ("RUNNING", "IN_PROGRESS", 30),
        "stuck": ("SUSPENDED", "QUEUED", 20), "success": ("SUCCEEDED", "SUCCESS", 100),
        "fail": ("FAILED", "FAILURE", 100),
    },
}  # fmt: skip
FAILURES = {
    "seedance": (
        "OutputVideoSensitiveContentDetected",
        "The request failed because the output video may contain sensitive information.",
    ),
    "sora": ("moderation_blocked", "Your request was blocked by our moderation system."),
    "hailuo": ("1026", "input new_sensitive"),
    "wan": ("DataInspectionFailed", "Output data may contain inappropriate content."),
}  # fmt: skip
OPENAI_STATUS = {"QUEUED": "queued", "SUBMITTED": "queued", "IN_PROGRESS": "in_progress",
                 "SUCCESS": "completed", "FAILURE": "failed"}  # fmt: skip
WAN_STATUS = {"PENDING": "queued", "RUNNING": "in_progress", "SUCCEEDED": "completed",
              "FAILED": "failed", "CANCELED": "failed", "UNKNOWN": "failed"}  # fmt: skip


@dataclass
class Task:
    """One video task row."""

    id: str
    row: int
    token: str
    model: str  # as requested
    served: Served
    family: str  # seedance | sora | hailuo | wan
    prompt: str
    seconds: int
    size: str
    created_at: float
    upstream_id: str
    proxy_url: str  # {base}/v1/videos/{id}/content
    file_url: str = ""  # where the finished video is hosted ("" unless it will succeed)
    outcome: str = "success"  # success | fail | stuck
    quota: int = 0
    remixed_from: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    work: float = 90.0  # simulated seconds the upstream needs (see `Options.video_base`)

    @property
    def done_at(self) -> float:
        """Seconds after creation when the gateway first sees the task finished."""
        return math.ceil(self.work / REFRESH) * REFRESH


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """The stored row at one moment."""

    phase: str  # not_start | queued | running | stuck | success | fail | timeout
    status: str
    progress: int
    upstream_status: str
    updated_at: int
    start_time: int = 0
    finish_time: int = 0
    fail_reason: str = ""
    url: str = ""  # the result URL once SUCCESS


def snapshot(task: Task, now: float) -> Snapshot:
    """The task as the gateway's stored row shows it at simulated time ``now``."""
    elapsed = now - task.created_at
    created = int(task.created_at)
    if elapsed < REFRESH:
        return Snapshot(
            phase="not_start",
            status="NOT_START",
            progress=0,
            upstream_status="",
            updated_at=created,
        )
    tick = math.floor(elapsed / REFRESH) * REFRESH
    if task.outcome != "stuck" and tick >= task.done_at:
        return _finished(task, task.outcome)
    if tick >= SWEEP:
        upstream, _, _ = LADDERS[task.family]["stuck" if task.outcome == "stuck" else "running"]
        finish = created + int(SWEEP)
        return Snapshot(
            phase="timeout",
            status="FAILURE",
            progress=100,
            upstream_status=upstream,
            updated_at=finish,
            start_time=_start(task),
            finish_time=finish,
            fail_reason=TIMEOUT_REASON,
        )
    phase = (
        "stuck" if task.outcome == "stuck" else ("queued" if tick < _queue_end(task) else "running")
    )
    upstream, status, progress = LADDERS[task.family][phase]
    if task.family == "sora" and status == "IN_PROGRESS":
        progress = min(99, max(1, int(100 * tick / task.work)))
    start = _start(task) if phase != "queued" else 0
    return Snapshot(
        phase=phase,
        status=status,
        progress=progress,
        upstream_status=upstream,
        updated_at=created + int(tick),
        start_time=start,
    )


def _queue_end(task: Task) -> float:
    return max(REFRESH * 2, math.floor(0.3 * task.work / REFRESH) * REFRESH)


def _start(task: Task) -> int:
    first = REFRESH if task.outcome == "stuck" else _queue_end(task)
    return int(task.created_at + first)


def _finished(task: Task, outcome: str) -> Snapshot:
    upstream, status, _ = LADDERS[task.family][outcome]
    finish = int(task.created_at + task.done_at)
    reason = fail_reason(task) if outcome == "fail" else ""
    url = (
        (task.proxy_url if task.family == "sora" else task.file_url) if outcome == "success" else ""
    )
    return Snapshot(
        phase=outcome,
        status=status,
        progress=100,
        upstream_status=upstream,
        updated_at=finish,
        start_time=_start(task),
        finish_time=finish,
        fail_reason=reason,
        url=url,
    )


def fail_reason(task: Task) -> str:
    """The ``fail_reason`` each adaptor derives from its upstream's failure (§10.8)."""
    code, message = FAILURES[task.family]
    if task.family == "wan":
        return f"task failed, code: {code} , message: {message}"
    return message


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+08:00", time.gmtime(epoch + 8 * 3600))
