"""httpcore's network streams on the asyncio loop itself, without anyio in between.

httpx's async transport reaches its sockets through anyio, whose cancel scopes, checks and
stream wrappers cost more CPU per request than the HTTP exchange itself; our runtime loop
is always asyncio, so `use_asyncio` gives httpx's own transport (pooling, HTTP/1.1, TLS
settings, exception mapping) a backend that talks to the loop's transports directly.
Errors are httpcore's (`httpcore.ConnectError`, `httpcore.ReadTimeout`, ...), which httpx
maps to its own as usual, so the retry rules of `_http` hold.  TLS is the loop's
``start_tls`` with httpx's context (certificate and host name checked, SNI sent, ALPN as
httpcore sets it: HTTP/1.1 only); several addresses of a host are tried as anyio does
(happy eyeballs).  Proxies from the environment stay on httpx's own transports.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import sys
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx
from httpcore._synchronization import AsyncLock

READ_AHEAD = 256 * 1024  # bytes buffered before the socket stops being read
# Seconds before the next address of a host is tried beside a silent one (anyio's value):
# a dead IPv6 route must not cost the whole connect timeout.
HAPPY_EYEBALLS = 0.25
WRITE_BATCH = 64 * 1024  # bytes of small writes gathered before they go to the transport
SocketOption = Any  # httpcore's SOCKET_OPTION tuples


def use_asyncio(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client`` with its pool of direct connections on `AsyncioBackend`.

    Proxies from the environment keep httpx's own transports (TLS to a TLS proxy is
    anyio's business).  Should httpx's internals ever differ from what is expected here,
    ``client`` is left as it is: slower, never wrong (`backend` tells a test which it is).
    """
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if type(pool) is httpcore.AsyncConnectionPool and hasattr(pool, "_network_backend"):
        pool._network_backend = AsyncioBackend()  # read by every connection it opens
        create = _with_asyncio_locks(pool.create_connection)
        pool.create_connection = create  # type: ignore[method-assign,assignment]
    return client


Create = Callable[[httpcore.Origin], httpcore.AsyncConnectionInterface]


