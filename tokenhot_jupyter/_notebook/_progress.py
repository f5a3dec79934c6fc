"""One progress display for a whole batch: a bar in a notebook, a text bar in a terminal.

In a kernel the batch gets one output, rewritten in place at most every ``interval``
seconds (the last state always): an HTML ``<progress>`` bar (no script, no style sheet)
over one line of counts.  In terminal IPython the same line is written again after a
carriage return, at most every `TERMINAL_INTERVAL`, and ends with a line break.  The line:
done / total, failed, running, rows per second, tokens and estimated cost so far, time left.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .._batch import BatchProgress
from .._math import html_text
from . import _display as D

BAR = 24  # characters of the terminal bar
TERMINAL_INTERVAL = 0.5  # seconds: a terminal line is rewritten at most this often


def progress_line(progress: BatchProgress, what: str = "rows") -> str:
    """One line: ``120/200 rows · 3 failed · 8 running · 4.1 rows/s · … · 20 s left``."""
    parts = [f"{progress.done}/{progress.total} {what}"]
    if progress.reused:
        parts.append(f"{progress.reused} reused")
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    if progress.not_sent:
        parts.append(f"{progress.not_sent} not sent")
    if not progress.finished:
        parts.append(f"{progress.running} running")
    if progress.rate:
        parts.append(f"{progress.rate:.1f} {what}/s")
    if progress.tokens:
        parts.append(f"{progress.tokens:,} tokens")
    parts.append(D.money(progress.cost))
    if progress.throttled:
        parts.append(f"{progress.throttled} rate-limited (sent again)")
    if not progress.finished:
        parts.append(_left(progress.eta))
    return " · ".join(p for p in parts if p)


def _left(eta: float | None) -> str:
    if eta is None:
        return ""
    return f"{D.seconds(eta).replace('.00 s', ' s')} left" if eta >= 1 else "under a second left"


def progress_bundle(progress: BatchProgress, title: str, what: str = "rows") -> D.Bundle:
    """The notebook output: a title, an inert ``<progress>`` bar and the line, plus plain text."""
    line = progress_line(progress, what)
    value, total = progress.done, max(progress.total, 1)
    html = (
        f"<div><b>{html_text(title)}</b><br>"
        f"<progress value='{value}' max='{total}' style='width:100%'></progress><br>"
        f"<small>{html_text(line)}</small></div>"
    )
    return {"text/html": html, "text/plain": f"{title}\n{text_bar(progress)} {line}"}


def text_bar(progress: BatchProgress) -> str:
    """``[#########...............]``."""
    filled = round(BAR * progress.done / max(progress.total, 1))
    return "[" + "#" * filled + "." * (BAR - filled) + "]"


class ProgressView:
    """The batch's one output; `update` may be called from any thread, at any rate."""

    def __init__(
        self,
        screen: D.Screen,
        title: str,
        total: int,
        interval: float,
        *,
        what: str = "rows",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.screen, self.title, self.what, self._clock = screen, title, what, clock
        self.last: BatchProgress = BatchProgress(total=total)
        self.live: D.Live | None = None
        if screen.rich:
            self.live = D.Live(screen, progress_bundle(self.last, title, what), interval, clock)
        else:
            screen.write(title + "\n")
        self._written = -float("inf")
        self._width = 0

    def update(self, progress: BatchProgress) -> None:
        """Show ``progress`` if an update is due (the newest is kept for `finish`)."""
        self.last = progress
        if self.live is not None:
            if self.live.due_in() <= 0:  # else the bundle is not worth making
                self.live.send(progress_bundle(progress, self.title, self.what))
        elif self._clock() - self._written >= TERMINAL_INTERVAL:
            self._write(progress)

    def finish(self, progress: BatchProgress | None = None) -> None:
        """The final state, whether or not an update is due."""
        progress = progress or self.last
        self.last = progress
        if self.live is not None:
            self.live.update(progress_bundle(progress, self.title, self.what), final=True)
        else:
            self._write(progress)
            self.screen.write("\n")

    def _write(self, progress: BatchProgress) -> None:
        text = f"{text_bar(progress)} {progress_line(progress, self.what)}"
        pad = " " * max(0, self._width - len(text))  # a shorter line hides the longer one
        self.screen.write(f"\r{text}{pad}")
        self._width, self._written = len(text), self._clock()
