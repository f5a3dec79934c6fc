"""One event loop thread and one pooled ``httpx.AsyncClient`` per process.

Every client (sync or async), magic and widget sends its requests through this loop. A
notebook kernel already runs its own event loop, so the sync API cannot call
``asyncio.run``; handing coroutines to a private loop thread works everywhere without
patching the user's loop (no nest_asyncio).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Generic, TypeVar

import httpx

T = TypeVar("T")

_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)
UNWIND_TIMEOUT = 5.0  # how long a cancelled coroutine may take to run its cleanup


class Runtime:
    """The private loop thread and the shared HTTP connection pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._http: httpx.AsyncClient | None = None
        self._pid = os.getpid()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running private loop, started on first use (and again after a fork)."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or not self._loop.is_running():
                self._start()
            assert self._loop is not None
            return self._loop

    def _start(self) -> None:
        self._pid = os.getpid()
        self._http = None
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="tokenhot-io", daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop

    def http(self) -> httpx.AsyncClient:
        """The shared pooled client; only for use on the private loop."""
        if self._http is None:
            self._http = httpx.AsyncClient(limits=_LIMITS, follow_redirects=True, trust_env=True)
        return self._http

    def in_loop_thread(self) -> bool:
        """True when called from the private loop's own thread."""
        return self._thread is threading.current_thread()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the private loop; returns a thread-safe future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and wait for it (Ctrl-C / interrupt cancels it).

        After an interrupt this returns only once ``coro`` has unwound, so nothing it was in
        the middle of (an async generator's ``__anext__``) is still running when the caller's
        own cleanup starts.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("Use AsyncClient (await) inside tokenhot's own event loop.")
        job = _Job(self.loop, coro)
        try:
            job.start()
            return job.future.result()
        except BaseException:
            if not job.future.done():  # interrupted, not failed: stop it and let it unwind
                job.stop()
                _wait_out(job.future)
            raise

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` from any event loop, running it on the private loop (as `run`)."""
        if self.in_loop_thread():
            return await coro
        job = _Job(self.loop, coro)
        done = asyncio.wrap_future(job.future)
        try:
            job.start()
            return await asyncio.shield(done)
        except BaseException:
            if not done.done():  # cancelled, not failed: stop it and let it unwind
                job.stop()
                await asyncio.wait([done], timeout=UNWIND_TIMEOUT)
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Iterate an async generator from synchronous code, item by item."""
        try:
            while True:
                try:
                    yield self.run(_anext(agen))
                except StopAsyncIteration:
                    return
        finally:
            self._close(agen)

    def _close(self, agen: AsyncIterator[Any]) -> None:
        # The garbage collector may finalize an abandoned iterator on the loop thread itself,
        # where waiting for the loop would hang it: there the close is only scheduled.
        loop = self._loop
        if not hasattr(agen, "aclose") or loop is None or not loop.is_running():
            return
        if self.in_loop_thread():
            loop.create_task(_aclose(agen))
            return
        with contextlib.suppress(concurrent.futures.TimeoutError):  # it goes on closing there
            self.submit(_aclose(agen)).result(timeout=UNWIND_TIMEOUT)

    async def aiterate(self, agen: AsyncIterator[T]) -> AsyncIterator[T]:
        """Iterate an async generator living on the private loop from another loop."""
        try:
            while True:
                try:
                    yield await self.call(_anext(agen))
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await self.call(aclose())

    def close(self) -> None:
        """Close the pool and stop the loop (at interpreter exit)."""
        loop, http = self._loop, self._http
        if loop is None or not loop.is_running():
            return
        if http is not None:
            with _suppress():
                asyncio.run_coroutine_threadsafe(http.aclose(), loop).result(timeout=2)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=2)
        if not loop.is_running():
            loop.close()
        self._loop = None


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


async def _aclose(agen: Any) -> None:
    await agen.aclose()


class _Job(Generic[T]):
    """A coroutine for the private loop that any thread can stop at any moment, then wait out.

    Built on ``call_soon_threadsafe`` rather than ``run_coroutine_threadsafe``: the latter's
    future reports "cancelled" at once, while the coroutine is still unwinding, and a stop
    that lands while the job is being handed over must not be lost. ``future`` ends only
    when the coroutine has.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> None:
        self._loop = loop
        self._coro = coro
        self._task: asyncio.Task[T] | None = None
        self.future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start(self) -> None:
        """Hand the coroutine to the loop."""
        self._loop.call_soon_threadsafe(self._begin)

    def stop(self) -> None:
        """Cancel the coroutine, whether it has started or not."""
        self._loop.call_soon_threadsafe(self._cancel)

    def _begin(self) -> None:
        self._task = self._loop.create_task(self._coro)
        self._task.add_done_callback(self._settle)

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        elif not self.future.done():  # stopped before start() got through: the loop is FIFO
            self._coro.close()
            self.future.cancel()

    def _settle(self, task: asyncio.Task[T]) -> None:
        if task.cancelled():
            self.future.cancel()
        elif (exc := task.exception()) is not None:
            self.future.set_exception(exc)
        else:
            self.future.set_result(task.result())


def _wait_out(future: concurrent.futures.Future[Any]) -> None:
    """Wait (bounded) for a stopped job to end.

    A second Ctrl-C meanwhile is absorbed: the first one is already on its way to the caller.
    """
    end = time.monotonic() + UNWIND_TIMEOUT
    while True:
        try:
            future.exception(timeout=max(0.0, end - time.monotonic()))
        except KeyboardInterrupt:
            if time.monotonic() < end:
                continue
        except (concurrent.futures.CancelledError, concurrent.futures.TimeoutError):
            pass
        return


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


runtime = Runtime()
atexit.register(runtime.close)
