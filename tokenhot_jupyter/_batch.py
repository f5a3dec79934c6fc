"""Many requests as one batch: bounded, adaptive concurrency, rows back in input order.

**How fast.** At most ``concurrency`` rows are in flight.  A 429 or a 503
``system_*_overloaded`` proves nothing was billed (spec §2.3), so the row goes back to the
head of the queue and the batch slows down (`Limiter`): the in-flight limit halves, new
rows start no faster than the gateway accepted answers over the last `WINDOW` seconds, and
every row waits out a ``Retry-After`` (or, when throttles follow one another with no answer
between them, an exponential backoff with jitter).  Each answer speeds it up again (the
limit +1 per window of answers, the start rate +5 % a second), never past ``concurrency``.

**What is resent.** Only throttled rows.  A row that may have been billed (a timeout after
the request went out, a broken stream, another 5xx) fails and keeps its error; the others go
on.  Inside a row the connection raises its throttles at once (`throttles_raised`) instead
of sleeping and re-sending them itself: one row retrying alone would hide the limit from all
the others, which would keep hitting it.  What the connection still retries there is what
never left this machine (a connection that could not be opened).

**Interrupting.** No new row starts; the rows in flight, already paid for, get up to
`DRAIN` seconds to come back and be kept (so a re-run need not pay for them again), then
are cancelled.

**Stopping.** A ``before_send`` hook that raises refuses its row (the budget): it is not
sent, and no new row starts; rows in flight finish.  So does a run of `MAX_STREAK`
throttles with no answer between them.  Rows never sent come back "not sent" with the reason.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from ._exceptions import (
    APIStatusError,
    InvalidInputError,
    RateLimitError,
    SchemaMismatch,
    TokenhotError,
)
from ._http import BACKOFF_CAP, RETRY_AFTER_CAP, is_throttle, throttles_raised
from ._poll import REAL_CLOCK, Clock
from ._runtime import UNWIND_TIMEOUT
from ._schema import Schema
from ._store._answers import (
    Answers,
    Stored,
    answer_key,
    chat_body,
    chat_result,
    error_body,
    error_from,
    image_body,
    image_result,
)
from ._types import ChatResult, ImageResult

log = logging.getLogger("tokenhot_jupyter")

T = TypeVar("T")
Job = Callable[[], Awaitable[T]]
Status = Literal["answered", "reused", "failed", "not sent"]

DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 256  # the connection pool holds 100; more in flight only queue there
WINDOW = 2.0  # seconds over which the admitted rate is measured ...
SAMPLE = 20  # ... or this many starts, when they took longer
DECREASE = 0.8  # a throttle caps the start rate at this share of the rate the gateway took
RECOVERY = SAMPLE  # rows: the start rate is back at its peak after this many rows' time ...
RECOVERY_TIME = 2.0  # ... or this many seconds, whichever is longer
MIN_RATE = 0.5  # rows per second: the start rate never drops below this
MIN_SPAN = 0.01  # seconds: the shortest span a send rate is measured over
BACKOFF = 1.0  # seconds before the second throttle in a row; doubles, up to BACKOFF_CAP
MAX_STREAK = 8  # throttles in a row with no answer between them: the batch gives up
DRAIN = 0.8 * UNWIND_TIMEOUT  # seconds an interrupted batch waits for the rows in flight


@dataclass(frozen=True, kw_only=True)
class BatchRow(Generic[T]):
    """One row of a batch: its result, or the error that stopped it (see `status`)."""

    index: int
    result: T | None = None
    error: TokenhotError | None = None
    reused: bool = False  # from the resume store: not sent this time
    sent: bool = False  # went out in this run (throttled attempts are not counted)

    @property
    def ok(self) -> bool:
        """True when the row has a result."""
        return self.error is None

    @property
    def status(self) -> Status:
        """``answered``, ``reused`` (stored earlier), ``failed`` or ``not sent``."""
        if self.error is None:
            return "reused" if self.reused else "answered"
        return "failed" if self.sent or self.reused else "not sent"

    def unwrap(self) -> T:
        """The result; raises the row's error when it has none."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass(frozen=True, kw_only=True)
