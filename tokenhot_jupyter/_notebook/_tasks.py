"""Video tasks that outlive the cell: create once, journal at once, poll in the background.

Each task is polled by one coroutine on the runtime's private loop, so the kernel thread
never waits and twenty tasks cost twenty sleeping coroutines.  A card shown by
`Tracked.display` keeps the cell context it was shown from: ipykernel 7 reads the parent
header of an output from a ContextVar (falling back to the *latest* cell), so updates
published from the loop thread run inside a copy of that context and land in the cell
that showed the card.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import logging
import os
import secrets
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from .. import _exceptions as E
from .._cassette import current as current_seen
from .._client import Client
from .._config import DEFAULT_POLL_INTERVAL, DEFAULT_VIDEO_DEADLINE, FIRST_POLL_DELAY
from .._redact import redact
from .._runtime import runtime
from .._store._journal import Journal, Origin, TaskRow, fingerprint, safe_url
from .._store._leases import Keeper
from .._types import VideoStatus, VideoTask
from ._cards import ACTIVE, Bundle, CardInfo, Phase, TaskLine, TaskStatus, render, tasks_table

log = logging.getLogger("tokenhot_jupyter")
Callback = Callable[["Tracked"], object]
IN_FLIGHT = "inflight-"  # journal id of a create that has no gateway id yet
MAYBE = "maybe"  # its status when the create's outcome is unknown
CREATING = "creating"  # its status while the create is on the wire
STOPPED = "stopped"  # the journal status of a task whose polling the user cancelled
STALE_CREATE = 900.0  # a create waits one request timeout at most; an older marker lost its reply
MIN_UPDATE_INTERVAL = 1.0  # seconds between in-place card updates that only move the bar
STOP_TIMEOUT = 5.0
# Poll errors worth another try at the next interval (the client already retried them).
TRANSIENT = (E.APIConnectionError, E.ServerError, E.RateLimitError, E.NotAnAPIResponseError)
_STATUSES: frozenset[str] = frozenset({"queued", "running", "succeeded", "failed"})


class WaitInterrupted(KeyboardInterrupt):
    """Ctrl-C / interrupt during ``--wait``; the task keeps polling in the background."""

    def __init__(self, task_id: str, *, shown: bool = True) -> None:
        self.task_id = task_id
        super().__init__(
            f"Stopped waiting; {task_id} is still polling in the background and its card "
            f"will update. %tokenhot attach {task_id} shows it again."
            if shown
            else f"Interrupted; the task {task_id} was created and is polling in the "
            f"background. %tokenhot attach {task_id} shows its card."
        )

    def _render_traceback_(self) -> list[str]:
        """One line instead of a traceback."""
        return [f"KeyboardInterrupt: {self}"]


@dataclass(frozen=True)
class Snapshot:
    """The state of one tracked task at one moment (replaced, never mutated)."""

    phase: Phase
    task: VideoTask
    file: Path | None = None
    error: str | None = None
    warning: str | None = None  # the last poll failed; cleared by the next good one
    finished_at: float | None = None
    exception: E.TokenhotError | None = None


class _View:
    """One card on screen: its display id and the cell context it was shown from."""

    def __init__(self, display_id: str, context: contextvars.Context, live: bool) -> None:
        self.display_id = display_id
        self.context = context
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
        """Publish the card; updates run in a copy of the cell's context (see module doc)."""
        data, metadata = bundle
        if update:
            self.context.copy().run(_publish, data, metadata, self.display_id, True)
        else:
            _publish(data, metadata, self.display_id, False)
        self.last_data, self.last_phase, self.last_time = data, phase, time.monotonic()


def _publish(data: dict[str, str], metadata: dict[str, Any], display_id: str, update: bool) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    if not InteractiveShell.initialized():
        print(data["text/plain"], flush=True)
        return
    from IPython.display import display

    # IPython's display() is untyped; raw=True sends our bundle as is.
    display(data, raw=True, metadata=metadata, display_id=display_id, update=update)  # type: ignore[no-untyped-call]


def _can_update() -> bool:
    """False where an update would print a new copy (terminal IPython, plain Python)."""
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    if not InteractiveShell.initialized():
        return False
    publisher = InteractiveShell.instance().display_pub
    return type(publisher).publish is not DisplayPublisher.publish


