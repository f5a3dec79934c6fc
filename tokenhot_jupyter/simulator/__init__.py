"""A local simulator of the Tokenhot gateway (new-api), quirks included.

It is a real HTTP server on loopback that speaks every route of the wire-format spec
(``tokenhot-api.md``): chat completions, Responses, Anthropic messages, Gemini native,
images, audio and video tasks, with the gateway's error envelopes, stream framings and
timings. Use it as the test double and as the offline demo backend::

    from tokenhot_jupyter.simulator import Simulator

    with Simulator(speed=0, token_delay=0) as sim:      # manual clock, no pacing
        client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key=sim.api_key)
        ...
        sim.clock.advance(120)                           # video tasks move on
        sim.requests[-1].json                            # what the client sent

From a shell: ``python -m tokenhot_jupyter.simulator [--port 8765] [--speed 4]``; the first
line on stdout is the base URL. In pytest, the ``tokenhot_simulator`` fixture gives a
fresh simulator per test (manual clock, no pacing); ``tokenhot_simulator_session`` one
shared simulator.

**Keys.** Any ``sk-<letters and digits>`` key works unless ``api_keys`` restricts them.
``sk-revoked…`` and ``sk-exhausted…`` get 401 everywhere (as does any key passed to
``sim.exhaust_token``, including polls of tasks it created); ``sk-broke…`` gets 403
``insufficient_user_quota`` on billable calls; ``sk-abc-1`` (a channel suffix) gets 403.

**Time.** `SimClock` runs at ``speed`` simulated seconds per real second (``0`` = manual);
``sim.clock.advance(s)`` jumps. Video tasks read ``NOT_START`` until the first 15 s
refresh, then climb their family's ladder and finish ``60 s + 6 s × video seconds`` after
creation; result URLs (``/__files/…``, no key) expire 24 simulated hours later. Polls carry
``openai-poll-after-ms`` (one 15 s refresh at the clock's speed; none on a manual clock), a
hint the real gateway never sends, so that clients keep pace with a fast clock.

**Faults** (spec grammar in `FaultPlan`'s module): per request with the header
``X-Sim-Fault: 429:retry-after=2``; queued in process with
``sim.faults.add("drop-mid-stream", path="/v1/chat/completions", method="POST", times=1)``
(``path`` is a glob, ``times=-1`` means always); or over HTTP with
``POST /__sim__/faults {"spec", "path", "method", "times"}``. Specs: ``429``,
``429:retry-after=N``, ``429:redis``, ``500``, ``502``, ``503``, ``503:model``, ``drop``,
``drop-mid-stream``, ``end-early``, ``malformed``, ``html``, ``slow=S``, ``ping``, ``task-fail``,
``task-stuck``, ``expire-url``, ``upstream-429``, ``schema-mismatch``; combine with commas.

**Structured answers.** A chat request that asks for JSON of a schema (``response_format``
json_schema, ``text.format``, an Anthropic tool or ``output_format``, Gemini's
``responseJsonSchema`` or ``responseSchema``) gets deterministic JSON that matches it, in
its family's shape (Anthropic: a ``tool_use`` block); the ``schema-mismatch`` fault makes
the answer leave out a required field, so that it does not match.

**Rate limit.** ``Simulator(rate_limit=5)`` (or ``--rate-limit 5``) admits 5 billable
requests per simulated second per key, from a bucket of ``rate_burst`` (default one
second's worth); over it the gateway's in-memory limiter answers 429 with an empty body
(``rate_retry_after=True`` adds a whole-second ``Retry-After``).  On a manual clock the
bucket refills only as the clock is advanced.  Each log entry (``sim.requests``) has
``in_flight``, how many API requests were being served when it arrived (itself included),
and ``completed``, whether its whole reply went out.

**Control routes** (no key): ``GET /__sim__``, ``GET|POST|DELETE /__sim__/faults``,
``GET|POST /__sim__/clock`` (``{"advance": seconds}``), ``GET|DELETE /__sim__/requests``,
``POST /__sim__/tokens`` (``{"key", "exhausted"}``), ``GET /__sim__/tasks``.

**Switches.** ``wan_shape2=True``: wan2.6-image answers in Tokenhot's documented shape 2;
``happyhorse_documented_body=False``: the documented HappyHorse body gets 400 "prompt is
required"; ``image_delay``/``token_delay``: real-time pacing; ``max_body_mb``: the 413 cap;
``ping=True``: chat streams carry ``: PING``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._clock import SimClock
    from ._faults import Fault, FaultPlan
    from ._simulator import Simulator
    from ._state import RecordedRequest

__all__ = ["Fault", "FaultPlan", "RecordedRequest", "SimClock", "Simulator"]

_LAZY = {
    "Fault": "._faults",
    "FaultPlan": "._faults",
    "RecordedRequest": "._state",
    "SimClock": "._clock",
    "Simulator": "._simulator",
}


def __getattr__(name: str) -> Any:
    """Import the public names lazily, so loading the pytest plugin stays cheap."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name], __name__), name)
