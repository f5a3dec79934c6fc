"""The record/replay transport: wraps our own way of sending, never patches httpx globally.

`CassetteTransport` sits under the private ``httpx.AsyncClient`` of a `Connection` that has a
cassette; it hands live requests to ``send`` (the shared pool, or a custom transport).  So
every request of the client goes through it: each endpoint family, media downloads from
vendor file hosts, the picker's Try-it and background video polling.

Replay never reaches the network.  Streams come back chunk by chunk with their recorded
pauses (scaled by the cassette's speed, through its injectable sleep); every replayed reply
carries a short poll hint, so video tasks run through their recorded statuses on a fast clock;
recorded transport failures are raised again as the same httpx errors.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from . import _exceptions as E
from ._canonical import Blobs, Canonical, canonical, pack_text
from ._cassette import Cassette, Exchange, kept_headers
from ._redact import redact

Send = Callable[[httpx.Request], Awaitable[httpx.Response]]
POLL_HINT_HEADER = "openai-poll-after-ms"  # what `_video.poll_hint` reads
REPLAY_POLL_HINT = 0.5  # seconds between replayed video polls at speed 1: a fast clock
# Headers that describe the bytes on the wire, not the (decoded) bytes we pass on.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class CassetteTransport(httpx.AsyncBaseTransport):
    """Answers from a cassette, or sends with ``send`` and records (by the cassette's mode)."""

    def __init__(self, cassette: Cassette, send: Send, gateway: str, secret: str | None) -> None:
        self.cassette = cassette
        self._send = send
        self._gateway = gateway
        self._secret = secret

    def __repr__(self) -> str:
        return f"CassetteTransport({self.cassette!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Replay a recorded answer, or (record, auto) send the request and record it."""
        await request.aread()
        blobs: Blobs = {}
        wanted = canonical(request, self.cassette.gateways(self._gateway), blobs)
        if self.cassette.mode != "record":
            answer = self.cassette.take(wanted)
            if answer is not None:
                return await self._replay(answer, request)
            self._refuse(wanted, request)
        return await self._record(request, wanted, blobs)

    # --- replaying ------------------------------------------------------------------------------

    def _refuse(self, wanted: Canonical, request: httpx.Request) -> None:
        """A miss: never sent in replay mode; in auto mode only with a key to record it."""
        path = self.cassette.path
        where = f"the cassette {self.cassette.name} ({path})"
        if self.cassette.mode == "replay":
            raise E.CassetteMissError(
                f"{wanted.describe()} is not in {where}; nothing was sent.",
                hint=f"Record it (%tokenhot record {path}), or use auto mode to record what is "
                f"missing (%tokenhot replay {path} --auto, or TOKENHOT_CASSETTE_MODE=auto).",
            )
        to_gateway = str(request.url).startswith(self._gateway + "/")
        if to_gateway and "authorization" not in request.headers:
            raise E.CassetteMissError(
                f"{wanted.describe()} is not in {where}, and no API key is set to record it.",
                hint="Set TOKENHOT_API_KEY (or run %tokenhot login) to record what is missing.",
            )

    async def _replay(self, answer: Exchange, request: httpx.Request) -> httpx.Response:
        if answer.status is None:
            raise _failure(answer.error or {}, request)
        headers = dict(answer.headers)
        speed = self.cassette.speed
        headers[POLL_HINT_HEADER] = str(round(REPLAY_POLL_HINT * 1000 / speed) if speed else 0)
        chunks = answer.chunks
        if chunks is None:
            if answer.error is not None:  # the body broke off while it was read
                raise _failure(answer.error, request)
            content = self.cassette.body_bytes(answer.body)
            return httpx.Response(answer.status, headers=headers, content=content)
        await self.cassette.pause(answer.wait)
        stream = _Playback(self.cassette, chunks, answer.error, request)
        return httpx.Response(answer.status, headers=headers, stream=stream)

    # --- recording ------------------------------------------------------------------------------

    async def _record(
        self, request: httpx.Request, wanted: Canonical, blobs: Blobs
    ) -> httpx.Response:
        started = self.cassette.clock()
        try:
            response = await self._send(request)
        except httpx.RequestError as exc:
            self._keep(Exchange(wanted, error=_described(exc)), blobs)
            raise
        exchange = Exchange(wanted, response.status_code, kept_headers(response.headers))
        exchange.wait = self.cassette.clock() - started
        headers = [(k, v) for k, v in response.headers.multi_items() if k not in _WIRE_HEADERS]
        if "text/event-stream" in response.headers.get("content-type", ""):
            stream = _Recording(self, response, exchange, blobs)
            return httpx.Response(response.status_code, headers=headers, stream=stream)
        try:
            content = await response.aread()
        except httpx.RequestError as exc:
            exchange.error = _described(exc)
            self._keep(exchange, blobs)
            raise
        finally:
            await response.aclose()
        kind = response.headers.get("content-type", "")
        exchange.body = self.cassette.pack_body(content, kind, blobs)
        self._keep(exchange, blobs)
        return httpx.Response(response.status_code, headers=headers, content=content)

    def _keep(self, exchange: Exchange, blobs: Blobs) -> None:
        self.cassette.add(exchange, blobs, self._gateway, self._secret)


class _Playback(httpx.AsyncByteStream):
    """A recorded stream, chunk by chunk, with its pauses; a recorded break raises again."""

    def __init__(
        self,
        cassette: Cassette,
        chunks: list[list[Any]],
        error: dict[str, str] | None,
        request: httpx.Request,
    ) -> None:
        self._cassette = cassette
        self._chunks = chunks
        self._error = error
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for pause, text in self._chunks:
            await self._cassette.pause(float(pause))
            yield str(self._cassette.unpack(str(text))).encode("utf-8")
        if self._error is not None:
            raise _failure(self._error, self._request)


class _Recording(httpx.AsyncByteStream):
    """Passes a live stream on unchanged, noting each chunk and the pause before it.

    The exchange is written once the stream ends or breaks; a stream the caller abandons
    (an interrupt) is not, so a replay never passes off a cut answer as a whole one.
    """

    def __init__(
        self,
        transport: CassetteTransport,
        response: httpx.Response,
        exchange: Exchange,
        blobs: Blobs,
    ) -> None:
        self._transport = transport
        self._response = response
        self._exchange = exchange
        self._blobs = blobs
        self._chunks: list[list[Any]] = []

    async def __aiter__(self) -> AsyncIterator[bytes]:
        clock = self._transport.cassette.clock
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # SSE is UTF-8 (RFC 8895)
        last = clock()
        try:
            async for data in self._response.aiter_bytes():
                now = clock()
                self._chunks.append([round(now - last, 4), decoder.decode(data)])
                last = now
                yield data
        except httpx.RequestError as exc:
            self._finish(decoder, _described(exc))
            raise
        self._finish(decoder, None)

    def _finish(self, decoder: codecs.IncrementalDecoder, error: dict[str, str] | None) -> None:
        tail = decoder.decode(b"", final=True)
        if tail:
            self._chunks.append([0.0, tail])
        chunks = [[pause, pack_text(text, self._blobs)] for pause, text in self._chunks]
        self._exchange.body = {"chunks": chunks}
        self._exchange.error = error
        self._transport._keep(self._exchange, self._blobs)

    async def aclose(self) -> None:
        await self._response.aclose()


def _described(exc: Exception) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": redact(str(exc))}


def _failure(error: dict[str, str], request: httpx.Request) -> httpx.RequestError:
    """The recorded httpx error again (a name httpx no longer has: its base class)."""
    cls = getattr(httpx, error.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, httpx.RequestError)):
        cls = httpx.TransportError
    return cls(error.get("message", "recorded failure"), request=request)
