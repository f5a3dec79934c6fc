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


def test_concurrent_requests_share_a_few_connections(serve: Callable[..., Server]) -> None:
    server = serve(keep_alive)

    async def work(client: httpx.AsyncClient) -> list[str]:
        replies = await asyncio.gather(*(client.get(server.url) for _ in range(40)))
        pool = client._transport._pool  # type: ignore[attr-defined]
        for connection in pool.connections:  # their locks take no extra loop turn
            assert type(connection._request_lock) is _net._RequestLock
            assert type(connection._connection._state_lock) is _net._Lock
        return [reply.text for reply in replies]

    limits = httpx.Limits(max_connections=4)
    assert on_loop(work, limits=limits) == ["ok"] * 40 and server.connections <= 4


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


def test_an_address_that_never_answers_does_not_hold_up_the_next(
    serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(keep_alive)
    with socket.socket() as silent:  # a full accept queue drops every further SYN
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        queued = socket.create_connection(silent.getsockname())
        addresses = [silent.getsockname(), server.server_address]

        async def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
            assert host == "twice.test"  # a name with a dead address first, as IPv6 can be
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a) for a in addresses]

        monkeypatch.setattr(runtime.loop, "getaddrinfo", resolve)

        async def work(client: httpx.AsyncClient) -> str:
            return (await client.get(f"http://twice.test:{addresses[1][1]}/")).text

        try:
            assert on_loop(work, timeout=httpx.Timeout(10, connect=3)) == "ok"
        finally:
            queued.close()


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


def test_a_cancelled_request_closes_its_connection_and_the_pool_goes_on(
    serve: Callable[..., Server],
) -> None:
    hung_up = threading.Event()

    def stall(sock: socket.socket) -> None:
        read_request(sock)
        if sock.recv(1) == b"":  # waits until the client gives the connection up
            hung_up.set()

    stalled, fine = serve(stall), serve(keep_alive)

    async def work(client: httpx.AsyncClient) -> str:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.get(stalled.url), 0.2)
        return (await client.get(fine.url)).text

    assert on_loop(work) == "ok"
    assert hung_up.wait(5)


def test_a_body_ended_by_a_half_close_arrives_whole(serve: Callable[..., Server]) -> None:
    body = b"all of it " * 10_000

    def half_close(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)  # no length
        sock.shutdown(socket.SHUT_WR)  # FIN: the body ends here; we still read
        sock.recv(1)

    server = serve(half_close)

    async def work(client: httpx.AsyncClient) -> bytes:
        return (await client.get(server.url)).content

    assert on_loop(work) == body


def test_an_answer_before_the_upload_is_read_is_the_reply(serve: Callable[..., Server]) -> None:
    def refuse(sock: socket.socket) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):  # drained, so closing sends no reset
            pass

    server = serve(refuse)

    async def work(client: httpx.AsyncClient) -> tuple[int, str]:
        reply = await client.post(server.url, content=b"x" * 20_000_000)
        return reply.status_code, reply.text

    assert on_loop(work) == (413, "big")


def test_an_upload_never_read_is_a_write_timeout(serve: Callable[..., Server]) -> None:
    def deaf(sock: socket.socket) -> None:
        read_request(sock)
        time.sleep(3)

    server = serve(deaf)

    async def work(client: httpx.AsyncClient) -> None:
        await client.post(server.url, content=b"x" * 100_000_000)

    with pytest.raises(httpx.WriteTimeout):
        on_loop(work, timeout=httpx.Timeout(10, write=0.3))


# --- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    """Self-signed (certificate, key) files for the subjectAltName given, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")

    def make(names: str) -> tuple[Path, Path]:
        stem = folder / names.replace(":", "_").replace(",", "_")
        cert, key = stem.with_suffix(".pem"), stem.with_suffix(".key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "1", "-subj", "/CN=tokenhot test", "-addext",
             f"subjectAltName={names}", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        return cert, key

    return make


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS server that would speak HTTP/2 if asked and notes the names clients send."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


def test_https_goes_through_start_tls(
    serve: Callable[..., Server], certificate: Callable[[str], tuple[Path, Path]]
) -> None:
    cert, key = certificate("IP:127.0.0.1")
    server = serve(keep_alive, tls=server_context(cert, key))

    async def work(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get(server.url)).text for _ in range(3)]

    trusted = ssl.create_default_context(cafile=str(cert))
    assert on_loop(work, verify=trusted) == ["ok"] * 3 and server.connections == 1

    async def untrusted(client: httpx.AsyncClient) -> None:
        await client.get(server.url)

    with pytest.raises(httpx.ConnectError):
        on_loop(untrusted)  # the certificate is checked


