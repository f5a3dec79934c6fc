"""What the picker and the monitor share: the session, an Output-backed screen, the use log."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import ConfigurationError
from .._notebook import _display as D
from .._notebook._session import Session, session_of

Output = dict[str, Any]  # one entry of an ipywidgets.Output's ``outputs``


def current_session() -> Session:
    """The session of the running IPython, loading the extension if needed."""
    from IPython.core.getipython import get_ipython

    ip = get_ipython()
    if ip is None:
        raise ConfigurationError(
            "The model picker and the task monitor need IPython or Jupyter.",
            hint="Use them in a notebook, or call tokenhot_jupyter.Client directly.",
        )
    manager = ip.extension_manager
    assert manager is not None  # every InteractiveShell has one
    manager.load_extension("tokenhot_jupyter")  # a no-op when loaded
    session = session_of(ip)
    assert session is not None  # loading the extension made it
    return session


def close_tree(widget: Any) -> None:
    """Close a widget and every widget it contains (ipywidgets closes only the one)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


class OutputScreen(D.Screen):
    """A `Screen` that renders into an ``ipywidgets.Output``: the magics' bundles, in a panel.

    Display ids map to positions, so live updates (streams, comparison grids) rewrite
    their own entry; safe to call from a worker thread (each change is one comm message).
    """

    def __init__(self, output: Any) -> None:
        super().__init__(None)
        self.output = output
        self._slots: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def rich(self) -> bool:
        """Always: a widget renders mime bundles."""
        return True

    def clear(self) -> None:
        """Empty the output."""
        with self._lock:
            self._slots.clear()
            self.output.outputs = ()

    def _publish(
        self,
        data: D.Bundle,
        metadata: Mapping[str, Any] | None,
        display_id: str | None,
        update: bool,
    ) -> None:
        entry = {
            "output_type": "display_data",
            "data": dict(data),
            "metadata": dict(metadata or {}),
        }
        self._put(entry, display_id, update)

    def write(self, text: str) -> None:
        """Plain text as a stream entry."""
        self._put({"output_type": "stream", "name": "stdout", "text": text}, None, False)

    def _put(self, entry: Output, display_id: str | None, update: bool) -> None:
        with self._lock:
            outputs = list(self.output.outputs)
            slot = self._slots.get(display_id or "")
            if update and slot is not None:
                outputs[slot] = entry
            elif not update:
                if display_id:
                    self._slots[display_id] = len(outputs)
                outputs.append(entry)
            self.output.outputs = tuple(outputs)


class UseLog:
    """The picker's choices as plain ``%tokenhot use`` lines, in one ``text/plain`` output.

    Widget state is lost when a notebook is saved without it; this output is not, so the
    notebook still says which models were used.  A quick run of changes to one setting
    (arrow keys through a list, a slider) folds into one line.
    """

    HEADER = "Model picker: each choice applies at once; its %tokenhot use line is kept here."

    def __init__(
        self,
        fold_seconds: float = 3.0,
        limit: int = 40,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lines: list[str] = []
        self.display_id = f"tokenhot-picker-{uuid.uuid4().hex[:12]}"
        self.fold_seconds, self.limit, self._clock = fold_seconds, limit, clock
        self._last: tuple[str, float] | None = None
        self._output: D.Shown | None = None

    def text(self) -> str:
        """The header and the lines (the newest ``limit``)."""
        return "\n".join([self.HEADER, *self.lines[-self.limit :]])

    def add(self, key: str, line: str) -> None:
        """Note one choice; a change to the same setting moments later replaces its line."""
        now = self._clock()
        if self._last and self._last[0] == key and now - self._last[1] < self.fold_seconds:
            self.lines[-1] = line
        else:
            self.lines.append(line)
        self._last = (key, now)
        if self._output is not None:  # not shown (yet): the lines are kept for display()
            self._output.update({"text/plain": self.text()})

    def display(self) -> None:
        """Show the log below the picker; later choices update it in place, in its cell."""
        self._output = D.screen_here().place({"text/plain": self.text()}, None, self.display_id)


def show_widget(
    widget: Any, summary: str, session: Session, fallback: Callable[[Session, D.Screen], None]
) -> bool:
    """Show ``widget`` with ``summary`` as its text; in a terminal, ``fallback`` instead.

    Returns True when the widget itself was shown.
    """
    from IPython.core.getipython import get_ipython

    ip = get_ipython()
    if ip is None:  # plain Python: nothing can show a widget
        print(summary)
        return False
    screen = D.Screen(ip)
    if not screen.rich:
        fallback(session, screen)
        return False
    screen.show({**widget._repr_mimebundle_(), "text/plain": summary})
    return True
