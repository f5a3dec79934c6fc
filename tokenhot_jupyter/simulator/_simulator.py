"""`Simulator`: the gateway simulator as an object that starts and stops a real server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from ._auth import split_key
from ._clock import SimClock
from ._faults import FaultPlan
from ._gateway import Gateway
from ._routes import ROUTES
from ._server import SimHTTPServer
from ._state import Options, RecordedRequest, State
from ._video import snapshot

DEFAULT_KEY = "sk-simulator"


class _Option:
    """A `Simulator` attribute that reads and writes one of the live `Options`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, sim: Simulator | None, owner: type) -> Any:
        return self if sim is None else getattr(sim._state.options, self.name)

    def __set__(self, sim: Simulator, value: Any) -> None:
        setattr(sim._state.options, self.name, value)


class Simulator:
    """A running Tokenhot gateway double on loopback; see the package docstring.

    ``speed``/``clock``: simulated time (``speed=0`` is a manual clock). ``api_keys``: the
    only keys accepted (default: any ``sk-`` key). ``token_delay``/``image_delay``: real
    seconds of pacing. ``wan_shape2``, ``happyhorse_documented_body``, ``ping``: quirk
    switches. ``max_body_mb``: the 413 cap. ``group``: named in ``model_not_found``.
    ``video_base + video_per_second × seconds``: simulated seconds a video task needs.
    ``rate_limit``: billable requests per simulated second per key (a token bucket of
    ``rate_burst``, default one second's worth); over it, 429 with an empty body, plus
    ``Retry-After`` with ``rate_retry_after``.  The switches, delays and limits can also be
    set on a running simulator (``sim.ping = True``, ``sim.rate_limit = 5``).
    """

    token_delay = _Option()  # real seconds before each streamed piece
    image_delay = _Option()  # real seconds added to every image reply
    wan_shape2 = _Option()  # wan2.6-image answers in Tokenhot's documented shape 2
    happyhorse_documented_body = _Option()  # accept the DashScope-native HappyHorse body
    ping = _Option()  # chat streams carry a ": PING" comment
    group = _Option()  # the token's group, named in model_not_found messages
    video_base = _Option()  # simulated seconds every video task needs ...
    video_per_second = _Option()  # ... plus this much per second of video
    rate_limit = _Option()  # billable requests per simulated second per key (None: no limit)
    rate_burst = _Option()  # the limit's bucket size (None: one second's worth)
    rate_retry_after = _Option()  # over-limit 429s carry Retry-After (the gateway's do not)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        speed: float = 1.0,
        clock: SimClock | None = None,
        api_keys: Iterable[str] | None = None,
        token_delay: float = 0.02,
        image_delay: float = 0.0,
        wan_shape2: bool = False,
        happyhorse_documented_body: bool = True,
        max_body_mb: float = 128,
        group: str = "default",
        ping: bool = False,
        video_base: float = 60.0,
        video_per_second: float = 6.0,
        rate_limit: float | None = None,
        rate_burst: float | None = None,
        rate_retry_after: bool = False,
    ) -> None:
        keys = frozenset(api_keys) if api_keys is not None else None
        self.host, self.port = host, port
        self.clock = clock if clock is not None else SimClock(speed)
        self.faults = FaultPlan()
        self.api_key = DEFAULT_KEY if not keys or DEFAULT_KEY in keys else sorted(keys)[0]
        options = Options(
            api_keys=keys,
            token_delay=token_delay,
            image_delay=image_delay,
            wan_shape2=wan_shape2,
            happyhorse_documented_body=happyhorse_documented_body,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            group=group,
            ping=ping,
            video_base=video_base,
            video_per_second=video_per_second,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
            rate_retry_after=rate_retry_after,
        )
        self._state = State(self.clock, options, self.faults)
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        self._state.stopping.clear()
        server = SimHTTPServer((self.host, self.port), Gateway(self._state, ROUTES))
        self._server = server
        self.port = server.server_address[1]
        self._state.base_url = f"http://{_url_host(self.host)}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="tokenhot-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections (streams included) within about a second."""
        server, self._server = self._server, None
        if server is None:
            return
        deadline = time.monotonic() + 1.0
        self._state.stopping.set()
        server.shutdown()
        server.cut_all(deadline)
        server.server_close()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until `stop` is called from another thread (or a signal handler)."""
        self.start()
        while self._server is not None:
            time.sleep(0.1)

    # --- inspection and control ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash, no ``/v1``)."""
        if not self._state.base_url:
            raise RuntimeError("the simulator is not started")
        return self._state.base_url

    def url(self, path: str = "") -> str:
        """An absolute URL for ``path`` on this simulator."""
        return self.base_url + path

    @property
    def running(self) -> bool:
        """True between `start` and `stop`."""
        return self._server is not None

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the request log (credentials redacted)."""
        with self._state.lock:
            return list(self._state.requests)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._state.lock:
            self._state.requests.clear()

    @property
    def in_flight(self) -> int:
        """API requests being served right now (each log entry has the count at its arrival)."""
        with self._state.lock:
            return self._state.in_flight

    def exhaust_token(self, key: str, exhausted: bool = True) -> None:
        """Use up (or restore) a key's token quota: every route then answers 401."""
        token = split_key(key)[0]
        with self._state.lock:
            (self._state.exhausted.add if exhausted else self._state.exhausted.discard)(token)

    def advance(self, seconds: float) -> float:
        """Move the simulated clock forward; returns the new simulated time."""
        return self.clock.advance(seconds)

    def tasks(self) -> list[dict[str, Any]]:
        """Every video task with its current stored status."""
        now = self.clock.now()
        with self._state.lock:
            rows = list(self._state.tasks.values())
        return [{"id": t.id, "model": t.model, "status": snapshot(t, now).status} for t in rows]

    def __repr__(self) -> str:
        where = self._state.base_url if self.running else "stopped"
        return f"<Simulator {where} speed={self.clock.speed:g}>"


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