class Tracked:
    """One video task followed by this kernel: its latest state, its cards, its file."""

    def __init__(
        self,
        manager: TaskManager,
        row: TaskRow,
        client: Client,
        snapshot: Snapshot,
        journal_warning: str | None = None,
    ) -> None:
        self.task_id = row.task_id
        self.model = row.model
        self.prompt = row.prompt
        self.params = dict(row.params)
        self.fingerprint = row.fingerprint
        self.created_at = row.created_at
        self.client = client
        self.journal_warning = journal_warning
        self.output_dir: Path | None = None  # where its video goes (None: the manager's folder)
        self._manager = manager
        self._snapshot = snapshot
        self._lock = threading.RLock()
        self._views: list[_View] = []
        self._finished = threading.Event()
        self._poller: asyncio.Task[None] | None = None
        self._journaled = (row.status, row.progress, row.error, row.file)
        self._unsaved: tuple[str | None, dict[str, Any]] | None = None  # (marker, row) to journal
        self._seen = current_seen()  # the magic's record; its pollers note replays into it
        if snapshot.phase not in ACTIVE:
            self._finished.set()

    def __repr__(self) -> str:
        snap = self._snapshot
        return f"Tracked({self.task_id!r}, model={self.model!r}, phase={snap.phase!r})"

    @property
    def snapshot(self) -> Snapshot:
        """The current state, as one consistent object."""
        return self._snapshot

    @property
    def task(self) -> VideoTask:
        """The task as last seen on the gateway."""
        return self._snapshot.task

    @property
    def phase(self) -> Phase:
        """polling, downloading, done, failed, timeout, stopped or error."""
        return self._snapshot.phase

    @property
    def file(self) -> Path | None:
        """The saved MP4, once downloaded."""
        return self._snapshot.file

    @property
    def error(self) -> str | None:
        """Why the task failed or polling stopped, if it did."""
        return self._snapshot.error

    @property
    def done(self) -> bool:
        """True once nothing more happens here without `attach`."""
        return self._snapshot.phase not in ACTIVE

    def card(self) -> Bundle:
        """The card for the current state: (mime bundle, metadata)."""
        return render(self._snapshot.phase, self.info())

    def info(self) -> CardInfo:
        """What the card shows, as plain data."""
        snap = self._snapshot
        end = snap.finished_at or time.time()
        src = _relative(snap.file)
        notes = (self.journal_warning, snap.warning, _unreachable(src, self.task_id))
        warning = "; ".join(w for w in notes if w) or None
        return CardInfo(
            self.task_id, self.model, self.prompt, self.params, snap.task.status,
            snap.task.progress, max(0.0, end - self.created_at), self.created_at,
            snap.finished_at, snap.error, warning, src, str(snap.file) if snap.file else None,
            self._seen.cassette if self._seen else None,
        )  # fmt: skip

    def display(self) -> str:
        """Show the card in the current cell and keep it updated there; returns its display id."""
        view = _View(
            f"tokenhot-{self.task_id}-{secrets.token_hex(4)}",
            contextvars.copy_context(),
            _can_update(),
        )
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
            raise WaitInterrupted(self.task_id) from None
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

    def _apply(self, **changes: Any) -> None:
        """Move to a new snapshot, refresh the cards and tell subscribers."""
        with self._lock:
            snap = replace(self._snapshot, **changes)
            if snap.phase not in ACTIVE and snap.finished_at is None:
                snap = replace(snap, finished_at=time.time())
            self._snapshot = snap
            self._refresh(snap)
            if snap.phase in ACTIVE:
                self._finished.clear()
            else:
                self._finished.set()
        self._manager._notify(self)

    def _refresh(self, snap: Snapshot) -> None:
        bundle = render(snap.phase, self.info())
        for view in self._views:
            if not view.due(bundle[0], snap.phase, self._manager.min_update_interval):
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


