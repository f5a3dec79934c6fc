"""The batch engine (`_batch.run_batch`) on fake jobs and a fake clock: no network, no waiting.

A fake gateway stands behind the jobs: a token bucket on the fake clock (its 429s), queued
failures, and a log of every attempt with how many were in flight, so each test checks
what a batch sent, in what order, how much at once, and when.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import selectors
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from tokenhot_jupyter import _batch
from tokenhot_jupyter._batch import BatchProgress, BatchRow, Limiter, run_batch
from tokenhot_jupyter._exceptions import (
    APITimeoutError,
    InvalidInputError,
    RateLimitError,
    ServerError,
    TokenhotError,
)
from tokenhot_jupyter._http import BACKOFF_CAP, is_throttle, throttles_raised
from tokenhot_jupyter._poll import Clock

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):
    """A selector that, with nothing ready, lets the time it would have waited pass at once."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0 if timeout is not None else None)
        if not ready and timeout:
            self.now += timeout
        return ready


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: whenever every task waits, the clock jumps ahead."""

    def __init__(self) -> None:
        self._virtual = _Selector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


class FakeTime:
    """The batch's clock on a `VirtualLoop`: sleeps take no real time, and overlap as they would."""

    def __init__(self) -> None:
        self.loop = VirtualLoop()
        self.sleeps: list[float] = []

    @property
    def now(self) -> float:
        return self.loop.time()

    def time(self) -> float:
        return self.loop.time()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(seconds)

    @property
    def clock(self) -> Clock:
        return Clock(time=self.time, sleep=self.sleep)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return self.loop.run_until_complete(coro)
        finally:
            self.loop.close()


@dataclass
class Attempt:
    row: int
    at: float
    in_flight: int
    outcome: str = ""


@dataclass
class FakeGateway:
    """Answers ``row`` after ``latency`` fake seconds, within a bucket of ``rate`` per second."""

    time: FakeTime
    rate: float = math.inf
    burst: float = 1.0
    latency: float = 0.0
    failures: dict[int, list[TokenhotError]] = field(default_factory=dict)
    retry_after: float | None = None
    capacity: int = 10**6  # more rows in flight than this: 503 system_cpu_overloaded
    attempts: list[Attempt] = field(default_factory=list)
    in_flight: int = 0
    _tokens: float = -1.0
    _filled: float = 0.0

    def _admit(self) -> bool:
        if math.isinf(self.rate):
            return True
        if self._tokens < 0:
            self._tokens = self.burst
        now = self.time.now
        self._tokens = min(self.burst, self._tokens + (now - self._filled) * self.rate)
        self._filled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def job(self, row: int) -> Callable[[], Any]:
        async def answer() -> str:
            self.in_flight += 1
            attempt = Attempt(row, self.time.now, self.in_flight)
            self.attempts.append(attempt)
            try:
                queued = self.failures.get(row)
                if queued:
                    attempt.outcome = "failed"
                    raise queued.pop(0)
                if self.in_flight > self.capacity:
                    attempt.outcome = "503"
                    raise ServerError("busy", status_code=503, code="system_cpu_overloaded")
                if not self._admit():
                    attempt.outcome = "429"
                    raise RateLimitError("429", status_code=429, retry_after=self.retry_after)
                await asyncio.sleep(self.latency)
                attempt.outcome = "answered"
                return f"answer {row}"
            finally:
                self.in_flight -= 1

        return answer

    def answered(self) -> list[int]:
        return [a.row for a in self.attempts if a.outcome == "answered"]


def _run(gateway: FakeGateway, rows: int, **kwargs: Any) -> list[BatchRow[str]]:
    jobs = [gateway.job(i) for i in range(rows)]
    return gateway.time.run(run_batch(jobs, clock=gateway.time.clock, **kwargs))


