"""Server-sent events, as the gateway writes them (spec §4.3, §5.4, §6, §7.4)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SSEEvent:
    """One event: its ``event:`` name (may be empty) and joined ``data:`` lines."""

    event: str
    data: str

    @property
    def done(self) -> bool:
        """True for the ``[DONE]`` sentinel of chat completions."""
        return self.data.strip() == "[DONE]"

    def json(self) -> Any:
        """The data parsed as JSON."""
        return json.loads(self.data)


class _Decoder:
    """Groups lines into events; skips ``:`` comments such as ``: PING``."""

    def __init__(self) -> None:
        self.event, self.data = "", []  # type: tuple[str, list[str]]

    def feed(self, raw: str) -> SSEEvent | None:
        line = raw.rstrip("\r\n")
        if not line:
            return self.flush()
        if not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self.event = value
            elif name == "data":
                self.data.append(value)
        return None

    def flush(self) -> SSEEvent | None:
        out = SSEEvent(self.event, "\n".join(self.data)) if self.data else None
        self.event, self.data = "", []
        return out


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Events from a stream of lines."""
    decoder = _Decoder()
    async for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
    last = decoder.flush()
    if last is not None:
        yield last


def parse_sse_text(text: str) -> list[SSEEvent]:
    """Events from a whole SSE body already in memory."""
    decoder = _Decoder()
    events = [e for e in map(decoder.feed, text.splitlines()) if e is not None]
    last = decoder.flush()
    return events + ([last] if last else [])
