"""Conversation threads: each cell's turn kept once, per notebook and thread name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_THREAD = "default"


@dataclass(kw_only=True)
class Turn:
    """One question and its answer, owned by the cell that asked it."""

    key: str
    prompt: str
    answer: str
    model: str


@dataclass
class Thread:
    """A conversation: each cell's turn is kept once, in the order cells first ran."""

    name: str
    turns: list[Turn] = field(default_factory=list)

    def _index(self, key: str) -> int:
        return next((i for i, t in enumerate(self.turns) if t.key == key), len(self.turns))

    def context(self, key: str, limit: int) -> list[Turn]:
        """The turns before this cell's own (all turns, for a new cell), newest ``limit``."""
        earlier = self.turns[: self._index(key)]
        return earlier[-limit:] if limit else []

    def record(self, turn: Turn) -> None:
        """Store a turn, replacing the cell's earlier one (re-running a cell)."""
        index = self._index(turn.key)
        if index < len(self.turns):
            self.turns[index] = turn
        else:
            self.turns.append(turn)


def as_messages(turns: list[Turn], prompt: str) -> list[dict[str, Any]]:
    """OpenAI-style messages: earlier turns, then the new prompt."""
    messages: list[dict[str, Any]] = []
    for turn in turns:
        messages += [
            {"role": "user", "content": turn.prompt},
            {"role": "assistant", "content": turn.answer},
        ]
    return [*messages, {"role": "user", "content": prompt}]


class Threads:
    """Every thread of this kernel, keyed by notebook and name."""

    def __init__(self) -> None:
        self._threads: dict[tuple[str, str], Thread] = {}

    def get(self, notebook: str, name: str) -> Thread:
        """The thread ``name`` (created empty on first use)."""
        return self._threads.setdefault((notebook, name), Thread(name))

    def reset(self, notebook: str, name: str | None = None) -> int:
        """Forget one thread (or all of this notebook's); returns how many turns went."""
        keys = [k for k in self._threads if k[0] == notebook and (name is None or k[1] == name)]
        return sum(len(self._threads.pop(k).turns) for k in keys)

    def of(self, notebook: str) -> list[Thread]:
        """This notebook's threads."""
        return [t for (nb, _), t in self._threads.items() if nb == notebook]