class BatchProgress:
    """Where a batch stands: counts, speed, spend so far and an estimate of the time left."""

    total: int
    answered: int = 0
    reused: int = 0
    failed: int = 0
    not_sent: int = 0
    running: int = 0
    throttled: int = 0  # 429s and overloads met so far (each row was sent again)
    limit: int = 0  # the in-flight limit now
    elapsed: float = 0.0
    tokens: int = 0
    cost: float | None = None  # estimated USD of the answers so far; None: none priced
    finished: bool = False

    @property
    def done(self) -> int:
        """Rows settled: answered, reused, failed or refused."""
        return self.answered + self.reused + self.failed + self.not_sent

    @property
    def left(self) -> int:
        """Rows not settled yet (running or waiting)."""
        return self.total - self.done

    @property
    def rate(self) -> float:
        """Rows answered or failed per second, since the first was sent."""
        sent = self.answered + self.failed
        return sent / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate; None before the first row settles."""
        if self.left == 0:
            return 0.0
        return self.left / self.rate if self.rate > 0 else None


# --- the limiter -----------------------------------------------------------------------------


@dataclass
class Ticket:
    """One start of a row: when, in which wave, and whether the gateway throttled it."""

    at: float
    epoch: int
    throttled: bool = False


@dataclass
class Limiter:
    """How many rows may be in flight and how soon the next may start; learns from throttles.

    Until the first throttle rows start as fast as the in-flight limit lets them.  A
    throttle halves the in-flight limit and caps the start rate at `DECREASE` times the rate
    the gateway admitted rows at over the last `WINDOW` (rows sent minus rows throttled: a
    throttle comes back at once, so this needs no answer to have arrived).  The cap then
    grows back along a cubic (as CUBIC does, and the AWS SDKs' adaptive retry mode): quickly up
    to that rate, slowly past it, faster once nothing throttles; the limit grows by one row
    per answer.  A throttle acts once per wave: rows sent before the last slow-down carry an
    older epoch, and their throttles only add their ``Retry-After``.  When the gateway
    admitted nothing over the window, every row also waits: 1 s, 2 s, 4 s … with jitter.
    """

    ceiling: int
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.5, 1.0))
    limit: float = 0.0
    rate: float = math.inf  # the cap on rows started per second
    epoch: int = 0
    streak: int = 0  # waves in a row in which the gateway admitted nothing
    resume_at: float = -math.inf  # no row starts before this (Retry-After, backoff)
    _next_start: float = -math.inf
    _tickets: deque[Ticket] = field(default_factory=deque)  # the last WINDOW's or SAMPLE starts
    _since: float | None = None  # the first start since the batch began or last paused
    _peak: float = 0.0  # the admitted rate the last throttle met
    _throttled_at: float = 0.0

    def __post_init__(self) -> None:
        self.limit = self.limit or float(self.ceiling)

    @property
    def slots(self) -> int:
        """Rows that may be in flight now."""
        return max(1, min(self.ceiling, int(self.limit)))

    def delay(self) -> float:
        """Seconds until the next row may start (0: now)."""
        now = self.clock()
        return max(0.0, self.resume_at - now, self._next_start - now)

    def started(self) -> Ticket:
        """A row starts now."""
        now = self.clock()
        ticket = Ticket(now, self.epoch)
        self._since = now if self._since is None else self._since
        self._tickets.append(ticket)
        while len(self._tickets) > SAMPLE and self._tickets[0].at < now - WINDOW:
            self._tickets.popleft()
        if math.isfinite(self.rate):
            # One interval of catch-up: a start the loop reached a little late is not lost.
            self._next_start = max(self._next_start, now - 1 / self.rate) + 1 / self.rate
        return ticket

    def answered(self) -> None:
        """A row got its answer: speed up."""
        self.streak = 0
        self.limit = min(float(self.ceiling), self.limit + 1)
        if math.isfinite(self.rate):
            self.rate = max(self.rate, self._cubic(self.clock() - self._throttled_at))

    def throttled(self, ticket: Ticket, retry_after: float | None) -> bool:
        """The row of ``ticket`` was throttled; False once `MAX_STREAK` waves came in a row."""
        now = self.clock()
        ticket.throttled = True
        if retry_after is not None:
            self._pause(now + min(retry_after, RETRY_AFTER_CAP))
        if ticket.epoch != self.epoch:
            return True  # this wave was already answered by a slow-down
        self.epoch += 1
        self._throttled_at = now
        self.limit = max(1.0, self.limit * DECREASE)
        admitted = self._admitted(now)
        self.streak = 0 if admitted else self.streak + 1
        if admitted:
            self._peak = admitted
            self.rate = max(MIN_RATE, admitted * DECREASE)
        elif retry_after is None:
            backoff = BACKOFF * 2 ** (self.streak - 1)
            self._pause(now + min(BACKOFF_CAP, backoff) * self.jitter())
        return self.streak < MAX_STREAK

    def _pause(self, until: float) -> None:
        if until > self.resume_at:
            self.resume_at = until
            self._tickets.clear()  # the rate measured before a pause says nothing after it
            self._since = None

    def _admitted(self, now: float) -> float:
        """Rows per second the gateway took lately (sent minus throttled): over the last
        `WINDOW`, or the last `SAMPLE` starts when they took longer."""
        admitted = sum(not t.throttled for t in self._tickets)
        if not admitted or self._since is None:
            return 0.0
        # At least the whole window (or all the time there was): rows that start together,
        # at once or as the answers before them come back together, are no fast rate.
        span = max(now - self._tickets[0].at, min(WINDOW, now - self._since), MIN_SPAN)
        return admitted / span

    def _cubic(self, since: float) -> float:
        """The start-rate cap ``since`` seconds after the last throttle.

        Back at the peak after `RECOVERY` rows' worth of time at it (at least `RECOVERY_TIME`),
        so a slow limit is probed as gently, per row, as a fast one.
        """
        k = max(RECOVERY_TIME, RECOVERY / self._peak)
        return self._peak * (1 + (1 - DECREASE) * ((since - k) / k) ** 3)


# --- running a batch ------------------------------------------------------------------------


Measure = Callable[[T], "tuple[int, float | None]"]  # (tokens, estimated USD) of a result


@dataclass
class _Tally:
    tokens: int = 0
    cost: float | None = None

    def add(self, tokens: int, cost: float | None) -> None:
        self.tokens += tokens
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


class _Run(Generic[T]):
    """One run of `run_batch`: the queue, the rows in flight and what has settled."""

    def __init__(
        self,
        jobs: Sequence[Job[T]],
        settled: Mapping[int, BatchRow[T]],
        *,
        concurrency: int,
        clock: Clock,
        before_send: Callable[[int], None] | None,
        on_row: Callable[[BatchRow[T]], None] | None,
        on_progress: Callable[[BatchProgress], None] | None,
        measure: Measure[T] | None,
    ) -> None:
        self.jobs, self.clock = jobs, clock
        self.rows: dict[int, BatchRow[T]] = {}
        self.counts: collections.Counter[Status] = collections.Counter()
        for row in settled.values():
            self._put(row)
        self.queue = deque(i for i in range(len(jobs)) if i not in self.rows)
        self.limiter = Limiter(concurrency, clock.time)
        self.running: dict[int, asyncio.Task[None]] = {}
        self.before_send, self.on_row = before_send, on_row
        self.on_progress, self.measure = on_progress, measure
        self.stopped: TokenhotError | None = None  # why no new row starts
        self.crashed: BaseException | None = None  # a bug in a job: the batch stops with it
        self.throttles = 0
        self.started_at: float | None = None
        self.tally = _Tally()
        self.woken = asyncio.Event()

    async def run(self) -> list[BatchRow[T]]:
        self.report()
        try:
            while (self.queue and self._sending) or self.running:
                await self._wait(self._start_due())
        except asyncio.CancelledError:
            await self._drain()
            raise
        finally:
            await self._cancel_running()
        if self.crashed is not None:
            raise self.crashed
        for index in self.queue:  # never started: the batch stopped first
            self._put(BatchRow(index=index, error=self.stopped))
        self.queue.clear()
        self.report(finished=True)
        return [self.rows[i] for i in range(len(self.jobs))]

    def _start_due(self) -> float | None:
        """Start every row that may start now; seconds until the next may (None: at a finish)."""
        before, delay = len(self.running), None
        while self.queue and self._sending and len(self.running) < self.limiter.slots:
            delay = self.limiter.delay()
            if delay > 0:
                break
            delay = None
            self._start(self.queue.popleft())
        if len(self.running) != before:
            self.report()  # rows went out: "running" changed
        return delay

    @property
    def _sending(self) -> bool:
        """False once the batch stopped (a refusal, throttles, a bug): no new row starts."""
        return self.stopped is None and self.crashed is None

    def _start(self, index: int) -> None:
        if self.before_send is not None:
            try:
                self.before_send(index)
            except TokenhotError as exc:  # refused (the budget): not sent, and nothing after it
                self._put(BatchRow(index=index, error=exc))
                self.stopped = exc
                self.report()
                return
        if self.started_at is None:
            self.started_at = self.clock.time()
        ticket = self.limiter.started()
        self.running[index] = asyncio.create_task(self._row(index, ticket))

    async def _row(self, index: int, ticket: Ticket) -> None:
        try:
            outcome = await self._attempt(index)
            self.running.pop(index, None)  # before it settles: the progress counts it done
            self._outcome(index, ticket, outcome)
        except Exception as exc:  # not a row's failure: a bug (ours, a callback's), never a row's
            self.crashed = self.crashed or exc
        finally:
            self.running.pop(index, None)
            self.woken.set()

    async def _attempt(self, index: int) -> tuple[T | None, TokenhotError | None]:
        try:
            with throttles_raised():
                return await self.jobs[index](), None
        except TokenhotError as exc:
            return None, exc

    def _outcome(
        self, index: int, ticket: Ticket, outcome: tuple[T | None, TokenhotError | None]
    ) -> None:
        result, error = outcome
        if error is None:
            self.limiter.answered()
            if self.measure is not None:
                self.tally.add(*self.measure(result))  # type: ignore[arg-type]
            self._settle(BatchRow(index=index, result=result, sent=True))
        elif not is_throttle(error):
            self._settle(BatchRow(index=index, error=error, sent=True))
        elif self._sending:
            self._throttled(index, ticket, error)
        else:  # throttled after the batch stopped: not billed, so a later run sends it
            self._settle(BatchRow(index=index, error=self.stopped or error))

    def _throttled(self, index: int, ticket: Ticket, exc: TokenhotError) -> None:
        self.throttles += 1
        retry_after = exc.retry_after if isinstance(exc, APIStatusError) else None
        if not self.limiter.throttled(ticket, retry_after):
            self.stopped = _gave_up(exc)
        self.queue.appendleft(index)  # first in line again: rows finish near input order
        self.report()

    def _put(self, row: BatchRow[T]) -> None:
        self.rows[row.index] = row
        self.counts[row.status] += 1  # each row settles once

    def _settle(self, row: BatchRow[T]) -> None:
        self._put(row)
        if self.on_row is not None:
            self.on_row(row)  # the resume store writes it now: a crash keeps it
        self.report()

    async def _wait(self, delay: float | None) -> None:
        """Until a row finishes, or ``delay`` seconds have passed."""
        if not self.running and delay is None:
            return
        self.woken.clear()
        waits: list[asyncio.Task[object]] = [asyncio.ensure_future(self.woken.wait())]
        if delay is not None:
            waits.append(asyncio.ensure_future(self.clock.sleep(delay)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _drain(self) -> None:
        """Interrupted: start nothing more, and give the rows in flight (they are paid for
        already) up to `DRAIN` seconds to come back and be kept; a second cancel ends it."""
        self.stopped = self.stopped or TokenhotError("The batch was interrupted.")
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=DRAIN)

    async def _cancel_running(self) -> None:
        """An interrupt: stop the rows in flight and let them unwind (settled ones are kept)."""
        tasks = list(self.running.values())
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)

    def report(self, *, finished: bool = False) -> None:
        if self.on_progress is None:
            return
        counts = self.counts
        elapsed = self.clock.time() - self.started_at if self.started_at is not None else 0.0
        self.on_progress(
            BatchProgress(
                total=len(self.jobs),
                answered=counts["answered"],
                reused=counts["reused"],
                failed=counts["failed"],
                not_sent=counts["not sent"],
                running=len(self.running),
                throttled=self.throttles,
                limit=self.limiter.slots,
                elapsed=elapsed,
                tokens=self.tally.tokens,
                cost=self.tally.cost,
                finished=finished,
            )
        )


def _gave_up(exc: TokenhotError) -> TokenhotError:
    return RateLimitError(
        f"The gateway refused {MAX_STREAK} times in a row with no answer between "
        f"(the batch backed off up to {BACKOFF_CAP:.0f} s): the rows left were not sent.",
        status_code=getattr(exc, "status_code", 429),
        hint="Run it again later; the answered rows are kept and only the rest are sent.",
    )


async def run_batch(
    jobs: Sequence[Job[T]],
    *,
    settled: Mapping[int, BatchRow[T]] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    clock: Clock = REAL_CLOCK,
    before_send: Callable[[int], None] | None = None,
    on_row: Callable[[BatchRow[T]], None] | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    measure: Measure[T] | None = None,
) -> list[BatchRow[T]]:
    """Run ``jobs`` (coroutine functions, one per row) as one batch; rows in input order.

    Rows in ``settled`` (reused answers, earlier failures) are not run.  ``before_send(i)``
    runs right before row ``i`` goes out; a TokenhotError from it refuses the row and stops
    new rows.  ``on_row`` gets each row as it settles; ``on_progress`` a `BatchProgress` at
    each change (both on the loop that runs the batch: keep them short).  ``measure`` gives
    a result's tokens and estimated cost for the progress.  Rows fail with TokenhotError
    only; any other exception is a bug and stops the batch.
    """
    check_concurrency(concurrency)
    run = _Run(
        jobs,
        settled or {},
        concurrency=concurrency,
        clock=clock,
        before_send=before_send,
        on_row=on_row,
        on_progress=on_progress,
        measure=measure,
    )
    return await run.run()


def check_concurrency(concurrency: int) -> None:
    """One clear error for a concurrency that is not a whole number in range."""
    whole = isinstance(concurrency, int) and not isinstance(concurrency, bool)
    if not whole or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInputError(
            f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, not {concurrency!r}."
        )


# --- planned batches: the resume store -------------------------------------------------------

Encode = Callable[[T, Answers], dict[str, Any]]  # a result as the store keeps it
Decode = Callable[[Mapping[str, Any], Answers], "T | None"]  # and back (None: not usable)


@dataclass(frozen=True, kw_only=True)
class Codec(Generic[T]):
    """How one kind of result goes into the resume store and comes back."""

    kind: str
    encode: Encode[T]
    decode: Decode[T]


CHAT = Codec[ChatResult](kind="chat", encode=chat_body, decode=chat_result)
IMAGE = Codec[ImageResult](kind="image", encode=image_body, decode=image_result)


def parsed(codec: Codec[ChatResult], schema: Schema) -> Codec[ChatResult]:
    """``codec`` whose answers come back with their schema's object in ``.data`` again."""

    def decode(body: Mapping[str, Any], store: Answers) -> ChatResult | None:
        result = codec.decode(body, store)
        if result is not None:
            try:
                result.data = schema.parse(result.text)
            except SchemaMismatch:  # it matched when it was kept; if not now, ask again
                return None
        return result

    return Codec(kind=codec.kind, encode=codec.encode, decode=decode)


def usage_tokens(result: ChatResult | ImageResult) -> tuple[int, float | None]:
    """A result's tokens for the progress (its cost is the notebook's to price)."""
    return (result.usage.total_tokens if result.usage else 0), None


@dataclass(kw_only=True)
class Batch(Generic[T]):
    """A batch planned but not sent: which rows the resume store answers, and the rest.

    ``settled`` holds the rows found in the store: answers (``reused``) and, unless the
    batch was planned with ``retry_failed``, earlier failures, which keep their error and
    are not paid for again.  `run` sends every other row and keeps each in the store as it
    finishes.
    """

    model: str
    codec: Codec[T]
    keys: list[str]
    jobs: list[Job[T]]
    settled: dict[int, BatchRow[T]] = field(default_factory=dict)
    store: Answers | None = None
    measure: Measure[T] | None = None
    _warned: bool = False

    @property
    def total(self) -> int:
        """How many rows the batch has."""
        return len(self.jobs)

    @property
    def to_send(self) -> list[int]:
        """The rows `run` sends: those without a stored answer (or kept failure)."""
        return [i for i in range(self.total) if i not in self.settled]

    @property
    def reused(self) -> int:
        """Rows answered from the store."""
        return sum(row.ok for row in self.settled.values())

    @property
    def failed_before(self) -> int:
        """Rows whose earlier failure is kept (not sent again without ``retry_failed``)."""
        return sum(not row.ok for row in self.settled.values())

    async def run(
        self,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Clock = REAL_CLOCK,
        before_send: Callable[[int], None] | None = None,
        on_row: Callable[[BatchRow[T]], None] | None = None,
        on_progress: Callable[[BatchProgress], None] | None = None,
        measure: Measure[T] | None = None,
    ) -> list[BatchRow[T]]:
        """Send the rows left, in input order (see `run_batch` for the arguments)."""

        def settled(row: BatchRow[T]) -> None:
            self._keep(row)
            if on_row is not None:
                on_row(row)

        return await run_batch(
            self.jobs,
            settled=self.settled,
            concurrency=concurrency,
            clock=clock,
            before_send=before_send,
            on_row=settled,
            on_progress=on_progress,
            measure=measure or self.measure,
        )

    def _keep(self, row: BatchRow[T]) -> None:
        """Store a row that went out (a refused or unsent row has nothing to keep)."""
        if self.store is None or not row.sent:
            return
        key, kind = self.keys[row.index], self.codec.kind
        try:
            if row.error is None:
                body = self.codec.encode(row.result, self.store)  # type: ignore[arg-type]
                self.store.put(key, kind, self.model, ok=True, body=body)
            else:
                self.store.put(key, kind, self.model, ok=False, body=error_body(row.error))
        except TokenhotError as exc:  # the answer itself is fine: only resuming is lost
            if not self._warned:
                log.warning("batch rows are not kept for resuming: %s", exc)
                self._warned = True


def plan(
    *,
    model: str,
    codec: Codec[T],
    requests: Sequence[Mapping[str, Any]],
    jobs: list[Job[T]],
    store: Answers | None,
    retry_failed: bool = False,
    measure: Measure[T] | None = None,
) -> Batch[T]:
    """A `Batch` of ``jobs``, one per request, with what ``store`` already holds settled."""
    keys = [answer_key(codec.kind, model, request) for request in requests]
    batch = Batch(model=model, codec=codec, keys=keys, jobs=jobs, store=store, measure=measure)
    if store is not None:
        found = store.get(keys)
        for index, key in enumerate(keys):
            row = _stored_row(index, found.get(key), codec, store, retry_failed)
            if row is not None:
                batch.settled[index] = row
    return batch


def _stored_row(
    index: int, stored: Stored | None, codec: Codec[T], store: Answers, retry_failed: bool
) -> BatchRow[T] | None:
    if stored is None:
        return None
    if not stored.ok:
        return (
            None
            if retry_failed
            else BatchRow(index=index, error=error_from(stored.body), reused=True)
        )
    result = codec.decode(stored.body, store)
    return None if result is None else BatchRow(index=index, result=result, reused=True)


def batch_prompts(prompts: Any, *, chat: bool) -> list[Any]:
    """The prompts of a batch as a list, each checked; one clear error for the first bad one."""
    if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__iter__"):
        raise InvalidInputError(
            f"prompts must be a list of prompts, not {type(prompts).__name__}.",
            hint='Pass e.g. ["first prompt", "second prompt"].',
        )
    rows = list(prompts)
    if not rows:
        raise InvalidInputError("prompts is empty: there is nothing to send.")
    for index, prompt in enumerate(rows):
        _check_prompt(index, prompt, chat)
    return rows


def _check_prompt(index: int, prompt: Any, chat: bool) -> None:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidInputError(f"Prompt {index} is empty.", hint="Remove it or fill it in.")
        return
    is_messages = isinstance(prompt, (list, tuple)) and all(isinstance(m, Mapping) for m in prompt)
    if chat and is_messages and prompt:
        return
    wanted = "a string or a list of messages" if chat else "a string"
    raise InvalidInputError(
        f"Prompt {index} is {type(prompt).__name__}, not {wanted}.",
        hint="Convert each item first, e.g. [str(x) for x in items].",
    )
