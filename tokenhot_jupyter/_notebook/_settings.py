"""The settings of the magics (``%config Tokenhot.*``) and where each one comes from.

Settings follow one precedence: magic flag → ``%config Tokenhot.*`` / ``%tokenhot use`` →
environment variable (``TOKENHOT_CHAT_MODEL`` …) → the catalog's DEFAULTS.  Parameters
(temperature, size, duration, voice …) follow the same order without the environment: flag →
``%tokenhot use chat.temperature=0.3`` (or the model picker) → the model's own default.
The session (`_session.Session`) applies this order; nothing here reads the environment.
"""

from __future__ import annotations

import math
from typing import Any

from traitlets import Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from .._catalog import KINDS
from .._config import DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_VIDEO_DEADLINE

ENV_MODEL: dict[str, str] = {
    kind: f"TOKENHOT_{kind.upper()}_MODEL" for kind in (*KINDS, "transcribe")
}
ENV_OUTPUT_DIR = "TOKENHOT_OUTPUT_DIR"
DEFAULT_OUTPUT_DIR = "tokenhot_outputs"
DEFAULT_CONFIRM_OVER = 1.0  # USD


class Tokenhot(Configurable):
    """Settings of the Tokenhot magics (``%config Tokenhot.chat_model = "gpt-5"``)."""

    chat_model = Unicode(
        "", help="Model for %%chat (blank: $TOKENHOT_CHAT_MODEL, then the default)."
    ).tag(config=True)
    image_model = Unicode(
        "", help="Model for %%image (blank: $TOKENHOT_IMAGE_MODEL, then the default)."
    ).tag(config=True)
    video_model = Unicode(
        "", help="Model for %%video (blank: $TOKENHOT_VIDEO_MODEL, then the default)."
    ).tag(config=True)
    audio_model = Unicode(
        "", help="Model for %%speak (blank: $TOKENHOT_AUDIO_MODEL, then the default)."
    ).tag(config=True)
    transcribe_model = Unicode("", help="Model for %transcribe (blank: whisper-1).").tag(
        config=True
    )
    output_dir = Unicode(
        "",
        help="Folder for saved images, audio and video "
        "(blank: $TOKENHOT_OUTPUT_DIR, then tokenhot_outputs/).",
    ).tag(config=True)
    stream_interval = Float(
        0.25,
        help="Least seconds between live updates of a streamed answer (a long one is updated "
        "less often: its updates add up to a bounded multiple of it).",
    ).tag(config=True)
    history_turns = Int(20, help="At most this many earlier turns of a thread are sent.").tag(
        config=True
    )
    timeout = Float(DEFAULT_TIMEOUT, help="Seconds to wait for one gateway request.").tag(
        config=True
    )
    status_timeout = Float(5.0, help="Seconds %tokenhot status waits for the gateway.").tag(
        config=True
    )
    video_poll_interval = Float(
        DEFAULT_POLL_INTERVAL, help="Seconds between polls of a video task."
    ).tag(config=True)
    video_deadline = Float(
        DEFAULT_VIDEO_DEADLINE, help="Seconds after which a video task stops being polled."
    ).tag(config=True)

    confirm_over = Float(
        DEFAULT_CONFIRM_OVER,
        allow_none=True,
        help="A batch whose estimated cost is above this many USD asks before it sends "
        "(0: always ask; None: never ask; --yes skips the question).",
    ).tag(config=True)

    @validate(
        "stream_interval", "timeout", "status_timeout", "video_poll_interval", "video_deadline"
    )
    def _positive(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if value < 0 or (value == 0 and proposal["trait"].name != "stream_interval"):
            raise TraitError(f"Tokenhot.{proposal['trait'].name} must be more than 0.")
        return value

    @validate("history_turns")
    def _turns(self, proposal: Any) -> int:
        if int(proposal["value"]) < 0:
            raise TraitError("Tokenhot.history_turns must be 0 or more.")
        return int(proposal["value"])

    @validate("confirm_over")
    def _threshold(self, proposal: Any) -> float | None:
        value = proposal["value"]
        if value is None:
            return None
        if not math.isfinite(float(value)) or float(value) < 0:
            raise TraitError(
                "Tokenhot.confirm_over must be 0 or more USD (0: always ask), or None (never ask)."
            )
        return float(value)
