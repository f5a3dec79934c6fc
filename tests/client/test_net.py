"""httpx on `_net.AsyncioBackend`: what httpcore needs of a network stream, over loopback.

Small servers in threads stand in for the gateway where it must misbehave (close an idle
connection, stall, cut a body short); TLS uses a throwaway certificate made by openssl.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tokenhot_jupyter import _net
from tokenhot_jupyter._runtime import runtime

T = TypeVar("T")
Handler = Callable[[socket.socket], None]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Server(socketserver.ThreadingTCPServer):
    """Runs ``handler`` on every accepted connection; counts them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls, self.connections = handler, tls, 0
        super().__init__(("127.0.0.1", 0), socketserver.BaseRequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        try:
            with self.tls.wrap_socket(request, server_side=True) if self.tls else request as sock:
                self.handler(sock)
        except OSError:  # a client that refused the certificate, or hung up
            pass

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}/"


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(handler: Handler, tls: ssl.SSLContext | None = None) -> Server:
        server = Server(handler, tls)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def read_request(sock: socket.socket) -> bool:
    """Read one request head (our requests here have no body); False at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        data += chunk
    return True


def keep_alive(sock: socket.socket) -> None:
    while read_request(sock):
        sock.sendall(OK)


def on_loop(work: Callable[[httpx.AsyncClient], Awaitable[T]], **options: Any) -> T:
    """Run ``work`` with a fresh client on the asyncio backend, on the runtime loop."""

    async def run() -> T:
        async with _net.use_asyncio(httpx.AsyncClient(**options)) as client:
            assert isinstance(_net.backend(client), _net.AsyncioBackend)
            return await work(client)

    return runtime.run(run())


def test_the_shared_client_runs_on_the_asyncio_backend() -> None:
    assert isinstance(_net.backend(runtime.http()), _net.AsyncioBackend)


def test_requests_reuse_one_kept_alive_connection(serve: Callable[..., Server]) -> None:
    server = serve(keep_alive)

    async def work(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get(server.url)).text for _ in range(5)]

    assert on_loop(work) == ["ok"] * 5 and server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_not_reused(
    serve: Callable[..., Server],
) -> None:
    closed = threading.Event()

    def once(sock: socket.socket) -> None:
        if read_request(sock):
            sock.sendall(OK)  # keep-alive by HTTP/1.1 default, but the server hangs up
        sock.close()
        closed.set()

    server = serve(once)

    async def work(client: httpx.AsyncClient) -> list[str]:
        first = (await client.get(server.url)).text
        assert closed.wait(5)
        time.sleep(0.05)  # the FIN is in our socket's queue before the next request
        return [first, (await client.get(server.url)).text]

    assert on_loop(work) == ["ok", "ok"] and server.connections == 2


def test_a_server_that_never_answers_is_a_read_timeout(serve: Callable[..., Server]) -> None:
    def silent(sock: socket.socket) -> None:
        read_request(sock)
        time.sleep(2)

    server = serve(silent)

    async def work(client: httpx.AsyncClient) -> None:
        await client.get(server.url)

    with pytest.raises(httpx.ReadTimeout):
        on_loop(work, timeout=httpx.Timeout(5, read=0.2))


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused

        async def work(client: httpx.AsyncClient) -> None:
            await client.get(f"http://127.0.0.1:{port}/")

        with pytest.raises(httpx.ConnectError):
            on_loop(work)


def test_what_is_written_goes_out_without_waiting_for_a_read(
    serve: Callable[..., Server],
) -> None:
    got_first = threading.Event()

    def upload(sock: socket.socket) -> None:
        data = b""
        while b"first" not in data:
            data += sock.recv(65536)
        got_first.set()  # the upload goes on only once this much has arrived
        while not data.endswith(b"0\r\n\r\n"):  # the chunked body's end
            data += sock.recv(65536)
        sock.sendall(OK)

    server = serve(upload)

    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        assert await asyncio.get_running_loop().run_in_executor(None, got_first.wait, 5)
        yield b"x" * 200_000  # more than a batch of writes
        yield b"last"

    async def work(client: httpx.AsyncClient) -> str:
        return (await client.post(server.url, content=body())).text

    assert on_loop(work) == "ok"


def test_a_body_cut_by_a_reset_is_a_transport_error(serve: Callable[..., Server]) -> None:
    def cut(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        time.sleep(0.05)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST, not FIN

    server = serve(cut)

    async def work(client: httpx.AsyncClient) -> None:
        await client.get(server.url)

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        on_loop(work)


def test_a_large_body_read_slowly_arrives_whole(serve: Callable[..., Server]) -> None:
    body = bytes(range(256)) * (8 * 4096)  # 8 MB: more than the read-ahead holds

    def big(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    server = serve(big)

    async def work(client: httpx.AsyncClient) -> bytes:
        parts = []
        async with client.stream("GET", server.url) as reply:
            async for chunk in reply.aiter_raw():
                parts.append(chunk)
                if len(parts) % 16 == 0:
                    await asyncio.sleep(0.001)  # a slow reader: the socket is paused meanwhile
        return b"".join(parts)

    assert on_loop(work) == body


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_goes_through_start_tls(serve: Callable[..., Server], tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server = serve(keep_alive, tls=server_side)

    async def work(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get(server.url)).text for _ in range(3)]

    trusted = ssl.create_default_context(cafile=str(cert))
    assert on_loop(work, verify=trusted) == ["ok"] * 3 and server.connections == 1

    async def untrusted(client: httpx.AsyncClient) -> None:
        await client.get(server.url)

    with pytest.raises(httpx.ConnectError):
        on_loop(untrusted)  # the certificate is checked
