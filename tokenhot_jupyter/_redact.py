"""Keep API keys out of every string we produce: messages, reprs and log lines."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

_lock = threading.Lock()
_secrets: set[str] = set()
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")  # RFC 6750 token chars
MASK = "sk-***"


def register_secret(secret: str | None) -> None:
    """Remember a secret so that `redact` removes it wherever it shows up."""
    if secret and len(secret) >= 4:
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """Replace every known secret (and any Bearer credential) in ``text``."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _BEARER.sub(r"\1" + MASK, text)


class RedactingFilter(logging.Filter):
    """Masks every known secret in a log record's message (httpx logs each request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = RedactingFilter()
# The loggers that name URLs: httpx's INFO line per request, and our own.
GUARDED_LOGGERS = ("httpx", "tokenhot_jupyter")


def guard_logs() -> None:
    """Put `RedactingFilter` on the loggers that may see a URL (idempotent)."""
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def redact_tree(value: Any) -> Any:
    """A JSON-friendly copy of ``value`` with every string redacted (output metadata)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_tree(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return redact_tree(dataclasses.asdict(value))
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))


def mask_key(key: str | None) -> str:
    """A form of the key safe to show: its last four characters only."""
    if not key:
        return "(not set)"
    return f"sk-…{key[-4:]}" if len(key) > 12 else MASK
