"""Video tasks followed to their end in the background: poll, journal, download, save.

What a kernel and the Jupyter server extension share (the kernel adds cards, creation and
the task table in ``_notebook/_tasks.py``).  Each task is polled by one coroutine on the
runtime's private loop, through the one poll loop of `_poll`, under a lease in the task
journal when there is one; every change is journalled, and the video is saved through a
part file into the folder of the notebook that made it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast

from . import _exceptions as E
from ._client import Client
from ._config import DEFAULT_POLL_INTERVAL, DEFAULT_VIDEO_DEADLINE
from ._poll import REAL_CLOCK, Clock, beat_of, poll
from ._redact import redact
from ._runtime import runtime
from ._store._journal import IN_FLIGHT, STOPPED, Journal, Origin, TaskRow
from ._store._leases import Keeper
from ._types import VideoStatus, VideoTask

log = logging.getLogger("tokenhot_jupyter")
Phase = Literal["polling", "downloading", "done", "failed", "timeout", "stopped", "error"]
ACTIVE: frozenset[Phase] = frozenset({"polling", "downloading"})
STOP_TIMEOUT = 5.0
POLL_SLOTS = 4  # polls at once: httpcore's pool costs grow with the square of its connections
RENEW_GATHER = 0.05  # seconds the lease renewals of one beat's polls wait for each other
# Poll errors worth another try at the next interval (the client already retried them).
TRANSIENT = (E.APIConnectionError, E.ServerError, E.RateLimitError, E.NotAnAPIResponseError)
_STATUSES: frozenset[str] = frozenset({"queued", "running", "succeeded", "failed"})


@dataclass(frozen=True)
class Snapshot:
    """The state of one followed task at one moment (replaced, never mutated)."""

    phase: Phase
    task: VideoTask
    file: Path | None = None
    error: str | None = None
    warning: str | None = None  # the last poll failed; cleared by the next good one
    finished_at: float | None = None
    exception: E.TokenhotError | None = None
    changed_at: float | None = None  # when phase, status or progress last moved (None: creation)


class Followed:
    """One video task followed by this process: its latest state and its file."""

    def __init__(
        self,
        manager: Follower[Any],
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
        self._finished = threading.Event()
        self._poller: asyncio.Task[None] | None = None
        self._journaled = (row.status, row.progress, row.error, row.file)
        self._unsaved: tuple[str | None, dict[str, Any]] | None = None  # (marker, row) to journal
        if snapshot.phase not in ACTIVE:
            self._finished.set()

    def __repr__(self) -> str:
        snap = self._snapshot
        return (
            f"{type(self).__name__}({self.task_id!r}, model={self.model!r}, phase={snap.phase!r})"
        )

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

    # --- driven by the manager, on the runtime loop -------------------------------------------

    def _apply(self, **changes: Any) -> None:
        """Move to a new snapshot, show it and tell subscribers."""
        with self._lock:
            before = self._snapshot
            snap = replace(before, **changes)
            if _progress(snap) != _progress(before):
                snap = replace(snap, changed_at=time.time())
            if snap.phase not in ACTIVE and snap.finished_at is None:
                snap = replace(snap, finished_at=time.time())
            self._snapshot = snap
            self._changed(snap)
            if snap.phase in ACTIVE:
                self._finished.clear()
            else:
                self._finished.set()
        self._manager._notify(self)

    def _changed(self, snap: Snapshot) -> None:
        """Each new snapshot, under the lock (a kernel redraws the task's cards here)."""


def _progress(snap: Snapshot) -> tuple[str, str, int]:
    """Phase, status and progress: a change in any of them is what a live card reports."""
    return snap.phase, snap.task.status, snap.task.progress


F = TypeVar("F", bound=Followed)


class Follower(Generic[F]):
    """Follows video tasks of the journal to their end: polls, journals, downloads, saves.

    ``kind`` makes the followed tasks (the kernel's carry cards); ``output_dir`` is where
    videos go unless a task names its own folder; ``leases`` (None: no lease) keeps one
    poller per task across processes.
    """

    def __init__(
        self,
        kind: type[F],
        client_factory: Callable[[], Client],
        journal: Journal,
        output_dir: Callable[[], Path],
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deadline: float = DEFAULT_VIDEO_DEADLINE,
        leases: Keeper | None = None,
        notebook: Callable[[], str | None] = lambda: None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.journal = journal
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.leases = leases  # None: poll every task followed here, as before leases existed
        self.clock = clock
        self._kind = kind
        self._client_factory = client_factory
        self._output_dir = output_dir
        self._notebook = notebook
        self._lock = threading.RLock()
        self._tracked: dict[str, F] = {}
        self._semaphore: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._renewing: _Renewals | None = None
        if leases is not None:  # a process that exits lets another take over at once
            atexit.register(leases.release_all)

    def attach(
        self,
        task_id: str,
        *,
        model: str | None = None,
        client: Client | None = None,
        output_dir: Path | None = None,
    ) -> F:
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
        tracked = self._kind(self, row, client, _restored(row, self._saved_here(row, output_dir)))
        tracked.output_dir = output_dir
        self._register(tracked)
        self._own(tracked)
        if tracked.phase in ACTIVE:
            self._start(tracked, 0.0)
        return tracked

    def get(self, task_id: str) -> F | None:
        """The task if this process follows it."""
        with self._lock:
            return self._tracked.get(task_id)

    def tracked(self) -> list[F]:
        """Every task this process follows, oldest first."""
        with self._lock:
            return list(self._tracked.values())

    def shutdown(self) -> None:
        """Stop every poller (``%unload_ext``, a server that stops); tasks stay in the journal."""
        active = [t for t in self.tracked() if t.phase in ACTIVE]
        if active:

            async def halt_all() -> None:
                await asyncio.gather(*(self._halt(t) for t in active))

            try:
                runtime.run(asyncio.wait_for(halt_all(), STOP_TIMEOUT))
            except asyncio.TimeoutError:  # unloading must not fail; the loop thread is a daemon
                log.warning("some video pollers did not stop within %.0f s", STOP_TIMEOUT)
        if self.leases is not None:
            self.leases.release_all()
            atexit.unregister(self.leases.release_all)

    # --- journalling and restoring ------------------------------------------------------------

    def _write(self, marker: str | None, fields: dict[str, Any]) -> TaskRow:
        """The in-flight marker becomes the task's row in one step (or it gets a row of its own)."""
        task_id = fields["task_id"]
        promoted = marker is not None and self.journal.promote(
            marker,
            task_id,
            model=fields["model"],
            status=fields["status"],
            progress=fields["progress"],
        )
        if promoted:
            row = self.journal.get(task_id)
            if row is not None:
                return row
        return self.journal.record(**fields)

    def _save_late(self, tracked: F) -> bool:
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

    def _own(self, tracked: F) -> None:
        """Journal where the task was made (first record wins), for the server's takeover."""
        if self.leases is None:
            return
        folder = tracked.output_dir or self._output_dir()
        origin = Origin(
            task_id=tracked.task_id,
            notebook=self._notebook(),
            output_dir=str(folder),
            host=self.leases.host,
            pid=self.leases.pid,
        )
        try:
            self.journal.set_origin(origin)
        except E.TokenhotError as exc:
            log.warning("origin of %s not journalled: %s", tracked.task_id, exc)

    def _register(self, tracked: F) -> None:
        with self._lock:
            self._tracked[tracked.task_id] = tracked
        self._notify(tracked)

    def _resume(self, tracked: F) -> None:
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

    def _notify(self, tracked: F) -> None:
        """A followed task changed (the kernel tells its subscribers)."""

    # --- the saved video belongs beside the notebook that shows it ---------------------------

    def _target(self, task_id: str, folder: Path | None = None) -> Path:
        """Where this process keeps the video of ``task_id`` (its notebook's output folder)."""
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

    def _moved(self, tracked: F, local: Path) -> None:
        status, progress, error, _ = tracked._journaled
        tracked._journaled = (status, progress, error, str(local))
        self._moved_row(tracked.task_id, local)

    def _moved_row(self, task_id: str, local: Path) -> None:
        """The journal points at the newest copy (any copy plays; the newest is likeliest)."""
        try:
            self.journal.update(task_id, file=str(local))
        except E.TokenhotError as exc:
            log.warning("journal update for %s failed: %s", task_id, exc)

    # --- polling, on the runtime loop ---------------------------------------------------------

    def _start(self, tracked: F, first_delay: float) -> None:
        # A plain callback, not a coroutine: a later `_halt` submitted to the loop always
        # finds the poller it must cancel (callbacks run in the order they were queued).
        runtime.loop.call_soon_threadsafe(self._launch, tracked, first_delay)

    def _launch(self, tracked: F, first_delay: float) -> None:
        if tracked.phase not in ACTIVE:  # stopped before the loop got here
            return
        old = tracked._poller
        if old is not None and not old.done():  # a resume while the last poller winds down
            old.add_done_callback(lambda _: self._launch(tracked, first_delay))
            return
        tracked._poller = asyncio.get_running_loop().create_task(
            self._follow(tracked, first_delay), name=f"tokenhot-poll-{tracked.task_id}"
        )

    async def _halt(self, tracked: F, *, cancelled: bool = False) -> None:
        while (poller := tracked._poller) is not None and not poller.done():
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if tracked.phase in ACTIVE:
            if cancelled:  # a kernel that merely shuts down leaves the gateway's status
                await self._journal(tracked, status=STOPPED)
            tracked._apply(phase="stopped")

    async def _follow(self, tracked: F, first_delay: float) -> None:
        """Poll until the task ends, then download it; every outcome lands on the task."""
        try:
            await self._follow_leased(tracked, first_delay)
        finally:
            if self.leases is not None:  # quick and synchronous: also runs when cancelled
                self.leases.release(tracked.task_id)

    async def _follow_leased(self, tracked: F, first_delay: float) -> None:
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

    async def _poll(self, tracked: F, delay: float) -> VideoTask | None:
        """The finished task, or None when polling ended here (its phase says why)."""
        held = True  # False while another live process polls it: read the journal instead

        async def renew(next_delay: float) -> bool:
            nonlocal held
            lease = await self._hold(tracked, next_delay)
            held = bool(lease)
            return lease is not None

        async def look() -> VideoTask | None:
            try:
                async with self._slots():
                    task = await self._fetch(tracked, held)
            except TRANSIENT as exc:
                log.debug("poll of %s failed, will retry: %s", tracked.task_id, exc)
                tracked._apply(warning=f"The last poll failed ({exc}); still trying.")
                return None
            if not task.done:
                tracked._apply(task=task, warning=None)
                await self._journal(tracked, status=task.status, progress=task.progress, error=None)
            return task

        try:
            polled = await poll(
                look,
                interval=self.poll_interval,
                deadline=self.deadline,
                clock=self.clock,
                lead=(delay,),
                renew=renew,
                # On a test's clock the plain schedule its sleeps are checked against.
                beat=beat_of(self.poll_interval) if self.clock is REAL_CLOCK else 0.0,
            )
        except E.TokenhotError as exc:  # from the gateway: polling again would not help
            await self._journal(tracked, error=str(exc))
            tracked._apply(phase="error", error=str(exc), exception=exc)
            return None
        if polled.ending == "done":
            return polled.task
        if polled.ending == "stopped":
            log.debug("%s is polled elsewhere now; stopped here", tracked.task_id)
        tracked._apply(phase=polled.ending)
        return None

    async def _hold(self, tracked: F, delay: float) -> bool | None:
        """Renew our lease for the next sleep: True to poll the gateway, False to read the
        journal (another live process polls it), None to stop (a server that lost it)."""
        if self.leases is None:
            return True
        try:
            held = await self._renewals().hold(tracked.task_id, delay)
        except E.TokenhotError as exc:  # no journal, no lease: a kernel polls anyway
            log.warning("lease on %s not renewed: %s", tracked.task_id, exc)
            held = self.leases.role == "kernel"
        if held or self.leases.role == "kernel":
            return held
        return None

    def _slots(self) -> asyncio.Semaphore:
        """At most `POLL_SLOTS` polls at once (per loop: the runtime's may be a new one)."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore[0] is not loop:
            self._semaphore = (loop, asyncio.Semaphore(POLL_SLOTS))
        return self._semaphore[1]

    def _renewals(self) -> _Renewals:
        assert self.leases is not None
        if self._renewing is None or self._renewing.leases is not self.leases:
            self._renewing = _Renewals(self.leases)
        return self._renewing

    async def _fetch(self, tracked: F, held: bool) -> VideoTask:
        """The task from the gateway, or (while another process polls it) from the journal."""
        if not held:
            row = await asyncio.to_thread(self.journal.get, tracked.task_id)
            if row is not None and row.status in ("queued", "running"):
                tracked._journaled = (row.status, row.progress, row.error, row.file)
                status = cast(VideoStatus, row.status)
                return VideoTask(
                    id=row.task_id, model=row.model, status=status, progress=row.progress
                )
        return await tracked.client.aio.get_video(tracked.task_id, tracked.model or None)

    async def _download(self, tracked: F, task: VideoTask) -> None:
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

    async def _journal(self, tracked: F, **fields: Any) -> None:
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


class _Renewals:
    """Lease renewals asked within `RENEW_GATHER` seconds, made in one journal transaction.

    The tasks of one beat poll within moments of each other, then each renews its lease
    before it sleeps: together, a few transactions per beat instead of one per task.
    """

    def __init__(self, leases: Keeper) -> None:
        self.leases = leases
        self._asked: dict[str, float] = {}
        self._done: asyncio.Future[dict[str, bool]] | None = None

    async def hold(self, task_id: str, delay: float) -> bool:
        """Whether we hold ``task_id``'s lease for the next ``delay`` seconds (see `Keeper`)."""
        if self._done is None:
            loop = asyncio.get_running_loop()
            self._done = loop.create_future()
            self._done.add_done_callback(_retrieved)  # every asker may have stopped meanwhile
            loop.call_later(RENEW_GATHER, self._claim)
        self._asked[task_id] = max(delay, self._asked.get(task_id, 0.0))
        batch = self._done
        try:
            held = await asyncio.shield(batch)  # one poller stopping must not cancel the rest
        except asyncio.CancelledError:
            if batch is self._done:  # not claimed yet: a stopped poller's lease is not renewed
                self._asked.pop(task_id, None)
            raise
        return held[task_id]

    def _claim(self) -> None:
        asked, done = self._asked, self._done
        self._asked, self._done = {}, None
        assert done is not None
        if not asked:  # every asker stopped meanwhile
            done.cancel()
            return
        claims = asyncio.ensure_future(asyncio.to_thread(self.leases.hold_all, asked))
        claims.add_done_callback(lambda ended: _settle(done, ended))


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(done: asyncio.Future[Any], ended: asyncio.Future[Any]) -> None:
    if ended.cancelled():
        done.cancel()
    elif (error := ended.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(ended.result())


def _place(target: Path, write: Callable[[Path], object]) -> Path:
    """Write ``target`` through a part file and a rename: another process never sees half."""
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
    error = row.error if failed else None
    task = VideoTask(
        id=row.task_id, model=row.model, status=status, progress=row.progress, error=error
    )
    if failed:
        return Snapshot(
            "failed", task, error=row.error or "task failed", finished_at=row.updated_at
        )
    if status == "succeeded" and file is not None and file.exists():
        return Snapshot("done", task, file=file, finished_at=row.updated_at)
    return Snapshot("polling", task, changed_at=row.updated_at)
