"""Video task cards as plain mime bundles: no networking, no IPython, no JavaScript.

A saved notebook must render on GitHub or nbviewer without a kernel, so every card is
``text/html`` plus a readable ``text/plain``, and a finished video points at its saved
file by a path relative to the notebook instead of embedding megabytes of base64.
Everything a user or model supplied is HTML-escaped; every string passes `redact`.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from .._redact import redact, redact_tree
from .._store._journal import compact, excerpt

if TYPE_CHECKING:
    from .._follow import Phase

Bundle = tuple[dict[str, str], dict[str, Any]]
META_KEY = "tokenhot"
# A prompt's "$5 and $6" is money: the classes MathJax 3 (JupyterLab 4, Notebook 7) and
# MathJax 2 (classic tools) skip, so a card or table is never typeset as maths.
NO_MATHS = "mathjax_ignore tex2jax_ignore"
_BOX = (
    "border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:2px 0;"
    "font-family:system-ui,sans-serif;font-size:13px;max-width:560px"
)
_MUTED = "color:#57606a"
_ICONS: dict[Phase, str] = {
    "polling": "◔", "downloading": "↓", "done": "✓", "failed": "✗",  # no emoji: fonts lack them
    "timeout": "◷", "stopped": "■", "error": "⚠",
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CardInfo:
    """What a card shows about one task (all plain data)."""

    task_id: str
    model: str
    prompt: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    status: str = "queued"  # the gateway's status: queued, running, succeeded, failed
    progress: int = 0
    elapsed: float = 0.0  # seconds from creation to the end (running: to the last change)
    created_at: float | None = None
    finished_at: float | None = None
    error: str | None = None  # the failure reason or the error that stopped polling
    warning: str | None = None  # something the user must know, e.g. the journal failed
    src: str | None = None  # the video file, relative to the notebook's folder
    file: str | None = None  # the video file as shown in text/plain
    replayed: str | None = None  # the cassette the task's answers came from
    live: bool = True  # rewritten in place (a notebook); False where each phase prints anew


def render(phase: Phase, info: CardInfo) -> Bundle:
    """The card for ``phase``."""
    return _RENDERERS[phase](info)


# How the rest of a task reaches the user: a notebook rewrites its card in place, a terminal
# prints each new phase (CardInfo.live).
_POLLING = {
    True: "Polling in the background; other cells can run meanwhile. If this card stops "
    "updating (after a kernel restart), run %tokenhot attach {task_id}",
    False: "Polling in the background; you can go on working, and the result prints here "
    "when it is ready. After a restart, %tokenhot attach {task_id} resumes it.",
}
FOLLOW_UP = {True: "its card will update", False: "its result prints when it is ready"}


def live_card(info: CardInfo) -> Bundle:
    """A task still running on the gateway: status, progress bar, start and last change.

    It states times instead of a ticking count, so that it changes (and is sent again) only
    when the task does; ``info.elapsed`` is when the last change came.
    """
    bar = (
        f'<progress value="{info.progress}" max="100" style="width:220px;vertical-align:middle">'
        f"{info.progress}%</progress> {info.progress}%"
    )
    when = _since(info)
    body = f"{bar} · {_esc(info.status)} · {_esc(when)}"
    note = _POLLING[info.live].format(task_id=info.task_id)
    plain = _plain(info, f"{info.status} {info.progress}%", note, when=when)
    return _bundle(info, "polling", body, note, plain)


def _since(info: CardInfo) -> str:
    if info.created_at is None:
        return format_elapsed(info.elapsed)
    started = time.strftime("%H:%M:%S", time.localtime(info.created_at))
    return f"started {started} · last change at {format_elapsed(info.elapsed)}"


def downloading_card(info: CardInfo) -> Bundle:
    """The task succeeded and its video is being saved."""
    note = "The video is ready; saving it to the output folder."
    return _bundle(info, "downloading", "downloading…", note, _plain(info, "downloading", note))


def video_card(info: CardInfo) -> Bundle:
    """The finished video, played from its saved file."""
    src = quote((info.src or info.file or "").replace("\\", "/"), safe="/")
    player = (
        f'<video controls preload="metadata" src="{_esc(src)}" '
        'style="max-width:100%;display:block">'
        f'<a href="{_esc(src)}">{_esc(info.src or "")}</a></video>'
    )
    note = f"Saved to {info.src or info.file} (made in {format_elapsed(info.elapsed)})."
    data, meta = _bundle(info, "done", player, note, _plain(info, "done", note))
    meta[META_KEY]["file"] = redact(info.src or info.file or "")
    return data, meta


def failed_card(info: CardInfo) -> Bundle:
    """The gateway reports that the task failed."""
    reason = info.error or "task failed"
    note = "Failed tasks are refunded; change the prompt or parameters and run it again."
    return _bundle(
        info, "failed", f"failed: {_esc(reason)}", note, _plain(info, "failed", reason, note)
    )


def timeout_card(info: CardInfo) -> Bundle:
    """Our own deadline passed while the task was still pending."""
    status = f"still {info.status} ({info.progress}%) after {format_elapsed(info.elapsed)}"
    note = (
        "Stopped waiting; the task may still finish. "
        f"%tokenhot attach {info.task_id} resumes polling."
    )
    return _bundle(info, "timeout", _esc(status), note, _plain(info, status, note))


def stopped_card(info: CardInfo) -> Bundle:
    """Polling was stopped here; the gateway has no cancel route."""
    note = (
        "Polling stopped; the task may still finish and be billed; "
        f"%tokenhot attach {info.task_id} resumes."
    )
    status = f"stopped at {info.status} ({info.progress}%)"
    return _bundle(info, "stopped", _esc(status), note, _plain(info, status, note))


def error_card(info: CardInfo) -> Bundle:
    """Something stopped polling or saving (expired URL, key out of quota, ...)."""
    reason = info.error or "unknown error"
    note = f"%tokenhot attach {info.task_id} tries again."
    return _bundle(info, "error", _esc(reason), note, _plain(info, reason, note))


_RENDERERS: dict[Phase, Callable[[CardInfo], Bundle]] = {
    "polling": live_card,
    "downloading": downloading_card,
    "done": video_card,
    "failed": failed_card,
    "timeout": timeout_card,
    "stopped": stopped_card,
    "error": error_card,
}


def metadata(info: CardInfo, phase: Phase) -> dict[str, Any]:
    """Provenance for the output: model, parameters, task id, status, timings (never the key)."""
    fields: dict[str, Any] = {
        "task_id": info.task_id,
        "model": info.model,
        "params": compact(info.params),  # a data-URL input must not bloat the notebook
        "status": info.status,
        "phase": phase,
        "progress": info.progress,
        "created_at": info.created_at,
        "finished_at": info.finished_at,
        "elapsed_s": round(info.elapsed, 1),
    }
    if info.error:
        fields["error"] = info.error
    if info.replayed:
        fields |= {"replayed": True, "cassette": info.replayed}
    return {META_KEY: redact_tree(fields)}


def _bundle(info: CardInfo, phase: Phase, body: str, note: str, plain: str) -> Bundle:
    head = (
        f"<b>{_ICONS[phase]} {_esc(info.model)}</b> "
        f'<code style="{_MUTED}">{_esc(info.task_id)}</code>'
    ) + (f' <span style="{_MUTED}">· replayed</span>' if info.replayed else "")
    parts = [head, f"<div>{body}</div>"]
    if info.prompt:
        parts.append(f'<div style="{_MUTED}">{_esc(excerpt(info.prompt))}</div>')
    parts.append(f'<div style="{_MUTED}">{_esc(note)}</div>')
    if info.warning:
        parts.append(f'<div style="color:#9a6700">⚠ {_esc(info.warning)}</div>')
    markup = f'<div class="tokenhot-video {NO_MATHS}" style="{_BOX}">{"".join(parts)}</div>'
    text = plain + (f"\n⚠ {info.warning}" if info.warning else "")
    return {"text/plain": redact(text), "text/html": redact(markup)}, metadata(info, phase)


def _plain(info: CardInfo, status: str, *notes: str, when: str | None = None) -> str:
    when = format_elapsed(info.elapsed) if when is None else when
    mark = " · replayed" if info.replayed else ""
    lines = [f"{info.model} video {info.task_id}: {status} ({when}){mark}"]
    if info.prompt:
        lines.append(f"  prompt: {excerpt(info.prompt)}")
    lines.extend(f"  {note}" for note in notes)
    return "\n".join(lines)


def _esc(text: str) -> str:
    return html.escape(redact(str(text)), quote=True)


def format_elapsed(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# --- the task list -----------------------------------------------------------------------------

TaskStatus = Literal[
    "creating", "unknown", "queued", "running", "downloading", "done", "failed", "timeout",
    "stopped", "error",
]  # fmt: skip
TASK_EXCERPT = 60
_TASK_HEADERS = ("Task", "Model", "Status", "%", "Created", "Prompt", "Note")
_NOWRAP = "white-space:nowrap"
_TASK_COLUMNS = (  # ids, names and words never break; prose wraps at spaces, within a width
    _NOWRAP, _NOWRAP, _NOWRAP, f"{_NOWRAP};text-align:right", _NOWRAP,
    "min-width:18em;max-width:32em", "max-width:24em",
)  # fmt: skip
_TD = "text-align:left;vertical-align:top;padding:2px 8px"
_TASKS_HINT = (
    "%tokenhot attach ID shows a task again and resumes polling it; %tokenhot cancel ID stops "
    "polling it."
)


@dataclass(frozen=True, kw_only=True)
class TaskLine:
    """One task as the task table and the monitor show it (plain data)."""

    task_id: str
    model: str
    prompt: str
    status: TaskStatus
    progress: int | None  # None while no task exists to report one
    created_at: float
    elapsed: float
    note: str = ""  # why it stopped, what failed, or what is unknown
    active: bool = False  # polled here: the elapsed time ticks, cancel works
    attachable: bool = False  # `attach` would poll or download it
    file: str | None = None  # the saved video, when it is on disk

    @property
    def label(self) -> str:
        """The status word, and whether this kernel follows a pending task."""
        pending = self.status in ("queued", "running")
        return f"{self.status} (not polled here)" if pending and not self.active else self.status


def tasks_table(
    lines: Sequence[TaskLine], *, now: float | None = None, problem: str = ""
) -> dict[str, str]:
    """``%tokenhot tasks``: an inert HTML table (every cell escaped) and its plain-text twin."""
    warning = f"⚠ {problem}" if problem else ""
    if not lines:
        text = "\n".join(t for t in (warning, "No video tasks yet.") if t)
        return {"text/plain": redact(text), "text/html": f"<p>{_esc(text)}</p>"}
    now = time.time() if now is None else now
    cells = [_task_cells(line, now) for line in lines]
    plain = [warning] * bool(warning) + [_plain_tasks(cells), _TASKS_HINT]
    markup = (
        (f'<p style="color:#9a6700">{_esc(warning)}</p>' if warning else "")
        + _html_tasks(cells)
        + f'<p style="{_MUTED}">{_esc(_TASKS_HINT)}</p>'
    )
    wrapper = f'<div class="tokenhot-tasks {NO_MATHS}">'
    return {"text/plain": redact("\n".join(plain)), "text/html": f"{wrapper}{markup}</div>"}


def _task_cells(line: TaskLine, now: float) -> tuple[str, ...]:
    progress = "–" if line.progress is None else str(line.progress)
    when = _when(line.created_at, now)
    prompt = excerpt(line.prompt, TASK_EXCERPT)
    return (line.task_id, line.model, line.label, progress, when, prompt, line.note)


def _html_tasks(cells: list[tuple[str, ...]]) -> str:
    def row(tag: str, values: Sequence[str]) -> str:
        items = (
            f'<{tag} style="{_TD};{style}">{_esc(value)}</{tag}>'
            for value, style in zip(values, _TASK_COLUMNS, strict=True)
        )
        return f"<tr>{''.join(items)}</tr>"

    body = "".join(row("td", c) for c in cells)
    return (  # JupyterLab's stylesheet centres tables with a fixed layout: undo both here
        '<table style="border-collapse:collapse;font-size:13px;table-layout:auto;margin:0">'
        f"<thead>{row('th', _TASK_HEADERS)}</thead><tbody>{body}</tbody></table>"
    )


def _plain_tasks(cells: list[tuple[str, ...]]) -> str:
    """Aligned columns up to the prompt; a note goes on its own indented line."""
    table = [_TASK_HEADERS[:-1], *(c[:-1] for c in cells)]
    widths = [max(len(c[i]) for c in table) for i in range(len(table[0]) - 1)]
    out = []
    for index, row in enumerate(table):
        aligned = (v.ljust(w) for v, w in zip(row[:-1], widths, strict=True))
        out.append("  ".join(aligned) + "  " + row[-1])
        note = cells[index - 1][-1] if index else ""
        if note:
            out.append(f"    ↳ {excerpt(note)}")
    return "\n".join(line.rstrip() for line in out)


def _when(stamp: float, now: float) -> str:
    if now - stamp < 24 * 3600:
        return time.strftime("%H:%M", time.localtime(stamp))
    return time.strftime("%Y-%m-%d", time.localtime(stamp))