def _throttle(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError("Too many requests", status_code=429, retry_after=retry_after)


# --- order, concurrency, no duplicates ------------------------------------------------------


def test_every_row_is_answered_once_in_order_within_the_concurrency() -> None:
    gateway = FakeGateway(FakeTime(), latency=0.5)
    rows = _run(gateway, 200, concurrency=8)
    assert [r.result for r in rows] == [f"answer {i}" for i in range(200)]
    assert all(r.status == "answered" for r in rows)
    assert sorted(gateway.answered()) == list(range(200))  # each once
    assert max(a.in_flight for a in gateway.attempts) == 8


def test_rate_limited_rows_are_sent_again_and_answered_once() -> None:
    gateway = FakeGateway(FakeTime(), rate=20, burst=2, latency=0.05)
    rows = _run(gateway, 200, concurrency=8)
    assert all(r.ok for r in rows) and [r.index for r in rows] == list(range(200))
    assert sorted(gateway.answered()) == list(range(200))
    throttled = [a for a in gateway.attempts if a.outcome == "429"]
    assert throttled, "the bucket must have refused some"
    assert max(a.in_flight for a in gateway.attempts) <= 8


def test_the_batch_settles_near_the_gateways_rate() -> None:
    # The fake clock moves only by the batch's own sleeps and the answers' latency, so the
    # time it ends at is a property of the limiter, not of this machine.
    gateway = FakeGateway(FakeTime(), rate=50, burst=5, latency=0.01)
    _run(gateway, 1000, concurrency=8)
    assert sorted(gateway.answered()) == list(range(1000))
    ideal = 1000 / 50
    assert gateway.time.now <= 1.1 * ideal
    wasted = sum(a.outcome == "429" for a in gateway.attempts)
    assert wasted < 100


def test_an_overloaded_gateway_gets_fewer_rows_at_once() -> None:
    gateway = FakeGateway(FakeTime(), latency=1.0, capacity=3)
    rows = _run(gateway, 100, concurrency=8)
    assert all(r.ok for r in rows) and sorted(gateway.answered()) == list(range(100))
    overloaded = [a for a in gateway.attempts if a.outcome == "503"]
    assert overloaded and len(overloaded) < 50
    late = [a.in_flight for a in gateway.attempts[len(gateway.attempts) // 2 :]]
    assert sum(n <= 4 for n in late) > 0.8 * len(late)  # it settled near the capacity


def test_a_retry_after_holds_every_row_back() -> None:
    gateway = FakeGateway(FakeTime())
    gateway.failures[3] = [_throttle(retry_after=7.0)]
    rows = _run(gateway, 6, concurrency=1)
    assert all(r.ok for r in rows)
    first_429 = next(a for a in gateway.attempts if a.outcome == "failed")
    later = [a for a in gateway.attempts if a.at > first_429.at]
    assert later and all(a.at >= first_429.at + 7.0 for a in later)
    assert [a.row for a in gateway.attempts] == [0, 1, 2, 3, 3, 4, 5]


def test_throttles_with_no_answer_between_back_off_exponentially(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Limiter, "__post_init__", _no_jitter)
    gateway = FakeGateway(FakeTime())
    gateway.failures[0] = [_throttle() for _ in range(4)]
    rows = _run(gateway, 1, concurrency=1)
    assert rows[0].ok
    starts = [a.at for a in gateway.attempts]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == [1.0, 2.0, 4.0, 8.0]


def _no_jitter(self: Limiter) -> None:
    self.limit = self.limit or float(self.ceiling)
    self.jitter = lambda: 1.0


def test_endless_throttling_gives_up_and_leaves_the_rest_not_sent() -> None:
    gateway = FakeGateway(FakeTime())
    gateway.failures[1] = [_throttle() for _ in range(100)]
    rows = _run(gateway, 5, concurrency=1)
    assert rows[0].status == "answered"
    assert [r.status for r in rows[1:]] == ["not sent"] * 4
    assert isinstance(rows[1].error, RateLimitError)
    assert "in a row" in str(rows[1].error)
    # First slower and slower, then (nothing admitted lately) backing off, then giving up.
    assert sum(a.row == 1 for a in gateway.attempts) <= _batch.SAMPLE + _batch.MAX_STREAK
    assert gateway.time.now <= 10 * BACKOFF_CAP  # it gave up; it did not wait forever


def test_the_in_flight_limit_drops_on_throttles_and_grows_back() -> None:
    limiter = Limiter(8, lambda: 0.0)
    first, second = limiter.started(), limiter.started()
    assert limiter.throttled(first, None)
    assert limiter.slots == 6
    assert limiter.throttled(second, None) and limiter.slots == 6  # same wave: acted on once
    for _ in range(100):
        limiter.answered()
    assert limiter.slots == 8  # never above the ceiling


# --- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ServerError("HTTP 500", status_code=500),
        APITimeoutError("no complete answer"),
        ServerError("HTTP 503 model_not_found", status_code=503, code="model_not_found"),
    ],
    ids=["5xx", "timeout-after-send", "not-an-overload"],
)
def test_a_row_that_may_have_been_billed_fails_and_is_not_sent_again(error: TokenhotError) -> None:
    gateway = FakeGateway(FakeTime())
    gateway.failures[2] = [error]
    rows = _run(gateway, 5, concurrency=2)
    assert rows[2].status == "failed" and rows[2].error is error
    assert [r.status for r in rows if r.index != 2] == ["answered"] * 4
    assert sum(a.row == 2 for a in gateway.attempts) == 1


def test_an_overload_is_a_throttle() -> None:
    gateway = FakeGateway(FakeTime())
    gateway.failures[0] = [ServerError("overloaded", status_code=503, code="system_cpu_overloaded")]
    rows = _run(gateway, 2, concurrency=1)
    assert all(r.ok for r in rows)
    assert [a.row for a in gateway.attempts] == [0, 0, 1]


def test_a_refused_row_stops_new_rows_but_lets_running_ones_finish() -> None:
    gateway = FakeGateway(FakeTime(), latency=1.0)
    refusal = InvalidInputError("over budget")

    def before_send(index: int) -> None:
        if index == 5:
            raise refusal

    rows = _run(gateway, 10, concurrency=3, before_send=before_send)
    assert [r.status for r in rows[:5]] == ["answered"] * 5
    assert [r.status for r in rows[5:]] == ["not sent"] * 5
    assert all(r.error is refusal for r in rows[5:])
    assert sorted(gateway.answered()) == [0, 1, 2, 3, 4]


def test_settled_rows_are_not_run_and_come_back_in_place() -> None:
    gateway = FakeGateway(FakeTime())
    kept = {1: BatchRow(index=1, result="stored", reused=True)}
    rows = _run(gateway, 3, concurrency=2, settled=kept)
    assert [r.result for r in rows] == ["answer 0", "stored", "answer 2"]
    assert rows[1].status == "reused" and sorted(gateway.answered()) == [0, 2]


def test_a_bug_in_a_job_is_raised_not_kept_as_a_row() -> None:
    async def broken() -> str:
        raise KeyError("bug")

    time = FakeTime()
    with pytest.raises(KeyError):
        time.run(run_batch([broken], clock=time.clock))


def test_each_settled_row_is_reported_at_once_and_progress_adds_up() -> None:
    gateway = FakeGateway(FakeTime(), latency=1.0)
    gateway.failures[1] = [ServerError("HTTP 500", status_code=500)]
    seen: list[int] = []
    progress: list[BatchProgress] = []
    rows = _run(
        gateway,
        4,
        concurrency=2,
        on_row=lambda row: seen.append(row.index),
        on_progress=progress.append,
        measure=lambda result: (10, 0.5),
    )
    assert sorted(seen) == [0, 1, 2, 3] and rows[1].status == "failed"
    last = progress[-1]
    assert last.finished and last.done == 4 and last.answered == 3 and last.failed == 1
    assert last.tokens == 30 and last.cost == 1.5 and last.eta == 0.0
    assert max(p.running for p in progress) == 2


def test_an_interrupt_keeps_what_settled_and_stops_the_rest() -> None:
    gateway = FakeGateway(FakeTime(), latency=1.0)
    seen: list[int] = []

    async def main() -> None:
        jobs = [gateway.job(i) for i in range(20)]
        keep = seen.append
        batch = asyncio.ensure_future(
            run_batch(jobs, concurrency=2, clock=gateway.time.clock, on_row=lambda r: keep(r.index))
        )
        while len(seen) < 6:
            await asyncio.sleep(0.01)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch

    gateway.time.run(main())
    # The rows in flight at the interrupt came back and were kept: nothing paid is lost.
    assert sorted(seen) == list(range(len(seen))) and len(seen) == len(gateway.attempts)
    assert gateway.in_flight == 0  # the rows in flight came back (they were paid for)
    assert len(gateway.attempts) <= 8


@pytest.mark.parametrize("concurrency", [0, -1, 1000, 2.5, "8"])
def test_a_bad_concurrency_is_one_clear_error(concurrency: Any) -> None:
    with pytest.raises(InvalidInputError, match="concurrency"):
        asyncio.run(run_batch([], concurrency=concurrency))


# --- the connection inside a batch row ------------------------------------------------------


def _mock_client(replies: list[httpx.Response], sleeps: list[float]) -> Any:
    import tokenhot_jupyter as th

    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return replies.pop(0)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = th.AsyncClient(
        "sk-unitTESTkey0123456789abcdef",
        "https://gw.example",
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        live_models=False,
    )
    client.sent = sent  # type: ignore[attr-defined]
    return client


_OK = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}