def _with_asyncio_locks(create: Create) -> Create:
    """``create`` whose connections lock with `_Lock` (their locks are never contended:
    one request at a time on an HTTP/1.1 connection), so a request takes three loop turns
    less."""

    def connection(origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        made = create(origin)
        if _fresh(getattr(made, "_request_lock", None)):
            made._request_lock = _RequestLock(made)  # type: ignore[attr-defined]
        return made

    return connection


def _fresh(lock: object) -> bool:
    """Whether ``lock`` is httpcore's own and was never taken (so it may be replaced)."""
    return type(lock) is AsyncLock and not getattr(lock, "_backend", True)


class _Lock:
    """httpcore's lock, on asyncio's: anyio's (httpcore's choice) yields to the loop even
    when free, a loop turn each time."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> _Lock:
        await self._lock.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class _RequestLock(_Lock):
    """A connection's request lock: the HTTP/1.1 connection made under it gets a `_Lock` too.

    httpcore makes that connection while holding this lock and takes its state lock just
    after, so on the way out is the one moment to swap it, still untouched.
    """

    def __init__(self, connection: httpcore.AsyncConnectionInterface) -> None:
        super().__init__()
        self._connection = weakref.ref(connection)

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
        http11 = getattr(self._connection(), "_connection", None)
        if isinstance(http11, httpcore.AsyncHTTP11Connection) and _fresh(
            getattr(http11, "_state_lock", None)
        ):
            http11._state_lock = _Lock()  # type: ignore[assignment]


def direct_transport(client: httpx.AsyncClient) -> httpx.AsyncBaseTransport | None:
    """``client``'s own transport, when no proxy from the environment is mounted beside it."""
    transport = getattr(client, "_transport", None)
    if getattr(client, "_mounts", None) or not isinstance(transport, httpx.AsyncBaseTransport):
        return None
    return transport


def backend(client: httpx.AsyncClient) -> Any:
    """The network backend of ``client``'s direct connections."""
    return getattr(
        getattr(getattr(client, "_transport", None), "_pool", None), "_network_backend", None
    )


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP and Unix connections made by the running asyncio loop."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connected stream to ``host:port``."""
        local = (local_address, 0) if local_address else None
        return await _connected(_create(host, port, local), timeout, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connected stream to the Unix socket at ``path``."""
        made = asyncio.get_running_loop().create_unix_connection(_Protocol, path)
        return await _connected(made, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Wait on the loop."""
        await asyncio.sleep(seconds)


async def _create(
    host: str, port: int, local: tuple[str, int] | None
) -> tuple[asyncio.BaseTransport, _Protocol]:
    """Connect, racing a host's addresses only when it has more than one.

    Python 3.11's happy-eyeballs race (asyncio.staggered) leaves a connected socket unclosed
    when it is cancelled at the wrong moment (a Ctrl-C while connecting); one address has
    nothing to race, and the plain path closes its socket on cancellation.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys((family, str(address[0])) for family, *_, address in infos))
    if len(addresses) == 1:
        ((family, ip),) = addresses
        return await loop.create_connection(_Protocol, ip, port, family=family, local_addr=local)
    return await loop.create_connection(
        _Protocol, host, port, local_addr=local, happy_eyeballs_delay=HAPPY_EYEBALLS
    )


async def _connected(
    made: Any, timeout: float | None, socket_options: Iterable[SocketOption] | None
) -> Stream:
    try:
        transport, protocol = await asyncio.wait_for(made, timeout)
    except asyncio.TimeoutError:
        raise httpcore.ConnectTimeout("timed out while connecting") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
    sock = transport.get_extra_info("socket")
    for option in socket_options or ():
        sock.setsockopt(*option)
    return Stream(protocol)


class _Protocol(asyncio.Protocol):
    """Bytes received and flow control for one connection, with futures to wait on."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False  # the peer sent EOF or the connection is lost
        self.error: Exception | None = None
        self.paused = False  # writing: the transport's buffer is full
        self.held = False  # reading: paused until `Stream.read` takes some
        self.unsent: list[bytes] = []  # written in this loop step, not yet given to transport
        self.unsent_size = 0
        self._reading: asyncio.Future[None] | None = None
        self._writing: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_AHEAD and self.transport is not None and not self.held:
            self.held = True
            self.transport.pause_reading()  # resumed by `Stream.read`
        _wake(self._reading)

    def eof_received(self) -> bool | None:
        self.closed = True
        _wake(self._reading)
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed, self.error = True, exc
        _wake(self._reading)
        _wake(self._writing)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        _wake(self._writing)

    def gather(self, data: bytes) -> None:
        """Queue ``data``: what is written in one loop step goes to the transport at once.

        httpcore writes a request's head and body apart; sent together they are one
        segment and one system call instead of two.
        """
        self.unsent.append(data)
        self.unsent_size += len(data)
        if len(self.unsent) == 1:
            asyncio.get_running_loop().call_soon(self.flush)
        if self.unsent_size >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Give what `gather` queued to the transport (dropped once it is closing)."""
        if not self.unsent:
            return
        data = self.unsent[0] if len(self.unsent) == 1 else b"".join(self.unsent)
        self.unsent.clear()
        self.unsent_size = 0
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def readable(self) -> asyncio.Future[None]:
        self._reading = asyncio.get_running_loop().create_future()
        return self._reading

    def writable(self) -> asyncio.Future[None]:
        self._writing = asyncio.get_running_loop().create_future()
        return self._writing


class Stream(httpcore.AsyncNetworkStream):
    """One connection as httpcore reads and writes it."""

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` once the peer has closed."""
        p = self._protocol
        p.flush()  # a request is read after it is written: it goes out before we wait
        while not p.buffer and not p.closed:
            await _wait(p.readable(), timeout, httpcore.ReadTimeout)
        if p.buffer:
            data = bytes(p.buffer[:max_bytes])
            del p.buffer[:max_bytes]
            if p.held and len(p.buffer) <= READ_AHEAD and p.transport is not None:
                p.held = False
                p.transport.resume_reading()
            return data
        if p.error is not None:
            raise httpcore.ReadError(str(p.error) or type(p.error).__name__) from p.error
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer`` (with whatever else is written in this loop step), waiting while
        the transport's own buffer is full."""
        p = self._protocol
        if not buffer:
            return
        if p.transport is None or p.transport.is_closing():
            raise httpcore.WriteError(str(p.error or "the connection is closed"))
        p.gather(buffer)
        while p.paused and not p.closed:
            await _wait(p.writable(), timeout, httpcore.WriteTimeout)
        if p.error is not None:
            raise httpcore.WriteError(str(p.error) or type(p.error).__name__) from p.error

    async def aclose(self) -> None:
        """Close the connection once what was written is sent (without waiting for the peer)."""
        self._protocol.flush()
        if self._protocol.transport is not None:
            self._protocol.transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """The same connection, now speaking TLS (the protocol object stays the same)."""
        p = self._protocol
        assert p.transport is not None
        p.flush()  # what was written before the handshake (a proxy's CONNECT) goes out plain
        loop = asyncio.get_running_loop()
        upgrade = loop.start_tls(p.transport, p, ssl_context, server_hostname=server_hostname)
        try:
            tls = await asyncio.wait_for(upgrade, timeout)
        except asyncio.TimeoutError:
            p.transport.close()
            raise httpcore.ConnectTimeout("timed out during the TLS handshake") from None
        except (OSError, ssl.SSLError) as exc:
            p.transport.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        assert isinstance(tls, asyncio.Transport)
        p.transport = tls
        return Stream(p)

    def get_extra_info(self, info: str) -> Any:
        """What httpcore asks of a stream: TLS object, addresses, socket, readability."""
        transport = self._protocol.transport
        if transport is None:
            return True if info == "is_readable" else None
        if info == "is_readable":  # an idle connection that is readable was closed by the peer
            p = self._protocol
            return p.closed or bool(p.buffer) or _readable(transport.get_extra_info("socket"))
        names = {"client_addr": "sockname", "server_addr": "peername"}
        return transport.get_extra_info(names.get(info, info))


async def _wait(
    waiter: asyncio.Future[None], timeout: float | None, error: type[Exception]
) -> None:
    """Await ``waiter``; after ``timeout`` seconds raise ``error`` instead."""
    if timeout is None:
        await waiter
        return
    timer = asyncio.get_running_loop().call_later(timeout, _expire, waiter, error)
    try:
        await waiter
    finally:
        timer.cancel()


def _expire(waiter: asyncio.Future[None], error: type[Exception]) -> None:
    if not waiter.done():
        waiter.set_exception(error("timed out"))


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _readable(sock: socket.socket | None) -> bool:
    """Whether the kernel holds data (or EOF) for ``sock``; a missing socket counts as EOF."""
    fd = sock.fileno() if sock is not None else -1
    if fd < 0:
        return True
    if sys.platform == "win32" or not hasattr(select, "poll"):
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
