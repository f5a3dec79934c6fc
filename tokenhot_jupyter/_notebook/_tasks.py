"""Video tasks that outlive the cell: create once, journal at once, show a live card.

Following a task (polling, journalling, saving) is `_follow`'s, shared with the server
extension; this module adds what a kernel shows and does: creating a task exactly once,
its card, waiting for it, cancelling, and the task table.  A card shown by
`Tracked.display` is a `_display.Shown` output: updates published from the loop thread
land in the cell that showed the card.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from .. import _exceptions as E
from .._cassette import current as current_seen
from .._client import Client
from .._config import DEFAULT_POLL_INTERVAL, DEFAULT_VIDEO_DEADLINE, FIRST_POLL_DELAY
from .._follow import ACTIVE, Followed, Follower, Phase, Snapshot
from .._poll import REAL_CLOCK, Clock
from .._redact import redact
from .._runtime import runtime
from .._store._journal import (
    CREATING,
    IN_FLIGHT,
    MAYBE,
    STOPPED,
    Journal,
    TaskRow,
    fingerprint,
    safe_url,
)
from .._store._leases import Keeper
from .._types import VideoTask
from . import _display as D
from ._cards import FOLLOW_UP, Bundle, CardInfo, TaskLine, TaskStatus, render, tasks_table

log = logging.getLogger("tokenhot_jupyter")
Callback = Callable[["Tracked"], object]
STALE_CREATE = 900.0  # a create waits one request timeout at most; an older marker lost its reply
MIN_UPDATE_INTERVAL = 1.0  # seconds between in-place card updates that only move the bar


class WaitInterrupted(KeyboardInterrupt):
    """Ctrl-C / interrupt during ``--wait``; the task keeps polling in the background."""

    def __init__(self, task_id: str, *, shown: bool = True, live: bool = True) -> None:
        self.task_id = task_id
        super().__init__(
            f"Stopped waiting; {task_id} is still polling in the background and "
            f"{FOLLOW_UP[live]}. %tokenhot attach {task_id} shows it again."
            if shown
            else f"Interrupted; the task {task_id} was created and is polling in the "
            f"background. %tokenhot attach {task_id} shows it."
        )

    def _render_traceback_(self) -> list[str]:
        """One line instead of a traceback."""
        return [f"KeyboardInterrupt: {self}"]


class _View:
    """One card on screen (its output knows its cell) and what it last showed."""

    def __init__(self, output: D.Shown, live: bool) -> None:
        self.output = output
        self.display_id = output.display_id
        self.live = live  # False in terminal IPython, where every update prints anew
        self.last_data: dict[str, str] | None = None
        self.last_phase: Phase | None = None
        self.last_time = 0.0

    def due(self, data: dict[str, str], phase: Phase, min_interval: float) -> bool:
        """Whether this change is worth a message (phase changes always are)."""
        if phase != self.last_phase:
            return True
        if not self.live or data == self.last_data:
            return False
        return time.monotonic() - self.last_time >= min_interval

    def send(self, bundle: Bundle, phase: Phase, *, update: bool) -> None:
        """Publish the card; updates land in the cell that showed it (see `D.Shown`)."""
        data, metadata = bundle
        (self.output.update if update else self.output.show)(data, metadata)
        self.last_data, self.last_phase, self.last_time = data, phase, time.monotonic()


class Tracked(Followed):
    """One video task followed by this kernel: its latest state, its cards, its file."""

    _manager: TaskManager

    def __init__(
        self,
        manager: TaskManager,
        row: TaskRow,
        client: Client,
        snapshot: Snapshot,
        journal_warning: str | None = None,
    ) -> None:
        self._views: list[_View] = []
        self._drawn: tuple[Snapshot, str | None] | None = None  # what the cards last showed
        super().__init__(manager, row, client, snapshot, journal_warning)
        self._seen = current_seen()  # the magic's record; its pollers note replays into it

    def card(self) -> Bundle:
        """The card for the current state: (mime bundle, metadata)."""
        return render(self._snapshot.phase, self.info())

    def info(self) -> CardInfo:
        """What the card shows, as plain data."""
        snap = self._snapshot
        # A running task's card states when it last changed, not a ticking "now", so that
        # a poll that finds nothing new has nothing to send.
        end = snap.finished_at or snap.changed_at or self.created_at
        src = _relative(snap.file)
        notes = (self.journal_warning, snap.warning, _unreachable(src, self.task_id))
        warning = "; ".join(w for w in notes if w) or None
        return CardInfo(
            task_id=self.task_id,
            model=self.model,
            prompt=self.prompt,
            params=self.params,
            status=snap.task.status,
            progress=snap.task.progress,
            elapsed=max(0.0, end - self.created_at),
            created_at=self.created_at,
            finished_at=snap.finished_at,
            error=snap.error,
            warning=warning,
            src=src,
            file=str(snap.file) if snap.file else None,
            replayed=self._seen.cassette if self._seen else None,
            live=D.screen_here().rich,
        )

    def display(self) -> str:
        """Show the card in the current cell and keep it updated there; returns its display id."""
        screen = D.screen_here()
        display_id = f"tokenhot-{self.task_id}-{secrets.token_hex(4)}"
        view = _View(D.Shown(screen, display_id), screen.rich)
        with self._lock:  # no update may slip between rendering and registering
            view.send(self.card(), self.phase, update=False)
            self._views.append(view)
        return view.display_id

    def wait(self, timeout: float | None = None) -> Phase:
        """Block until the task is done here (or ``timeout``); Ctrl-C leaves it polling."""
        end = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._finished.wait(0.1):  # short slices keep Ctrl-C prompt everywhere
                if end is not None and time.monotonic() >= end:
                    break
        except KeyboardInterrupt:
            raise WaitInterrupted(self.task_id, live=D.screen_here().rich) from None
        return self.phase

    def raise_for_status(self) -> None:
        """Raise the matching VideoTaskError unless the task is running or done."""
        snap = self._snapshot
        if snap.phase in ("polling", "downloading", "done"):
            return
        if snap.exception is not None:
            raise snap.exception
        what = f"The {self.model} task {self.task_id}"
        if snap.phase == "failed":
            raise E.TaskFailedError(
                f"{what} failed: {snap.error}.", task_id=self.task_id, model=self.model
            )
        if snap.phase == "timeout":
            raise E.TaskTimeoutError(
                f"{what} is still {snap.task.status} ({snap.task.progress}%) after our deadline.",
                task_id=self.task_id,
                model=self.model,
            )
        raise E.VideoTaskError(
            f"{what}: {snap.error or 'polling was stopped here'}.",
            task_id=self.task_id,
            model=self.model,
            hint=f"It may still finish (and be billed); %tokenhot attach {self.task_id} resumes.",
        )

    # --- driven by the manager, on the runtime loop -------------------------------------------

    def _changed(self, snap: Snapshot) -> None:
        """Redraw the cards (called under the lock with each new snapshot)."""
        drawn = (snap, self.journal_warning)
        if drawn == self._drawn:  # a poll that found nothing new has nothing to draw
            return
        bundle = render(snap.phase, self.info())
        self._drawn = drawn
        for view in self._views:
            if not view.due(bundle[0], snap.phase, self._manager.min_update_interval):
                self._drawn = None  # held back: the next poll draws it again
                continue
            try:
                view.send(bundle, snap.phase, update=True)
            except Exception:  # a closed kernel socket must not stop polling
                log.debug("card update for %s failed", self.task_id, exc_info=True)


Source = Tracked | TaskRow  # followed here, or only known from the journal
Sources = list[Source]  # named, because `TaskManager.list` shadows the builtin in its class body


def _relative(path: Path | None) -> str | None:
    """``path`` relative to the notebook's folder (the kernel's cwd), with forward slashes."""
    if path is None:
        return None
    try:
        return Path(os.path.relpath(path, Path.cwd())).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


def _unreachable(src: str | None, task_id: str) -> str | None:
    """Why the player may not load ``src``: a file outside the notebook's folder."""
    if src is None or not (src.startswith("../") or Path(src).is_absolute()):
        return None
    return (
        "The video is saved outside the notebook's folder, where its player may not reach it; "
        "set %config Tokenhot.output_dir to a folder inside it, then run "
        f"%tokenhot attach {task_id}."
    )


