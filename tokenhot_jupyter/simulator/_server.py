"""The HTTP transport: a stdlib threading server speaking HTTP/1.1 with keep-alive and SSE."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import urllib.parse
import zlib
from collections.abc import Generator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._errors import relay_error
from ._gateway import Gateway
from ._http import Drop, Reply, Request, Result, Stream
from ._state import State, Stopped

log = logging.getLogger("tokenhot_jupyter.simulator")
BROKEN_EVENT = (
    b'data: {"id":"chatcmpl-broken","object":"chat.completion.chunk","choices":[{"del\n\n'
)


class _TooLarge(Exception):
    """The body is over the size cap."""


class SimHTTPServer(ThreadingHTTPServer):
    """A threading server that tracks its connections so `stop` can cut them promptly."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.gateway = gateway
        self.state: State = gateway.state
        self._track_lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._conn_threads: list[threading.Thread] = []
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve each connection in its own daemon thread (tracked)."""
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="tokenhot-simulator-conn",
            daemon=True,
        )
        with self._track_lock:
            self._sockets.add(request)
            self._conn_threads = [t for t in self._conn_threads if t.is_alive()]
            self._conn_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        """Forget and close a finished connection."""
        with self._track_lock:
            self._sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors are normal for a test double; log the rest."""
        log.debug("connection error from %s", client_address, exc_info=True)

    def cut_all(self, deadline: float) -> None:
        """Shut every open connection down and wait for their threads until ``deadline``."""
        with self._track_lock:
            sockets, threads = list(self._sockets), list(self._conn_threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tokenhot-simulator"
    sys_version = ""
    timeout = 120  # idle keep-alive connections
    server: SimHTTPServer

    def setup(self) -> None:
        """Disable Nagle: headers and body go out in separate writes (no 40 ms stalls)."""
        super().setup()
        self._req: Request | None = None  # the request being served ...
        self._counted, self._done = 0, True  # ... as `State.enter` counted it
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        """Serve any method through the gateway."""
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's access log to DEBUG logging."""
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        req = Request(self.command, url.path or "/", query, headers)
        req.request_id = state.request_id()
        try:
            req.body = self._read_body(headers, state.options.max_body_bytes)
        except _TooLarge:
            error = relay_error(
                413, "request body too large", req.request_id, code="read_request_body_failed"
            )
            self._write(error.reply, req.request_id, close=True)
            return
        except (ValueError, OSError, zlib.error):
            self.close_connection = True
            return
        req.in_flight = self._counted = state.enter(req.path)
        self._req, self._done, completed = req, False, False
        try:
            completed = self._write(self.server.gateway.handle(req), req.request_id)
        except Stopped:
            self._abort()
        finally:
            self._finishing(completed=False)  # no reply went out (or it broke)
            if not completed:  # also when its last write failed after `_finishing`
                state.completed(req.record, False)

    def _finishing(self, *, completed: bool) -> None:
        """The reply's last bytes go out next: from here a client may send its next request,
        so the request stops counting as in flight and the log says how it ended (once)."""
        if not self._done:
            self._done = True
            self.server.state.leave(self._counted)
            self.server.state.completed(self._req.record if self._req else None, completed)

    def _read_body(self, headers: dict[str, str], cap: int) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked(cap)
        else:
            length = int(headers.get("content-length") or 0)
            if length > cap:
                raise _TooLarge
            body = self.rfile.read(length) if length > 0 else b""
        return _decompress(body, headers.get("content-encoding", "").lower(), cap)

    def _read_chunked(self, cap: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(parts)
            total += size
            if total > cap:
                raise _TooLarge
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _write(self, result: Result, rid: str, close: bool = False) -> bool:
        """Send ``result``; True when the whole reply went out."""
        if isinstance(result, Drop):
            self._finishing(completed=False)
            self._abort()
            return False
        if isinstance(result, Stream):
            return self._write_stream(result, rid)
        return self._write_reply(result, rid, close)

    def _write_reply(self, reply: Reply, rid: str, close: bool) -> bool:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("X-Oneapi-Request-Id", rid)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self._finishing(completed=not reply.cut)
        self.end_headers()
        if self.command == "HEAD":
            return True
        if reply.cut:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self._abort()
            return False
        self.wfile.write(reply.body)
        return True

    def _write_stream(self, stream: Stream, rid: str) -> bool:
        self.send_response(stream.status)
        self.send_header("Content-Type", stream.content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Oneapi-Request-Id", rid)
        for name, value in stream.headers.items():
            self.send_header(name, value)
        self.end_headers()
        events = _mangled(stream)
        try:
            for event in events:
                if event is None:
                    self._finishing(completed=False)
                    self._abort()
                    return False
                self._chunk(event)
            self._finishing(completed=True)
            self._chunk(b"")
        except (Stopped, OSError):
            self._finishing(completed=False)
            self._abort()
            return False
        finally:
            events.close()
            inner = getattr(stream.events, "close", None)
            if inner is not None:
                inner()
        return True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _abort(self) -> None:
        """Close the connection abruptly (no more bytes, no chunk terminator)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _mangled(stream: Stream) -> Generator[bytes | None, None, None]:
    """The stream's events with the faults applied (``None`` means: cut here)."""
    held: bytes | None = None  # with end_early, each event waits until the next one comes
    for index, event in enumerate(stream.events):
        if stream.cut and index == 2:
            yield None
            return
        event = BROKEN_EVENT if stream.malformed and index == 1 else event
        if not stream.end_early:
            yield event
            continue
        if held is not None:
            yield held
        held = event


def _decompress(body: bytes, encoding: str, cap: int) -> bytes:
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
        inflater = zlib.decompressobj(wbits)
        body = inflater.decompress(body, cap + 1)
    if len(body) > cap:
        raise _TooLarge
    return body
