"""The private loop thread: blocking calls and iteration from synchronous code."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tokenhot_jupyter._runtime import runtime


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
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


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