class TaskManager(Follower[Tracked]):
    """Creates, journals, polls and shows video tasks for one kernel."""

    def __init__(
        self,
        client_factory: Callable[[], Client],
        journal: Journal,
        output_dir: Callable[[], Path],
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deadline: float = DEFAULT_VIDEO_DEADLINE,
        leases: Keeper | None = None,
        notebook: Callable[[], str | None] = lambda: None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        super().__init__(
            Tracked,
            client_factory,
            journal,
            output_dir,
            poll_interval=poll_interval,
            deadline=deadline,
            leases=leases,
            notebook=notebook,
            clock=clock,
        )
        self.min_update_interval = MIN_UPDATE_INTERVAL
        self._subscribers: list[Callback] = []

    # --- the API the magics call ------------------------------------------------------------

    def create(
        self,
        *,
        model: str,
        prompt: str,
        params: dict[str, Any],
        inputs_digest: str = "",
        new: bool = False,
        cell_key: str | None = None,
        before_send: Callable[[], object] | None = None,
    ) -> tuple[Tracked, bool]:
        """Start a task, or reuse the live or finished one of an unchanged request (True).

        ``before_send`` runs only when a new task is about to be paid for (the budget's
        check); what it raises stops the create with nothing sent or journalled.
        """
        client = self._client_factory()
        key = fingerprint(model, prompt, params, inputs_digest, client.base_url)
        if not new:
            reused = self._reusable(key)
            if reused is not None:
                return reused, True
        if before_send is not None:
            before_send()
        marker = self._mark_in_flight(model, prompt, params, key, cell_key, client)
        task = self._send(client, marker, model, prompt, params)
        with _interrupts_held() as held:  # the id is known: it must reach the journal
            fields = _row_fields(task, client, model, prompt, params, key, cell_key)
            row, warning = self._record(marker, fields)
            tracked = Tracked(self, row, client, Snapshot("polling", task), warning)
            if warning is not None:
                tracked._unsaved = (marker, fields)  # the poller tries again
            self._register(tracked)
            self._own(tracked)
            first = task.poll_after if task.poll_after is not None else FIRST_POLL_DELAY
            self._start(tracked, min(first, self.poll_interval))  # the server's hint knows best
        if held:
            raise WaitInterrupted(tracked.task_id, shown=False)
        return tracked, False

    def cancel(self, task_id: str) -> Tracked:
        """Stop polling ``task_id`` here (the gateway has no cancel route); the journal says so."""
        with self._lock:
            tracked = self._tracked.get(task_id)
        if tracked is None:
            raise E.InvalidInputError(f"{task_id} is not being polled in this kernel.")
        runtime.run(self._halt(tracked, cancelled=True))
        return tracked

    def list(self, limit: int = 50) -> list[TaskRow]:
        """The journal's newest tasks, newest first."""
        return self.journal.list(limit)

    def overview(self, limit: int = 50) -> tuple[Sources, str]:
        """This kernel's tasks and the journal's, newest first, and why the journal is missing."""
        sources: dict[str, Source] = {}
        problem = ""
        try:
            sources.update((row.task_id, row) for row in self.journal.list(limit))
        except E.TokenhotError as exc:  # an unreadable journal still leaves this kernel's tasks
            problem = str(exc)
        sources.update((t.task_id, t) for t in self.tracked())
        return sorted(sources.values(), key=lambda s: s.created_at, reverse=True), problem

    def table(self, limit: int = 50, *, now: float | None = None) -> dict[str, str]:
        """``%tokenhot tasks``: every task of the overview as an HTML table with a text twin."""
        sources, problem = self.overview(limit)
        moment = time.time() if now is None else now
        lines = [task_line(source, moment) for source in sources]
        return tasks_table(lines, now=moment, problem=problem)

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(tracked)`` on every change (from any thread); returns unsubscribe."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def shutdown(self) -> None:
        """Stop every poller (``%unload_ext``); tasks stay in the journal."""
        super().shutdown()
        with self._lock:
            self._subscribers.clear()

    # --- creating and restoring -------------------------------------------------------------

    def _mark_in_flight(
        self,
        model: str,
        prompt: str,
        params: dict[str, Any],
        key: str,
        cell_key: str | None,
        client: Client,
    ) -> str | None:
        """Journal the request before it is sent, so an unknown outcome is never paid twice.

        A journal that cannot be written was already refused unless the user said --new;
        then the create goes ahead unmarked (its id is shown on the card).
        """
        marker = f"{IN_FLIGHT}{uuid.uuid4().hex}"
        try:
            self.journal.record(
                task_id=marker,
                model=model,
                prompt=prompt,
                params=params,
                fingerprint=key,
                cell_key=cell_key,
                base_url=client.base_url,
                status=CREATING,
            )
        except E.TokenhotError as exc:
            log.warning("in-flight marker not journalled: %s", exc)
            return None
        return marker

    def _send(
        self, client: Client, marker: str | None, model: str, prompt: str, params: dict[str, Any]
    ) -> VideoTask:
        """The create call; the marker says "maybe" or goes, depending on how it ended."""
        try:
            return client.video(prompt, model or None, **params)
        except E.TaskMaybeCreatedError as exc:
            self._settle(marker, status=MAYBE, error=str(exc))
            raise
        except BaseException:  # refused before any task existed: a re-run may send again
            self._settle(marker)
            raise

    def _settle(self, marker: str | None, **fields: Any) -> None:
        """Update the in-flight marker (or drop it when no fields are given)."""
        if marker is None:
            return
        try:
            self.journal.update(marker, **fields) if fields else self.journal.forget(marker)
        except E.TokenhotError as exc:
            log.warning("in-flight marker %s not updated: %s", marker, exc)

    def _reusable(self, key: str) -> Tracked | None:
        with self._lock:
            mine = [
                t for t in self._tracked.values() if t.fingerprint == key and t.phase != "failed"
            ]
        if mine:
            self._resume(mine[-1])
            return mine[-1]
        row = self.journal.find(key)  # unreadable journal: refuse before paying twice
        if row is not None and row.task_id.startswith(IN_FLIGHT):
            raise E.TaskMaybeCreatedError(
                f"An earlier run of this request may have created a {row.model} task "
                "(its reply never arrived), so it was not sent again.",
                model=row.model,
                hint="Check your account's task log; to pay for a new task anyway, add --new.",
            )
        return self.attach(row.task_id) if row is not None else None

    def _record(self, marker: str | None, fields: dict[str, Any]) -> tuple[TaskRow, str | None]:
        """Journal the new id before anything else; if that fails, keep going and say so."""
        try:
            return self._write(marker, fields), None
        except Exception as exc:  # losing the id would cost money; never let this raise
            task_id = fields["task_id"]
            log.warning("task %s not journalled: %s", task_id, redact(str(exc)))
            warning = f"Not saved to the task journal ({redact(str(exc))}); note the id {task_id}."
            row = {**fields, "base_url": safe_url(fields["base_url"])}
            return TaskRow(**row, updated_at=fields["created_at"]), warning

    def _notify(self, tracked: Tracked) -> None:
        with self._lock:
            callbacks = list(self._subscribers)
        for callback in callbacks:
            try:
                callback(tracked)
            except Exception:  # a broken monitor must not stop polling
                log.warning("task subscriber %r failed", callback, exc_info=True)


def _row_fields(
    task: VideoTask,
    client: Client,
    model: str,
    prompt: str,
    params: dict[str, Any],
    key: str,
    cell_key: str | None,
) -> dict[str, Any]:
    """The journal row of a task the gateway just created."""
    return {
        "task_id": task.id,
        "model": model or task.model,
        "prompt": prompt,
        "params": params,
        "fingerprint": key,
        "cell_key": cell_key,
        "base_url": client.base_url,
        "status": task.status,
        "progress": task.progress,
        "created_at": time.time(),
    }


@contextlib.contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """Hold Ctrl-C / kernel interrupts (SIGINT) until the block ends; yields those held.

    Between the gateway's reply and the journal's commit an interrupt would leave a billed
    task whose id is nowhere.  Signals reach only the main thread, so elsewhere this holds
    nothing (and needs to hold nothing).
    """
    held: list[int] = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # not ours to replace (set outside Python), or not the main thread
        yield held
        return
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)


