"""The private loop thread: blocking calls, iteration from synchronous code, the hand-off.

Async sources are read ahead on the loop and taken in batches (`Handoff`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import signal
import sys
import threading
import time
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tokenhot_jupyter._runtime import _Job, runtime


async def _stream_with_slow_cleanup(waiting: threading.Event) -> AsyncIterator[int]:
    """Like an HTTP stream: its cleanup takes a while (closing the response)."""
    yield 1
    try:
        waiting.set()
        await asyncio.sleep(60)
        yield 2
    finally:
        await asyncio.sleep(0.1)  # long enough that an early aclose() lands in the middle


def _interrupt_main_when(event: threading.Event) -> threading.Thread:
    def send() -> None:
        event.wait(10)
        # The loop reads ahead, so the source may get here before the caller asks for the
        # item: the interrupt must land while the caller waits for it, as a person's would.
        while not _main_thread_waits_in("take"):
            time.sleep(0.001)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _main_thread_waits_in(function: str) -> bool:
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    while frame is not None:
        if frame.f_code.co_name == function and "_runtime" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGINT")
def test_ctrl_c_mid_item_is_a_plain_keyboard_interrupt() -> None:
    for _ in range(5):
        waiting = threading.Event()
        items = runtime.iterate(_stream_with_slow_cleanup(waiting))
        assert next(items) == 1
        sender = _interrupt_main_when(waiting)
        with pytest.raises(KeyboardInterrupt) as caught:
            next(items)
        sender.join()
        assert caught.value.__context__ is None  # nothing else went wrong on the way out


def test_a_cancelled_async_caller_lets_the_item_unwind_before_closing() -> None:
    async def main() -> None:
        waiting = threading.Event()
        items = runtime.aiterate(_stream_with_slow_cleanup(waiting))
        assert await items.__anext__() == 1
        pending = asyncio.ensure_future(items.__anext__())
        await asyncio.get_running_loop().run_in_executor(None, waiting.wait, 10)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await items.aclose()  # type: ignore[attr-defined]

    for _ in range(5):
        asyncio.run(main())


def test_an_iterator_dropped_on_the_loop_thread_closes_without_blocking_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = threading.Event()
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    async def stream() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.set()

    items = [runtime.iterate(stream())]
    assert next(items[0]) == 1

    async def drop_last_reference() -> None:
        items.clear()  # the garbage collector finalizes it here, on the loop thread
        gc.collect()

    runtime.run(drop_last_reference())
    assert closed.wait(10) and unraisable == []


# --- the hand-off: read ahead, taken in batches ----------------------------------------------

WAIT = 10.0  # seconds a test waits for the loop thread before it fails


async def numbers(n: int, ended: threading.Event | None = None) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i
    if ended is not None:
        ended.set()


def test_the_source_is_read_ahead_while_the_caller_takes_nothing() -> None:
    ended = threading.Event()
    items = runtime.iterate(numbers(50, ended))
    assert next(items) == 0
    assert ended.wait(WAIT), "the loop waited for the caller to ask for each item"
    assert list(items) == list(range(1, 50))


def test_what_arrived_meanwhile_is_taken_in_one_batch() -> None:
    ended = threading.Event()
    with contextlib.closing(runtime.handoff(numbers(100, ended))) as stream:
        assert ended.wait(WAIT)
        assert stream.take(WAIT) == list(range(100))
        assert stream.take(WAIT) == [] and stream.done


def test_taking_until_the_end_gathers_everything_that_came() -> None:
    with contextlib.closing(runtime.handoff(numbers(30))) as stream:
        assert stream.take(WAIT, first=False) == list(range(30)) and stream.done


def test_a_timeout_returns_what_there_is_and_the_stream_goes_on() -> None:
    release = threading.Event()

    async def slow() -> AsyncIterator[str]:
        yield "a"
        await asyncio.to_thread(release.wait, WAIT)
        yield "b"

    with contextlib.closing(runtime.handoff(slow())) as stream:
        assert stream.take(WAIT) == ["a"]
        assert stream.take(0.01, first=False) == [] and not stream.done
        release.set()
        assert stream.take(WAIT, first=False) == ["b"] and stream.done


def test_the_sources_error_comes_after_its_items() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise ValueError("broken")

    with contextlib.closing(runtime.handoff(failing())) as stream:
        assert stream.take(WAIT, first=False) == [1, 2] and not stream.done
        with pytest.raises(ValueError, match="broken"):
            stream.take(WAIT)
        assert stream.done
    with pytest.raises(ValueError, match="broken"):
        list(runtime.iterate(failing()))


def test_closing_stops_the_source_and_waits_until_it_has_unwound() -> None:
    cleaned = threading.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            while True:
                await asyncio.sleep(0.001)
                yield 1
        finally:
            await asyncio.sleep(0.05)  # cleanup that itself awaits
            cleaned.set()

    stream = runtime.handoff(endless())
    assert stream.take(WAIT) != []
    stream.close()
    assert cleaned.is_set() and stream.done
    items = runtime.iterate(endless())
    next(items)
    cleaned.clear()
    items.close()  # an iterator given up early stops its source
    assert cleaned.is_set()


def test_handing_off_from_the_loop_itself_is_refused() -> None:
    async def inside() -> None:
        with pytest.raises(RuntimeError, match="AsyncClient"):
            runtime.handoff(numbers(1))

    runtime.run(inside())


# --- jobs: a coroutine any thread can stop ---------------------------------------------------


def _hold_loop() -> threading.Event:
    """Keep the private loop busy until the returned event is set (what is sent meanwhile
    runs in one loop turn, in order)."""
    release, held = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        release.wait(10)

    runtime.loop.call_soon_threadsafe(hold)
    assert held.wait(10)
    return release


def test_a_job_stopped_before_its_first_step_never_runs_and_is_cancelled() -> None:
    ran = []

    async def work() -> None:
        ran.append(True)

    coro = work()
    assert isinstance(coro, types.CoroutineType)
    job = _Job(runtime.loop, coro)
    release = _hold_loop()
    job.start()
    job.stop()  # lands after the hand-over, before the task's first step
    release.set()
    with pytest.raises(concurrent.futures.CancelledError):
        job.future.result(10)
    assert ran == [] and coro.cr_frame is None  # closed, never awaited


def test_a_stopped_job_ends_only_once_its_coroutine_has_unwound() -> None:
    started, unwound = threading.Event(), []

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.05)
            unwound.append(True)

    job = _Job(runtime.loop, work())
    job.start()
    assert started.wait(10)
    job.stop()
    with pytest.raises(concurrent.futures.CancelledError):
        job.future.result(10)
    assert unwound == [True]


def test_a_jobs_outcome_reaches_the_caller() -> None:
    async def fail() -> None:
        raise ValueError("no")

    assert runtime.run(asyncio.sleep(0, "yes")) == "yes"
    with pytest.raises(ValueError, match="no"):
        runtime.run(fail())
