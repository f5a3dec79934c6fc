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
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)


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
        """Run ``coro`` on the private loop and wait for it (Ctrl-C / interrupt cancels it)."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("Use AsyncClient (await) inside tokenhot's own event loop.")
        future = self.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` from any event loop, running it on the private loop."""
        if self.in_loop_thread():
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Iterate an async generator from synchronous code, item by item."""
        try:
            while True:
                try:
                    yield self.run(_anext(agen))
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and self._loop is not None and self._loop.is_running():
                self.submit(aclose()).result(timeout=5)

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


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


runtime = Runtime()
atexit.register(runtime.close)