def test_https_names_the_host_and_offers_only_http_1_1(
    serve: Callable[..., Server], certificate: Callable[[str], tuple[Path, Path]]
) -> None:
    cert, key = certificate("DNS:localhost,IP:127.0.0.1")
    context, names, protocols = server_context(cert, key), [], []
    context.sni_callback = lambda sock, name, _: names.append(name)

    def note_protocol(sock: socket.socket) -> None:
        protocols.append(sock.selected_alpn_protocol())  # type: ignore[attr-defined]
        keep_alive(sock)

    server = serve(note_protocol, tls=context)
    port = server.server_address[1]

    async def work(client: httpx.AsyncClient) -> str:
        return (await client.get(f"https://localhost:{port}/")).text

    assert on_loop(work, verify=ssl.create_default_context(cafile=str(cert))) == "ok"
    assert names == ["localhost"] and protocols == ["http/1.1"]


def test_a_certificate_for_another_host_is_refused(
    serve: Callable[..., Server], certificate: Callable[[str], tuple[Path, Path]]
) -> None:
    cert, key = certificate("DNS:elsewhere.test")
    server = serve(keep_alive, tls=server_context(cert, key))

    async def work(client: httpx.AsyncClient) -> None:
        await client.get(server.url)

    with pytest.raises(httpx.ConnectError, match="match"):
        on_loop(work, verify=ssl.create_default_context(cafile=str(cert)))


def test_a_handshake_that_never_comes_is_a_connect_timeout(
    serve: Callable[..., Server],
) -> None:
    def mute(sock: socket.socket) -> None:
        time.sleep(3)  # accepts the connection, never answers the hello

    port = serve(mute).server_address[1]

    async def work(client: httpx.AsyncClient) -> None:
        await client.get(f"https://127.0.0.1:{port}/")

    with pytest.raises(httpx.ConnectTimeout):
        on_loop(work, timeout=httpx.Timeout(10, connect=0.3))


def test_a_tls_connection_closed_while_idle_is_not_reused(
    serve: Callable[..., Server], certificate: Callable[[str], tuple[Path, Path]]
) -> None:
    cert, key = certificate("IP:127.0.0.1")
    closed = threading.Event()

    def once(sock: socket.socket) -> None:
        if read_request(sock):
            sock.sendall(OK)
        sock.unwrap().close()  # type: ignore[attr-defined]  # close_notify, then FIN
        closed.set()

    server = serve(once, tls=server_context(cert, key))

    async def work(client: httpx.AsyncClient) -> list[str]:
        first = (await client.get(server.url)).text
        assert closed.wait(5)
        await asyncio.sleep(0.05)  # the close is in before the next request
        return [first, (await client.get(server.url)).text]

    trusted = ssl.create_default_context(cafile=str(cert))
    assert on_loop(work, verify=trusted) == ["ok", "ok"] and server.connections == 2


# --- proxies from the environment -------------------------------------------------------------


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def read_head(sock: socket.socket) -> bytes:
    """One request head, byte by byte (nothing after it is taken from the socket)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    return head


def tunnel(sock: socket.socket) -> None:
    """An HTTP proxy's CONNECT: pipe bytes both ways to the host asked for."""
    host, _, port = read_head(sock).split(b" ")[1].decode().rpartition(":")
    with socket.create_connection((host, int(port))) as upstream:
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pipes = [threading.Thread(target=_pipe, args=pair) for pair in
                 ((sock, upstream), (upstream, sock))]  # fmt: skip
        for pipe in pipes:
            pipe.start()
        for pipe in pipes:
            pipe.join()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def test_a_proxy_from_the_environment_carries_plain_http(
    serve: Callable[..., Server], no_proxies: pytest.MonkeyPatch
) -> None:
    asked: list[bytes] = []

    def forward(sock: socket.socket) -> None:
        asked.append(read_head(sock).split(b"\r\n")[0])
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied")

    proxy = serve(forward)
    no_proxies.setenv("HTTP_PROXY", proxy.url)

    async def work(client: httpx.AsyncClient) -> str:
        assert _net.direct_transport(client) is None  # requests go through the client's mounts
        return (await client.get("http://gateway.test/v1/models")).text

    assert on_loop(work) == "proxied"
    assert asked == [b"GET http://gateway.test/v1/models HTTP/1.1"]


def test_a_proxy_from_the_environment_tunnels_https(
    serve: Callable[..., Server],
    certificate: Callable[[str], tuple[Path, Path]],
    no_proxies: pytest.MonkeyPatch,
) -> None:
    cert, key = certificate("IP:127.0.0.1")
    server = serve(keep_alive, tls=server_context(cert, key))
    proxy = serve(tunnel)
    no_proxies.setenv("HTTPS_PROXY", proxy.url)

    async def work(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get(server.url)).text for _ in range(2)]

    trusted = ssl.create_default_context(cafile=str(cert))
    assert on_loop(work, verify=trusted) == ["ok", "ok"]
    assert proxy.connections == 1 and server.connections == 1
