"""The one video poll loop, on a fake clock: its schedule, hints, deadline, renewals."""

from __future__ import annotations

import asyncio

import pytest

from tokenhot_jupyter import _exceptions as E
from tokenhot_jupyter._poll import Clock, Look, Polled, Renew, beat_of, on_beat, poll
from tokenhot_jupyter._types import VideoStatus, VideoTask


class FakeTime:
    """A clock that moves only when the loop sleeps, noting every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> Clock:
        return Clock(time=self.time, sleep=self.sleep)


def task(status: VideoStatus = "running", hint: float | None = None) -> VideoTask:
    return VideoTask("task_x", "sora-2", status, 50, poll_after=hint)


def answers(*items: VideoTask | None) -> tuple[list[int], Look]:
    """A `look` that gives ``items`` in turn (None: a poll that failed), and its call count."""
    calls = [0]
    given = iter(items)

    async def look() -> VideoTask | None:
        calls[0] += 1
        return next(given)

    return calls, look


def run(
    *items: VideoTask | None,
    interval: float = 10.0,
    deadline: float = 1800.0,
    lead: tuple[float, ...] = (),
    renew: Renew | None = None,
) -> tuple[Polled, FakeTime, int]:
    fake = FakeTime()
    calls, look = answers(*items)
    polled = asyncio.run(
        poll(look, interval=interval, deadline=deadline, clock=fake.clock(), lead=lead, renew=renew)
    )
    return polled, fake, calls[0]


def test_lead_delays_then_the_interval() -> None:
    polled, fake, calls = run(task(), task(), task(), task("succeeded"), lead=(0.0, 5.0))
    assert polled.ending == "done" and polled.task == task("succeeded") and calls == 4
    assert fake.sleeps == [5.0, 10.0, 10.0], "no sleep before an immediate first poll"


def test_a_lead_delay_never_exceeds_the_interval() -> None:
    _, fake, _ = run(task(), task("failed"), lead=(30.0,), interval=2.0)
    assert fake.sleeps == [2.0, 2.0]


def test_the_servers_hint_sets_the_next_sleep() -> None:
    _, fake, _ = run(task(hint=0.5), task(hint=40.0), task(), task("succeeded"), lead=(0.0,))
    assert fake.sleeps == [0.5, 40.0, 10.0]


def test_a_failed_poll_tries_again_after_the_interval_not_the_old_hint() -> None:
    polled, fake, calls = run(task(hint=1.0), None, task("succeeded"), lead=(0.0,))
    assert fake.sleeps == [1.0, 10.0] and calls == 3 and polled.ending == "done"


def test_the_deadline_stops_before_a_poll_that_would_pass_it() -> None:
    polled, fake, calls = run(*[task()] * 10, lead=(0.0,), interval=10.0, deadline=35.0)
    assert polled.ending == "timeout" and polled.task == task() and calls == 4
    assert fake.sleeps == [10.0, 10.0, 10.0] and polled.elapsed == 30.0


def test_a_fake_sleep_moves_the_deadline_even_on_the_real_time() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    calls, look = answers(*[task()] * 10)
    polled = asyncio.run(poll(look, interval=10.0, deadline=25.0, clock=Clock(sleep=sleep)))
    assert polled.ending == "timeout" and slept == [10.0, 10.0] and calls[0] == 2


def test_renew_runs_before_every_sleep_and_can_stop() -> None:
    asked: list[float] = []

    async def renew(delay: float) -> bool:
        asked.append(delay)
        return len(asked) < 3

    polled, _, calls = run(*[task()] * 10, lead=(5.0,), renew=renew)
    assert polled.ending == "stopped" and asked == [5.0, 10.0, 10.0] and calls == 2


def test_errors_from_look_end_the_loop() -> None:
    async def look() -> VideoTask:
        raise E.AuthenticationError("quota", status_code=401)

    with pytest.raises(E.AuthenticationError):
        asyncio.run(poll(look, interval=1.0, deadline=10.0, clock=FakeTime().clock()))


@pytest.mark.parametrize(
    ("interval", "beat"), [(10.0, 2.0), (3.0, 1.5), (2.0, 2.0), (0.5, 0.5), (0.01, 0.01)]
)
def test_beats_divide_the_interval(interval: float, beat: float) -> None:
    assert beat_of(interval) == pytest.approx(beat)
    wake = on_beat(1000.3, beat)
    assert wake >= 1000.3 and wake - 1000.3 < beat
    for _ in range(50):  # on the beat, the next poll is exactly one interval on
        later = on_beat(wake + interval, beat)
        assert later == pytest.approx(wake + interval)
        wake = later


def test_on_a_beat_polls_share_moments_and_keep_their_interval() -> None:
    fake = FakeTime()
    fake.now = 1000.3
    polls: list[float] = []

    async def late(seconds: float) -> None:  # a sleep may end a little after it was due
        fake.sleeps.append(seconds)
        fake.now += seconds + 0.003

    async def look() -> VideoTask | None:
        polls.append(fake.now)
        fake.now += 0.4  # a poll takes time: the schedule, not the poll, sets the pace
        return task("succeeded") if len(polls) == 4 else task()

    clock = Clock(time=fake.time, sleep=late)
    polled = asyncio.run(poll(look, interval=10.0, deadline=1800.0, clock=clock, beat=2.0))
    assert polled.ending == "done"
    expected = [1012.003, 1022.003, 1032.003, 1042.003]  # 1010.3 is on no beat: 1012 is
    assert polls == pytest.approx(expected, abs=1e-6)