# --- the one status vocabulary of the task table and the monitor ------------------------------

_LIVE: dict[str, TaskStatus] = {  # a polled task's gateway status (succeeded: saving next)
    "queued": "queued", "running": "running", "succeeded": "downloading",
}  # fmt: skip
_JOURNALED: dict[str, TaskStatus] = {
    "queued": "queued", "running": "running", "succeeded": "done", "failed": "failed",
    STOPPED: "stopped", MAYBE: "unknown", CREATING: "creating",
}  # fmt: skip
_NOTES: dict[TaskStatus, str] = {
    "creating": "the request is on its way to the gateway",
    "unknown": "the gateway's reply never arrived: the task may exist and be billed; check your "
    "account's task log",
    "stopped": "polling stopped here; the task may still finish and be billed",
    "timeout": "still pending at our deadline; it may still finish",
}
_RESUMABLE: frozenset[TaskStatus] = frozenset({"queued", "running", "stopped", "timeout", "error"})


def task_line(source: Source, now: float) -> TaskLine:
    """How the task table and the monitor show ``source`` (followed here, or journalled)."""
    if isinstance(source, Tracked):
        return _followed_line(source, now)
    return _journal_line(source, now)


def _followed_line(task: Tracked, now: float) -> TaskLine:
    snap = task.snapshot
    polling = snap.phase == "polling"
    status = _LIVE.get(snap.task.status, "queued") if polling else cast(TaskStatus, snap.phase)
    file = snap.file if snap.file is not None and snap.file.exists() else None
    done = snap.phase in ("downloading", "done")
    return TaskLine(
        task_id=task.task_id,
        model=task.model,
        prompt=task.prompt,
        status=status,
        progress=100 if done else snap.task.progress,
        created_at=task.created_at,
        elapsed=(snap.finished_at or now) - task.created_at,
        note=snap.error or snap.warning or _NOTES.get(status, ""),
        active=snap.phase in ACTIVE,
        attachable=status in _RESUMABLE - {"queued", "running"}
        or (snap.phase == "done" and file is None),
        file=str(file) if file else None,
    )


def _journal_line(row: TaskRow, now: float) -> TaskLine:
    status = _journal_status(row, now)
    file = row.file if row.file and Path(row.file).exists() else None
    pending = status in ("creating", "queued", "running")
    marker = row.task_id.startswith(IN_FLIGHT)
    return TaskLine(
        task_id=row.task_id,
        model=row.model,
        prompt=row.prompt,
        status=status,
        progress=None if marker else row.progress,
        created_at=row.created_at,
        elapsed=(now if pending else row.updated_at) - row.created_at,
        note=_NOTES[status] if status == "unknown" else row.error or _NOTES.get(status, ""),
        attachable=status in _RESUMABLE or (status == "done" and file is None),
        file=file,
    )


def _journal_status(row: TaskRow, now: float) -> TaskStatus:
    """The word for a journal row: an error that stopped polling or saving outranks its status."""
    status = _JOURNALED.get(row.status, "unknown")
    if status == "creating" and now - row.created_at > STALE_CREATE:
        return "unknown"  # the kernel that sent it never heard back
    if row.error and status in ("queued", "running", "done"):
        return "error"
    return status
