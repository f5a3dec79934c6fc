"""The one video poll loop: when to look at a task again, and when to give up on it.

`Client.wait_video`, a kernel's background tasks and the server extension's takeover all
poll through `poll`; what each does with an answer is its ``look``.  Time comes from one
injectable `Clock`, so tests move time on instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._types import VideoTask

if TYPE_CHECKING:
    from ._http import Sleep

log = logging.getLogger("tokenhot_jupyter")
Look = Callable[[], Awaitable["VideoTask | None"]]  # None: no answer this time (try again)
Renew = Callable[[float], Awaitable[bool]]  # before each sleep of that length; False: stop
Ending = Literal["done", "timeout", "stopped"]


@dataclass(frozen=True)
class Clock:
    """Monotonic seconds and an async sleep: the real ones, or a test's fakes."""

    time: Callable[[], float] = time.monotonic
    sleep: Sleep = asyncio.sleep


REAL_CLOCK = Clock()


@dataclass(frozen=True)
class Polled:
    """How polling ended, the last task an answer showed, and the seconds it took."""

    ending: Ending
    task: VideoTask | None
    elapsed: float


async def poll(
    look: Look,
    *,
    interval: float,
    deadline: float,
    clock: Clock = REAL_CLOCK,
    lead: Sequence[float] = (),
    renew: Renew | None = None,
    beat: float = 0.0,
) -> Polled:
    """Call ``look`` until it shows a finished task, ``deadline`` is near, or ``renew`` says stop.

    Before poll n the loop sleeps ``lead[n]`` (never more than ``interval``), later polls
    ``interval`` apart; a task's own hint (``poll_after``: the server knows its refresh pace
    best) sets the sleep after its answer.  Polling stops while the next poll would fall
    past ``deadline`` seconds from the start; a fake sleep moves that on too.

    With a ``beat`` (see `on_beat`), each poll is moved on to the next whole multiple of it
    on the clock, and the next one is due ``delay`` after that moment, however long the
    poll took: the polls of many tasks then fall together, still ``interval`` apart.
    """
    started, slept = clock.time(), 0.0
    planned = iter(lead)
    delay = min(next(planned, interval), interval)
    last: VideoTask | None = None
    due = started  # on a beat: when the last poll was due (a sleep may end a little late)
    while True:
        if renew is not None and not await renew(delay):
            return Polled("stopped", last, max(clock.time() - started, slept))
        wait = delay
        if beat > 0:
            due = on_beat(max(due + delay, clock.time()), beat)
            wait = max(0.0, due - clock.time())
        if wait > 0:
            await clock.sleep(wait)
            slept += wait
        task = await look()
        delay = min(next(planned, interval), interval)
        if task is not None:
            log.debug("poll %s (%s): %s %d%%", task.id, task.model, task.status, task.progress)
            last = task
            if task.done:
                return Polled("done", task, max(clock.time() - started, slept))
            if task.poll_after is not None:
                delay = task.poll_after
        elapsed = max(clock.time() - started, slept)
        if elapsed + delay > deadline:
            return Polled("timeout", last, elapsed)


POLL_BEAT = 2.0  # seconds: at most this far apart, the moments polls of many tasks share


def beat_of(interval: float) -> float:
    """The largest fraction of ``interval`` up to `POLL_BEAT` (polls stay ``interval`` apart)."""
    return interval / math.ceil(interval / POLL_BEAT) if interval > 0 else 0.0


def on_beat(moment: float, beat: float) -> float:
    """``moment``, moved on to the next whole multiple of ``beat``.

    One wake-up of the loop then does the polls of several tasks at once, over connections
    kept warm, instead of each poll paying for its own.
    """
    if beat <= 0:
        return moment
    rest = (-moment) % beat
    return moment if rest > beat * (1 - 1e-9) else moment + rest  # on the beat already
