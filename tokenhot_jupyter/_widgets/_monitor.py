"""`TaskMonitor`: the video tasks of this kernel and of the journal, with live progress.

The task manager calls back from its polling loop (or the kernel thread).  The callback
only notes the task and wakes a flusher thread; the flusher applies every pending change
at most once per ``interval`` and ticks elapsed times while a task is active, then ends.
A burst from twenty pollers becomes a few batched widget updates per second, and a
poller never waits on a frontend.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from .._exceptions import TokenhotError
from .._notebook import _display as D
from .._notebook._cards import TaskLine, TaskStatus, format_elapsed
from .._notebook._session import Session
from .._notebook._tasks import Source, Tracked, task_line
from .._store._journal import excerpt
from ._common import OutputScreen, close_tree, current_session, show_widget

_STYLE: dict[TaskStatus, str] = {
    "creating": "info", "queued": "info", "running": "info", "downloading": "info",
    "done": "success", "failed": "danger", "error": "danger", "unknown": "warning",
    "timeout": "warning", "stopped": "warning",
}  # fmt: skip


def bar_style(line: TaskLine) -> str:
    """The progress bar's colour; a task nobody polls here gets none."""
    idle = line.status in ("queued", "running") and not line.active
    return "" if idle else _STYLE[line.status]


class TaskView:
    """One row: model and prompt, progress bar, status and elapsed time, buttons."""

    def __init__(self, source: Source, actions: Callable[[str, str], None]) -> None:
        self.task_id, self.source = source.task_id, source
        self.state: TaskLine | None = None
        prompt = html.escape(excerpt(source.prompt, 48))
        self.title = W.HTML(
            f"<b>{html.escape(source.model)}</b><br><small>{prompt}</small>",
            layout=W.Layout(width="22em"),
        )
        self.progress = W.IntProgress(min=0, max=100, layout=W.Layout(width="11em"))
        self.status = W.Label(layout=W.Layout(width="16em"))
        self.cancel = _button("Cancel", "stop", "Stop polling here (the gateway has no cancel)")
        self.show = _button("Show", "play", "Show the finished video below")
        self.attach = _button("Attach", "refresh", "Follow this task here (polls, downloads)")
        for name in ("cancel", "show", "attach"):
            getattr(self, name).on_click(lambda _, name=name: actions(name, self.task_id))
        parts = [self.title, self.progress, self.status, self.cancel, self.show, self.attach]
        self.box = W.HBox(parts)

    def render(self, now: float) -> bool:
        """Show the source's current state (unchanged values send nothing); True if active."""
        line = task_line(self.source, now)
        with self.progress.hold_sync():
            self.progress.value, self.progress.bar_style = line.progress or 0, bar_style(line)
        self.status.value = f"{line.label} · {format_elapsed(line.elapsed)}"
        self.status.tooltip = line.note or None
        self.cancel.disabled = not line.active
        self.show.disabled = line.file is None
        self.attach.disabled = not line.attachable
        self.state = line
        return line.active


def _button(description: str, icon: str, tooltip: str) -> Any:
    return W.Button(
        description=description,
        icon=icon,
        tooltip=tooltip,
        disabled=True,
        layout=W.Layout(width="6.5em"),
    )


class TaskMonitor:
    """Video tasks with progress bars, status, elapsed time, Cancel / Show / Attach.

    ``TaskMonitor()`` (or ``%tokenhot tasks --live``); it updates itself from background
    polling until `close`.
    """

    def __init__(
        self,
        session: Session | None = None,
        *,
        interval: float = 0.5,
        limit: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session if session is not None else current_session()
        self.manager = self.session.tasks()
        self.interval, self._clock = interval, clock
        self.rows: dict[str, TaskView] = {}
        self.flushes = 0
        self.header, self.table, self.output = W.HTML(), W.VBox(), W.Output()
        self.screen = OutputScreen(self.output)
        self.widget = W.VBox([self.header, self.table, self.output])
        self._pending: dict[str, Tracked] = {}
        self._lock, self._flush_lock = threading.Lock(), threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = threading.Event()
        self._unsubscribe = self.manager.subscribe(self._on_change)
        self._load(limit)
        self.flush()

    def _load(self, limit: int) -> None:
        newest_first, problem = self.manager.overview(limit)
        if problem:  # an unreadable journal still leaves this kernel's tasks
            self._note(problem)
        self.rows = {s.task_id: TaskView(s, self._act) for s in newest_first}
        self.table.children = [view.box for view in self.rows.values()]

    # --- updates --------------------------------------------------------------------------

    def _on_change(self, tracked: Tracked) -> None:
        """The manager's callback (any thread): note the task, wake the flusher; never waits."""
        with self._lock:
            if self._closed.is_set():
                return
            self._pending[tracked.task_id] = tracked
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name="tokenhot-monitor", daemon=True
                )
                self._worker.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            active = self.flush()
            with self._lock:
                if not self._pending and not active:
                    self._worker = None
                    return
            self._closed.wait(self.interval)
        with self._lock:
            self._worker = None

    def flush(self) -> bool:
        """Apply pending changes and tick elapsed times now; True while a task is active."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
            for tracked in pending.values():
                self._adopt(tracked)
            now = self._clock()
            active = [view.render(now) for view in self.rows.values()]
            self.flushes += 1
            return any(active)

    def _adopt(self, tracked: Tracked) -> None:
        view = self.rows.get(tracked.task_id)
        if view is not None:
            view.source = tracked
            return
        view = TaskView(tracked, self._act)
        self.rows = {tracked.task_id: view, **self.rows}
        self.table.children = [view.box, *self.table.children]

    # --- buttons (on the kernel thread) -------------------------------------------------

    def _act(self, action: str, task_id: str) -> None:
        try:
            if action == "cancel":
                self.manager.cancel(task_id)
            elif action == "attach":
                self.manager.attach(task_id)
            else:
                self.show(task_id)
        except TokenhotError as exc:
            self._note(str(exc))

    def show(self, task_id: str) -> None:
        """Show a task's card (the video, once saved) below the table."""
        # attach: a journal row is restored, and a video saved for another folder copied here
        data, metadata = self.manager.attach(task_id).card()
        self.screen.clear()
        self.screen.show(data, metadata)

    def _note(self, text: str) -> None:
        self.header.value = f"<span style='color:#c33'>⚠ {html.escape(text)}</span>"

    # --- showing and closing --------------------------------------------------------------

    def display(self) -> None:
        """Show the monitor (the task table as text where widgets cannot show)."""
        show_widget(self.widget, self.summary(), self.session, show_table)

    def summary(self) -> str:
        """The task table as text (the widget's text/plain)."""
        return self.manager.table(now=self._clock())["text/plain"]

    def _ipython_display_(self) -> None:
        self.display()

    def close(self) -> None:
        """Stop listening to the pollers and close the widgets."""
        self._closed.set()
        self._unsubscribe()
        close_tree(self.widget)


def show_table(session: Session, screen: D.Screen) -> None:
    """No widgets here (terminal IPython): the task table and what to type instead."""
    screen.show({"text/plain": session.tasks().table()["text/plain"]})
    hint = (
        "The live monitor needs Jupyter widgets; above is the task table. %tokenhot attach ID "
        "shows a task again, %tokenhot cancel ID stops polling it."
    )
    screen.show(D.note_bundle(hint))


def show_monitor(session: Session, screen: D.Screen) -> TaskMonitor | None:
    """``%tokenhot tasks --live``: the monitor in a notebook, the table in a terminal."""
    if not screen.rich:
        show_table(session, screen)
        return None
    monitor = TaskMonitor(session)
    monitor.display()
    return monitor