@pytest.mark.parametrize(
    "throttle",
    [
        httpx.Response(429),
        httpx.Response(503, json={"error": {"message": "busy", "code": "system_cpu_overloaded"}}),
    ],
    ids=["429", "503-overloaded"],
)
def test_inside_a_batch_row_the_connection_raises_throttles_at_once(
    throttle: httpx.Response,
) -> None:
    sleeps: list[float] = []
    client = _mock_client([throttle, httpx.Response(200, json=_OK)], sleeps)

    async def in_a_row() -> None:
        with throttles_raised():
            await client.chat("hello", "gpt-5")

    with pytest.raises(TokenhotError) as caught:
        asyncio.run(in_a_row())
    assert is_throttle(caught.value)
    assert len(client.sent) == 1 and sleeps == []  # not slept on, not re-sent behind the batch
    assert asyncio.run(client.chat("hello", "gpt-5")).text == "hi"  # outside a row: as before


def test_the_connection_still_retries_what_never_left_this_machine() -> None:
    sleeps: list[float] = []
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=_OK)

    import tokenhot_jupyter as th

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = th.AsyncClient(
        "sk-unitTESTkey0123456789abcdef",
        "https://gw.example",
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        live_models=False,
    )

    async def in_a_row() -> str:
        with throttles_raised():
            return (await client.chat("hello", "gpt-5")).text

    assert asyncio.run(in_a_row()) == "hi" and calls == 2 and len(sleeps) == 1
