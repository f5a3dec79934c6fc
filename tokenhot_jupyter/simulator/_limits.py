"""The gateway's per-user request limit as a token bucket on the simulated clock (spec §2.2).

new-api's model rate limiter answers an over-limit request with 429 and, in its in-memory
mode, an empty body; the simulator can add a ``Retry-After`` (whole seconds until the next
request would pass), which the real gateway never sends.  The bucket holds ``burst``
requests (default: one second's worth) and refills at ``rate`` per simulated second, so on
a manual clock it refills only as the test advances the clock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float  # simulated time of the last refill


class RateLimiter:
    """Token buckets, one per user token; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def take(self, token: str, now: float, rate: float, burst: float | None = None) -> float:
        """Take one request from ``token``'s bucket: 0.0 if it may pass, else the seconds
        until it would."""
        size = max(1.0, burst if burst is not None else rate)
        with self._lock:
            bucket = self._buckets.setdefault(token, _Bucket(size, now))
            bucket.tokens = min(size, bucket.tokens + max(0.0, now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate if rate > 0 else math.inf

    def reset(self) -> None:
        """Every bucket full again (on the next request)."""
        with self._lock:
            self._buckets.clear()


def retry_after(wait: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up (at least 1), as HTTP has them."""
    return str(max(1, math.ceil(wait))) if math.isfinite(wait) else "3600"
