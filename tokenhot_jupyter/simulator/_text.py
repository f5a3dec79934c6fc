"""Deterministic reply text for the simulated models, and the token arithmetic.

Replies depend only on the model and the prompt, read well in a demo, and say how many
images arrived ("I see 1 image"), so a test can prove an upload reached the model.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_PIECE = re.compile(r"\s+|\S+\s*")
_CODE_WORDS = re.compile(r"\b(code|function|python|script|program|snippet|regex|sql|class)\b", re.I)

OPENERS = (
    "Here is a short, simulated reply so you can see the whole round trip working.",
    "This text comes from the Tokenhot gateway simulator, not from a real model.",
    "The simulator answers every prompt deterministically, which keeps notebooks reproducible.",
    "No network was used: the local gateway simulator wrote this answer.",
)
POINTS = (
    "Your request reached the gateway and was routed to the model's channel.",
    "The reply is streamed token by token when you ask for a stream.",
    "Usage counts are estimated at about one token per four characters.",
    "The same prompt always produces the same answer.",
    "Errors, rate limits and slow replies can be injected with faults.",
    "Markdown such as **bold** and `inline code` renders in the notebook.",
)
CLOSERS = (
    "Ask again with a different prompt to get a different reply.",
    "Switch to the real gateway by changing the base URL and key.",
    "That is all the simulator has to say about it.",
)


@dataclass(frozen=True)
class Prompt:
    """A request reduced to what the reply depends on."""

    text: str  # the last user turn
    context: str = ""  # every input text, for usage counts
    images: int = 0
    audio: int = 0


def count_tokens(text: str) -> int:
    """About one token per four characters (at least one for non-empty text)."""
    return 0 if not text else max(1, round(len(text) / 4))


def prompt_tokens(prompt: Prompt) -> int:
    """Input tokens: text plus a flat 85 per image (OpenAI's low-detail price)."""
    return count_tokens(prompt.context or prompt.text) + 85 * prompt.images + 3


def pieces(text: str) -> list[str]:
    """Word-sized stream pieces whose concatenation is ``text``."""
    return _PIECE.findall(text)


def truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """Cut ``text`` to about ``max_tokens`` tokens; also say whether it was cut."""
    if not max_tokens or max_tokens <= 0 or count_tokens(text) <= max_tokens:
        return text, False
    out = ""
    for piece in pieces(text):
        if count_tokens(out + piece) > max_tokens:
            break
        out += piece
    return out.rstrip(), True


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")


def topic(text: str) -> str:
    """The prompt's first line, shortened for quoting."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not line:
        return "(an empty prompt)"
    return line if len(line) <= 80 else line[:77].rstrip() + "..."


def answer(model: str, prompt: Prompt) -> str:
    """The simulated answer of ``model`` to ``prompt`` (Markdown)."""
    seed = _seed(model, prompt.text)
    lines = [f"Simulated answer from {model} to: {topic(prompt.text)}", ""]
    if prompt.images:
        lines += [
            f"I see {prompt.images} image{'s' if prompt.images != 1 else ''} in your message.",
            "",
        ]
    if prompt.audio:
        lines += [f"I hear {prompt.audio} audio clip{'s' if prompt.audio != 1 else ''}.", ""]
    lines += [OPENERS[seed % len(OPENERS)], ""]
    start = seed % len(POINTS)
    lines += [f"- {POINTS[(start + i) % len(POINTS)]}" for i in range(3)]
    if _CODE_WORDS.search(prompt.text):
        lines += [
            "",
            "```python",
            "def greet(name: str) -> str:",
            '    return f"Hello, {name}!"',
            "",
            'print(greet("Tokenhot"))',
            "```",
        ]
    lines += ["", CLOSERS[(seed >> 8) % len(CLOSERS)]]
    return "\n".join(lines)


def reasoning(model: str, prompt: Prompt, effort: str | None) -> str:
    """The simulated reasoning text (shown as reasoning_content / thinking / thoughts)."""
    level = effort or "default"
    return (
        f"The user asks: {topic(prompt.text)} "
        f"I am {model} thinking at {level} effort. "
        "A short answer with a list will do; the simulator keeps it deterministic."
    )


def wants_reasoning(effort: str | None) -> bool:
    """Whether an effort value turns reasoning output on."""
    return bool(effort) and effort not in ("none", "minimal", "disabled", "off")
