"""Where settings come from: argument, then environment variable, then a named constant."""

from __future__ import annotations

import functools
import os
import re
from urllib.parse import unquote, urlsplit

from ._exceptions import ConfigurationError
from ._redact import redact

DEFAULT_BASE_URL = "https://api.tokenhot.ai"
ENV_API_KEY = "TOKENHOT_API_KEY"
ENV_BASE_URL = "TOKENHOT_BASE_URL"
# "1": the launcher's simulator serves TOKENHOT_BASE_URL while no real key is in force;
# "always": `--simulate`, the simulator even when a key is set.
ENV_SIMULATED = "TOKENHOT_SIMULATED"
SIMULATOR_KEY = "sk-simulator"  # the stand-in kernels send to it (the simulator's own default)
DEFAULT_TIMEOUT = 240.0  # DashScope image models may take ~205 s at the gateway (spec §8.1)
DEFAULT_MAX_RETRIES = 3
DEFAULT_VIDEO_DEADLINE = 30 * 60.0  # some upstream states never end (spec §10.2)
DEFAULT_POLL_INTERVAL = 10.0  # the gateway refreshes tasks every 15 s; faster gains nothing
FIRST_POLL_DELAY = 5.0  # a create reply is fresh: the gateway's first refresh takes ~15 s
MAX_BODY_BYTES = 128 * 1024 * 1024  # the gateway's default MAX_REQUEST_BODY_MB (spec §1.6)


_PLAIN_KEY = re.compile(r"[!-~]*")  # printable ASCII, no space


def resolve_api_key(api_key: str | None) -> str | None:
    """The key from the argument, else ``TOKENHOT_API_KEY``; blank counts as unset."""
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    key = (key or "").strip()
    if _PLAIN_KEY.fullmatch(key):  # the common case, without a look at each character
        return key or None
    if any(ch.isspace() for ch in key):
        raise ConfigurationError(
            "The API key contains spaces or line breaks.",
            hint="Paste the key exactly as issued (it looks like sk-...).",
        )
    if not all(" " < ch <= "~" for ch in key):  # e.g. a pasted zero-width space
        raise ConfigurationError(
            "The API key contains characters that are not plain ASCII.",
            hint="Paste the key exactly as issued (it looks like sk-...) from plain text.",
        )
    return key or None


def resolve_base_url(base_url: str | None) -> str:
    """The bare gateway host: argument, else ``TOKENHOT_BASE_URL``, else the public host.

    The OpenAI-style base ``https://api.tokenhot.ai/v1`` is accepted too; we keep the bare
    host because Gemini routes live under ``/v1beta`` (spec §1.2).
    """
    raw = base_url if base_url is not None else os.environ.get(ENV_BASE_URL)
    raw = (raw or "").strip() or DEFAULT_BASE_URL
    url = raw.rstrip("/")
    for suffix in ("/v1beta", "/v1"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    problem = _url_problem(url)
    if problem:
        # Never echo the URL: a key pasted into it would end up in the message.
        raise ConfigurationError(
            f"The base URL {problem}.",
            hint="Set TOKENHOT_BASE_URL to the gateway host, e.g. https://api.tokenhot.ai.",
        )
    return url


# A gateway may sit under a path prefix, but no prefix starts like a key does.
_KEY_SEGMENT = re.compile(r"(?i)(?:^|/)sk-[^/]")


def _url_problem(url: str) -> str | None:
    """What is wrong with a base URL, or None."""
    shape, port_zero = _url_shape(url)
    if shape:
        return shape
    if redact(url) != url:  # a secret registered since may be in it: never cached
        return KEY_IN_PATH
    return "has port 0" if port_zero else None


KEY_IN_PATH = "has an API key in its path (never put the key in a URL)"


@functools.lru_cache(maxsize=16)
def _url_shape(url: str) -> tuple[str | None, bool]:
    """What is wrong with a base URL's form (or None), and whether its port is 0.

    Pure, so remembered: credentials are resolved at every request.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL (check the host and port)", False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL", False
    if parts.username is not None or parts.password is not None:
        return "has a user name or password in it (never put the key in a URL)", False
    if parts.query or parts.fragment:
        return "has a query or fragment (never put the key in a URL)", False
    if _KEY_SEGMENT.search(unquote(parts.path)):
        return KEY_IN_PATH, False
    return None, port == 0
