"""The private loop's hand-off: async sources read ahead on the loop, taken in batches."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

import pytest

from tokenhot_jupyter._runtime import runtime

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
