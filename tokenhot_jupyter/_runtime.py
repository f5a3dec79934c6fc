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
from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any, Generic, TypeVar

import httpx

from ._net import use_asyncio

T = TypeVar("T")

_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)
UNWIND_TIMEOUT = 5.0  # how long a stopped stream may take to run its cleanup
_IN_LOOP = "Use AsyncClient (await) inside tokenhot's own event loop."


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
            self._http = use_asyncio(
                httpx.AsyncClient(limits=_LIMITS, follow_redirects=True, trust_env=True)
            )
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
            raise RuntimeError(_IN_LOOP)
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

    def iterate(self, agen: AsyncIterator[T]) -> Generator[T, None, None]:
        """Iterate an async generator from synchronous code, item by item.

        The loop reads ahead (`Handoff`): what arrived while the caller was busy is handed
        over in one go, not one loop round trip per item.
        """
        stream = self.handoff(agen)
        try:
            while items := stream.take():
                yield from items
        finally:
            stream.close()

    def handoff(self, agen: AsyncIterator[T]) -> Handoff[T]:
        """Start reading ``agen`` on the private loop into a buffer this thread takes from.

        The caller must `Handoff.close` it (``contextlib.closing``).
        """
        if self.in_loop_thread():  # taking would wait for the loop it blocks
            raise RuntimeError(_IN_LOOP)
        return Handoff(self.loop, agen)

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


class Handoff(Generic[T]):
    """An async iterator read on the private loop into a buffer that another thread empties.

    The loop never waits for the reader: items pile up while it is busy (rendering a long
    answer, say) and are taken in one batch, so a slow reader never slows the source, and
    a fast one costs a thread wake-up per wait instead of a loop round trip per item.  The
    source's error is raised by `take` once the items before it have been taken.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, source: AsyncIterator[T]) -> None:
        self._loop = loop
        self._pipe = _Pipe[T]()  # what the pump shares: it must not keep this object alive
        self._task: asyncio.Task[None] | None = None
        loop.call_soon_threadsafe(self._start, source)

    @property
    def done(self) -> bool:
        """True once the source has ended and all it gave (its error too) has been taken."""
        pipe = self._pipe
        with pipe.ready:
            return pipe.ended and not pipe.items and pipe.error is None

    def take(self, timeout: float | None = None, *, first: bool = True) -> list[T]:
        """The items that have arrived, in order; ``[]`` once the source is exhausted.

        (Or when ``timeout`` passes first: `done` tells the two apart.)

        Waits at most ``timeout`` seconds (``None``: no limit) for the first item when
        ``first``, otherwise for the source to end, gathering all that arrives meanwhile.
        """
        pipe = self._pipe
        with pipe.ready:
            pipe.eager = first
            pipe.ready.wait_for(pipe.has_items if first else pipe.has_ended, timeout)
            pipe.eager = True
            items, pipe.items = pipe.items, []
            if not items and pipe.ended and pipe.error is not None:
                error, pipe.error = pipe.error, None
                raise error
            return items

    def close(self) -> None:
        """Stop the source if it still runs, and wait (at most `UNWIND_TIMEOUT`) for it to unwind.

        A second interrupt meanwhile is absorbed: the first is already on its way.
        """
        if self._pipe.ended or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._stop)
        if _running_loop() is self._loop:  # finalized on the loop itself: it cannot wait
            return
        end = time.monotonic() + UNWIND_TIMEOUT
        while not self._pipe.ended and time.monotonic() < end:
            with contextlib.suppress(KeyboardInterrupt), self._pipe.ready:
                self._pipe.ready.wait_for(self._pipe.has_ended, end - time.monotonic())

    def _start(self, source: AsyncIterator[T]) -> None:
        self._task = self._loop.create_task(_pump(source, self._pipe))
        self._task.add_done_callback(self._pipe.end)

    def _stop(self) -> None:
        self._pipe.stopped = True
        if self._task is not None:
            self._task.cancel()


class _Pipe(Generic[T]):
    """The buffer between the pump on the loop and the thread that takes from it."""

    def __init__(self) -> None:
        self.ready = threading.Condition()
        self.items: list[T] = []
        self.error: BaseException | None = None
        self.ended = False
        self.stopped = False  # `Handoff.close` cancelled the pump
        self.eager = True  # wake the taker at each item (else only at the end)

    def has_items(self) -> bool:
        return bool(self.items) or self.ended

    def has_ended(self) -> bool:
        return self.ended

    def put(self, item: T) -> None:
        with self.ready:
            self.items.append(item)
            if self.eager:
                self.ready.notify()

    def end(self, task: asyncio.Task[None]) -> None:
        """The pump is done (also when it was cancelled before it began)."""
        with self.ready:
            if task.cancelled():  # by us, or by the loop shutting down: not a whole stream
                self.error = None if self.stopped else asyncio.CancelledError()
            else:
                self.error = task.exception()
            self.ended = True
            self.ready.notify_all()


async def _pump(source: AsyncIterator[T], pipe: _Pipe[T]) -> None:
    # However this ends (exhausted, failed, cancelled inside ``__anext__``), the source has
    # ended with it: nothing is left to close here.
    async for item in source:
        pipe.put(item)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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
        self._task: asyncio.Task[None] | None = None
        self._started = self._stopped = False
        self.future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start(self) -> None:
        """Hand the coroutine to the loop."""
        self._loop.call_soon_threadsafe(self._begin)

    def stop(self) -> None:
        """Cancel the coroutine, whether it has started or not."""
        self._loop.call_soon_threadsafe(self._cancel)

    def _begin(self) -> None:
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        """The coroutine, its outcome passed on as it ends (a done callback costs a loop turn)."""
        self._started = True
        if self._stopped:  # stopped between the hand-over and this first step
            self._coro.close()
            self.future.cancel()
            return
        try:
            result = await self._coro
        except asyncio.CancelledError:
            self.future.cancel()
            raise
        except Exception as exc:
            self.future.set_exception(exc)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: the loop stops on them
            self.future.set_exception(exc)
            raise
        else:
            self.future.set_result(result)

    def _cancel(self) -> None:
        self._stopped = True
        if self._started:
            assert self._task is not None
            self._task.cancel()
        elif self._task is None and not self.future.done():  # stopped before start() got through
            self._coro.close()
            self.future.cancel()


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