class TaskManager:
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
    ) -> None:
        self.journal = journal
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.min_update_interval = MIN_UPDATE_INTERVAL
        self.leases = leases  # None: poll every task followed here, as before leases existed
        self._client_factory = client_factory
        self._output_dir = output_dir
        self._notebook = notebook
        self._lock = threading.RLock()
        self._tracked: dict[str, Tracked] = {}
        self._subscribers: list[Callback] = []
        if leases is not None:  # a kernel that exits lets the server take over at once
            atexit.register(leases.release_all)

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
    ) -> tuple[Tracked, bool]:
        """Start a task, or reuse the live or finished one of an unchanged request (True)."""
        client = self._client_factory()
        key = fingerprint(model, prompt, params, inputs_digest, client.base_url)
        if not new:
            reused = self._reusable(key)
            if reused is not None:
                return reused, True
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

    def attach(
        self,
        task_id: str,
        *,
        model: str | None = None,
        client: Client | None = None,
        output_dir: Path | None = None,
    ) -> Tracked:
        """Follow a task again (also after a restart); ``model`` adopts an unjournalled id.

        ``client`` and ``output_dir`` override the manager's for this task (the server polls
        each task at its own gateway and saves it where its notebook would have).
        """
        task_id = (task_id or "").strip()
        with self._lock:
            known = self._tracked.get(task_id)
        if known is not None:
            self._resume(known)
            return known
        if task_id.startswith(IN_FLIGHT):
            raise E.InvalidInputError(
                f"{task_id} marks a video request whose reply never arrived; there is no task "
                "id to follow.",
                hint="Check your account's task log for the task.",
            )
        row = self.journal.get(task_id) if task_id else None
        client = client or self._client_factory()
        if row is None:
            row = self._adopt(task_id, model, client)
        tracked = Tracked(self, row, client, _restored(row, self._saved_here(row, output_dir)))
        tracked.output_dir = output_dir
        self._register(tracked)
        self._own(tracked)
        if tracked.phase in ACTIVE:
            self._start(tracked, 0.0)
        return tracked

    def cancel(self, task_id: str) -> Tracked:
        """Stop polling ``task_id`` here (the gateway has no cancel route); the journal says so."""
        with self._lock:
            tracked = self._tracked.get(task_id)
        if tracked is None:
            raise E.InvalidInputError(f"{task_id} is not being polled in this kernel.")
        runtime.run(self._halt(tracked, cancelled=True))
        return tracked

    def get(self, task_id: str) -> Tracked | None:
        """The task if this kernel follows it."""
        with self._lock:
            return self._tracked.get(task_id)

    def tracked(self) -> list[Tracked]:
        """Every task this kernel follows, oldest first."""
        with self._lock:
            return list(self._tracked.values())

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
        active = [t for t in self.tracked() if t.phase in ACTIVE]
        if active:

            async def halt_all() -> None:
                await asyncio.gather(*(self._halt(t) for t in active))

            try:
                runtime.run(asyncio.wait_for(halt_all(), STOP_TIMEOUT))
            except asyncio.TimeoutError:  # unloading must not fail; the loop thread is a daemon
                log.warning("some video pollers did not stop within %.0f s", STOP_TIMEOUT)
        with self._lock:
            self._subscribers.clear()
        if self.leases is not None:
            self.leases.release_all()
            atexit.unregister(self.leases.release_all)

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
                task_id=marker, model=model, prompt=prompt, params=params, fingerprint=key,
                cell_key=cell_key, base_url=client.base_url, status=CREATING,
            )  # fmt: skip
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

    def _write(self, marker: str | None, fields: dict[str, Any]) -> TaskRow:
        """The in-flight marker becomes the task's row in one step (or it gets a row of its own)."""
        task_id = fields["task_id"]
        if marker is not None and self.journal.promote(
            marker, task_id, model=fields["model"], status=fields["status"],
            progress=fields["progress"],
        ):  # fmt: skip
            row = self.journal.get(task_id)
            if row is not None:
                return row
        return self.journal.record(**fields)

    def _save_late(self, tracked: Tracked) -> bool:
        """Journal a task whose create could not be journalled (the journal was busy)."""
        if tracked._unsaved is None:
            return True
        marker, fields = tracked._unsaved
        try:
            self._write(marker, fields)
        except E.TokenhotError as exc:
            log.debug("task %s still not journalled: %s", tracked.task_id, exc)
            return False
        tracked._unsaved, tracked.journal_warning = None, None
        return True

    def _adopt(self, task_id: str, model: str | None, client: Client) -> TaskRow:
        if not task_id or not model:
            where = self.journal.path
            raise E.InvalidInputError(
                f"Unknown video task {task_id or '(empty id)'!r}: it is not in the journal "
                f"{where}.",
                hint="%tokenhot tasks lists known tasks; for a task made elsewhere pass its model.",
            )
        return self.journal.record(
            task_id=task_id, model=model, prompt="", base_url=client.base_url
        )

    def _own(self, tracked: Tracked) -> None:
        """Journal where the task was made (first record wins), for the server's takeover."""
        if self.leases is None:
            return
        folder = tracked.output_dir or self._output_dir()
        origin = Origin(
            tracked.task_id, self._notebook(), str(folder), self.leases.host, self.leases.pid
        )
        try:
            self.journal.set_origin(origin)
        except E.TokenhotError as exc:
            log.warning("origin of %s not journalled: %s", tracked.task_id, exc)

    def _register(self, tracked: Tracked) -> None:
        with self._lock:
            self._tracked[tracked.task_id] = tracked
        self._notify(tracked)

    def _resume(self, tracked: Tracked) -> None:
        """Poll again after a timeout, stop or error, or when the saved file is not here."""
        if tracked.phase == "done":
            local = self._local_copy(tracked.task_id, tracked.file, tracked.output_dir)
            if local is not None and local != tracked.file:
                self._moved(tracked, local)
                tracked._apply(file=local)
        missing = tracked.phase == "done" and not (tracked.file and tracked.file.exists())
        if tracked.phase in ("timeout", "stopped", "error") or missing:
            tracked._apply(
                phase="polling", error=None, warning=None, finished_at=None, exception=None
            )
            self._start(tracked, 0.0)

    # --- the saved video belongs beside the notebook that shows it ---------------------------

    def _target(self, task_id: str, folder: Path | None = None) -> Path:
        """Where this kernel keeps the video of ``task_id`` (its notebook's output folder)."""
        return ((folder or self._output_dir()) / f"{task_id}.mp4").resolve()

    def _saved_here(self, row: TaskRow, folder: Path | None = None) -> Path | None:
        """A journalled success's video in this output folder (copied there if need be)."""
        if row.status != "succeeded":
            return None
        local = self._local_copy(row.task_id, Path(row.file) if row.file else None, folder)
        if local is not None and row.file != str(local):
            self._moved_row(row.task_id, local)
        return local

    def _local_copy(
        self, task_id: str, saved: Path | None, folder: Path | None = None
    ) -> Path | None:
        """The video in this output folder: already there, copied there, or None (download).

        A player's link is relative to the notebook, so a task reused from a notebook in
        another folder gets its file copied here; the task itself is never paid for twice.
        """
        target = self._target(task_id, folder)
        if target.exists():
            return target
        if saved is None or not saved.exists():
            return None
        try:
            _place(target, lambda partial: shutil.copyfile(saved, partial))
        except OSError as exc:  # then it is downloaded again, and a failure shows on the card
            log.warning("could not copy %s here: %s", saved, exc)
            return None
        return target

    def _moved(self, tracked: Tracked, local: Path) -> None:
        status, progress, error, _ = tracked._journaled
        tracked._journaled = (status, progress, error, str(local))
        self._moved_row(tracked.task_id, local)

    def _moved_row(self, task_id: str, local: Path) -> None:
        """The journal points at the newest copy (any copy plays; the newest is likeliest)."""
        try:
            self.journal.update(task_id, file=str(local))
        except E.TokenhotError as exc:
            log.warning("journal update for %s failed: %s", task_id, exc)

    def _notify(self, tracked: Tracked) -> None:
        with self._lock:
            callbacks = list(self._subscribers)
        for callback in callbacks:
            try:
                callback(tracked)
            except Exception:  # a broken monitor must not stop polling
                log.warning("task subscriber %r failed", callback, exc_info=True)

    # --- polling, on the runtime loop ---------------------------------------------------------

    def _start(self, tracked: Tracked, first_delay: float) -> None:
        # A plain callback, not a coroutine: a later `_halt` submitted to the loop always
        # finds the poller it must cancel (callbacks run in the order they were queued).
        runtime.loop.call_soon_threadsafe(self._launch, tracked, first_delay)

    def _launch(self, tracked: Tracked, first_delay: float) -> None:
        if tracked.phase not in ACTIVE:  # stopped before the loop got here
            return
        old = tracked._poller
        if old is not None and not old.done():  # a resume while the last poller winds down
            old.add_done_callback(lambda _: self._launch(tracked, first_delay))
            return
        tracked._poller = asyncio.get_running_loop().create_task(
            self._follow(tracked, first_delay), name=f"tokenhot-poll-{tracked.task_id}"
        )

    async def _halt(self, tracked: Tracked, *, cancelled: bool = False) -> None:
        while (poller := tracked._poller) is not None and not poller.done():
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if tracked.phase in ACTIVE:
            if cancelled:  # a kernel that merely shuts down leaves the gateway's status
                await self._journal(tracked, status=STOPPED)
            tracked._apply(phase="stopped")

    async def _follow(self, tracked: Tracked, first_delay: float) -> None:
        """Poll until the task ends, then download it; every outcome lands on the card."""
        try:
            await self._follow_leased(tracked, first_delay)
        finally:
            if self.leases is not None:  # quick and synchronous: also runs when cancelled
                self.leases.release(tracked.task_id)

    async def _follow_leased(self, tracked: Tracked, first_delay: float) -> None:
        try:
            task = await self._poll(tracked, first_delay)
            if task is None:
                return
            if task.status == "failed":
                await self._journal(tracked, status="failed", progress=100, error=task.error)
                tracked._apply(phase="failed", task=task, error=task.error or "task failed")
            else:
                await self._download(tracked, task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must show on its card, not vanish in the loop
            log.exception("polling %s failed", tracked.task_id)
            tracked._apply(phase="error", error=redact(f"{type(exc).__name__}: {exc}"))

    async def _poll(self, tracked: Tracked, delay: float) -> VideoTask | None:
        started = time.monotonic()
        held = await self._hold(tracked, delay)
        while held is not None:
            await asyncio.sleep(delay)
            delay = self.poll_interval
            try:
                task = await self._fetch(tracked, held)
            except TRANSIENT as exc:
                log.debug("poll of %s failed, will retry: %s", tracked.task_id, exc)
                tracked._apply(warning=f"The last poll failed ({exc}); still trying.")
            except E.TokenhotError as exc:
                await self._journal(tracked, error=str(exc))
                tracked._apply(phase="error", error=str(exc), exception=exc)
                return None
            else:
                log.debug("poll %s: %s %d%%", tracked.task_id, task.status, task.progress)
                if task.done:
                    return task
                if task.poll_after is not None:  # the server knows its refresh pace best
                    delay = task.poll_after
                tracked._apply(task=task, warning=None)
                await self._journal(tracked, status=task.status, progress=task.progress, error=None)
            if time.monotonic() - started + delay > self.deadline:
                tracked._apply(phase="timeout")
                return None
            held = await self._hold(tracked, delay)
        log.debug("%s is polled elsewhere now; stopped here", tracked.task_id)
        tracked._apply(phase="stopped")
        return None

    async def _hold(self, tracked: Tracked, delay: float) -> bool | None:
        """Renew our lease for the next sleep: True to poll the gateway, False to read the
        journal (another live process polls it), None to stop (a server that lost it)."""
        if self.leases is None:
            return True
        try:
            held = await asyncio.to_thread(self.leases.hold, tracked.task_id, delay)
        except E.TokenhotError as exc:  # no journal, no lease: a kernel polls anyway
            log.warning("lease on %s not renewed: %s", tracked.task_id, exc)
            held = self.leases.role == "kernel"
        if held or self.leases.role == "kernel":
            return held
        return None

    async def _fetch(self, tracked: Tracked, held: bool) -> VideoTask:
        """The task from the gateway, or (while another process polls it) from the journal."""
        if not held:
            row = await asyncio.to_thread(self.journal.get, tracked.task_id)
            if row is not None and row.status in ("queued", "running"):
                tracked._journaled = (row.status, row.progress, row.error, row.file)
                status = cast(VideoStatus, row.status)
                return VideoTask(row.task_id, row.model, status, row.progress)
        return await tracked.client.aio.get_video(tracked.task_id, tracked.model or None)

    async def _download(self, tracked: Tracked, task: VideoTask) -> None:
        tracked._apply(phase="downloading", task=task, warning=None)
        await self._journal(tracked, status="succeeded", progress=100)
        try:
            data = await tracked.client.aio.download_video(task, tracked.model or None)
            path = await asyncio.to_thread(self._save, tracked.task_id, data, tracked.output_dir)
        except E.TokenhotError as exc:
            error = str(exc)
            if isinstance(exc, E.ResultUnavailableError):
                error += " Run the cell with --new to make the video again (a new, billed task)."
            await self._journal(tracked, error=error)
            tracked._apply(phase="error", error=error, exception=exc)
            return
        except OSError as exc:
            error = (
                f"The video could not be saved ({exc}); the task succeeded, and its result URL "
                "expires about 24 h after it finished."
            )
            await self._journal(tracked, error=error)
            tracked._apply(phase="error", error=redact(error))
            return
        await self._journal(tracked, file=str(path), error=None)
        tracked._apply(phase="done", file=path)

    def _save(self, task_id: str, data: bytes, folder: Path | None = None) -> Path:
        return _place(self._target(task_id, folder), lambda partial: partial.write_bytes(data))

    async def _journal(self, tracked: Tracked, **fields: Any) -> None:
        """Write changed fields off the loop thread (another kernel may hold the lock)."""
        if tracked._unsaved is not None:
            if not await asyncio.to_thread(self._save_late, tracked):
                return
            tracked._apply()  # the card drops its "not saved" warning
        current = (
            fields.get("status", tracked._journaled[0]),
            fields.get("progress", tracked._journaled[1]),
            fields.get("error", tracked._journaled[2]),
            fields.get("file", tracked._journaled[3]),
        )
        if current == tracked._journaled:
            return
        tracked._journaled = current
        try:
            await asyncio.to_thread(self.journal.update, tracked.task_id, **fields)
        except Exception as exc:
            log.warning("journal update for %s failed: %s", tracked.task_id, exc)
            tracked.journal_warning = f"The task journal is not being updated ({exc})."


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
    return dict(
        task_id=task.id, model=model or task.model, prompt=prompt, params=params,
        fingerprint=key, cell_key=cell_key, base_url=client.base_url, status=task.status,
        progress=task.progress, created_at=time.time(),
    )  # fmt: skip


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


def _place(target: Path, write: Callable[[Path], object]) -> Path:
    """Write ``target`` through a part file and a rename: another kernel never sees half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        write(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def _restored(row: TaskRow, file: Path | None) -> Snapshot:
    """The state a journal row implies before anything is polled (``file``: its video here)."""
    status = cast(VideoStatus, row.status if row.status in _STATUSES else "queued")
    failed = status == "failed"
    task = VideoTask(row.task_id, row.model, status, row.progress, row.error if failed else None)
    if failed:
        return Snapshot(
            "failed", task, error=row.error or "task failed", finished_at=row.updated_at
        )
    if status == "succeeded" and file is not None and file.exists():
        return Snapshot("done", task, file=file, finished_at=row.updated_at)
    return Snapshot("polling", task)


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
        task_id=task.task_id, model=task.model, prompt=task.prompt, status=status,
        progress=100 if done else snap.task.progress, created_at=task.created_at,
        elapsed=(snap.finished_at or now) - task.created_at,
        note=snap.error or snap.warning or _NOTES.get(status, ""), active=snap.phase in ACTIVE,
        attachable=status in _RESUMABLE - {"queued", "running"}
        or (snap.phase == "done" and file is None),
        file=str(file) if file else None,
    )  # fmt: skip


def _journal_line(row: TaskRow, now: float) -> TaskLine:
    status = _journal_status(row, now)
    file = row.file if row.file and Path(row.file).exists() else None
    pending = status in ("creating", "queued", "running")
    marker = row.task_id.startswith(IN_FLIGHT)
    return TaskLine(
        task_id=row.task_id, model=row.model, prompt=row.prompt, status=status,
        progress=None if marker else row.progress, created_at=row.created_at,
        elapsed=(now if pending else row.updated_at) - row.created_at,
        note=_NOTES[status] if status == "unknown" else row.error or _NOTES.get(status, ""),
        attachable=status in _RESUMABLE or (status == "done" and file is None),
        file=file,
    )  # fmt: skip


def _journal_status(row: TaskRow, now: float) -> TaskStatus:
    """The word for a journal row: an error that stopped polling or saving outranks its status."""
    status = _JOURNALED.get(row.status, "unknown")
    if status == "creating" and now - row.created_at > STALE_CREATE:
        return "unknown"  # the kernel that sent it never heard back
    if row.error and status in ("queued", "running", "done"):
        return "error"
    return status
