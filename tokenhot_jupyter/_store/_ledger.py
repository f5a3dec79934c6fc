"""The usage ledger: one SQLite row per model call, appended by every kernel.

Each row holds the model, its kind, the token counts and the estimated cost (list prices
from the catalog; NULL when no price is known), and whether the simulator answered.  Many
kernels append at once (WAL, one short transaction per row); the status bar, the panel and
``%tokenhot usage --today/--all`` read totals by model and by local calendar day.  Simulated
calls are kept apart from live spend: every reader asks for one or the other.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from .._types import Usage
from ._sqlite import Database

FILE_NAME = "usage.sqlite3"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE calls (
        id               INTEGER PRIMARY KEY,
        at               REAL NOT NULL,
        day              TEXT NOT NULL,
        model            TEXT NOT NULL,
        kind             TEXT NOT NULL,
        input_tokens     INTEGER NOT NULL DEFAULT 0,
        output_tokens    INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens INTEGER NOT NULL DEFAULT 0,
        cost             REAL,
        simulated        INTEGER NOT NULL DEFAULT 0,
        notebook         TEXT,
        pid              INTEGER
    );
    CREATE INDEX calls_by_day ON calls (simulated, day);
    """,
)
_SUMS = (
    "COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
    "COALESCE(SUM(cost), 0.0), COALESCE(SUM(cost IS NULL), 0)"
)


@dataclass(frozen=True, kw_only=True)
class Call:
    """One model call as the ledger stores it."""

    model: str
    kind: str
    usage: Usage | None = None
    cost: float | None = None
    simulated: bool = False
    notebook: str | None = None


@dataclass(frozen=True, kw_only=True)
class Totals:
    """Calls, tokens and estimated USD of one model, one day, or everything asked for."""

    name: str  # the model, the day (YYYY-MM-DD), or "" for a grand total
    kind: str = ""
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0  # calls with no known list price (counted, not costed)


def day_of(at: float) -> str:
    """The local calendar day of an epoch time, as ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.localtime(at))


class Ledger(Database):
    """The usage ledger file; opened lazily, safe to share between threads and kernels."""

    FILE_NAME = FILE_NAME
    WHAT = "usage ledger"
    MIGRATIONS = MIGRATIONS
    BUSY_TIMEOUT = 5.0

    def append(self, call: Call) -> None:
        """Add one call and commit at once."""
        at = self._clock()
        usage = call.usage or Usage()
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO calls (at, day, model, kind, input_tokens, output_tokens, "
                "reasoning_tokens, cost, simulated, notebook, pid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (at, day_of(at), call.model, call.kind, usage.input_tokens, usage.output_tokens,
                 usage.reasoning_tokens, call.cost, int(call.simulated), call.notebook,
                 os.getpid()),
            )  # fmt: skip

    def today(self) -> str:
        """Today's local date (by this ledger's clock)."""
        return day_of(self._clock())

    def total(self, *, simulated: bool, day: str | None = None) -> Totals:
        """Everything (or one day), live or simulated calls."""
        where, args = _where(simulated, day)
        row = self._rows(f"SELECT {_SUMS} FROM calls WHERE {where}", args)[0]
        return _totals("", "", row)

    def by_model(self, *, simulated: bool, day: str | None = None) -> list[Totals]:
        """Totals per model (most expensive first), for everything or one day."""
        where, args = _where(simulated, day)
        rows = self._rows(
            f"SELECT model, MAX(kind), {_SUMS} FROM calls WHERE {where} "
            "GROUP BY model ORDER BY SUM(cost) DESC, COUNT(*) DESC, model",
            args,
        )
        return [_totals(r[0], r[1], r[2:]) for r in rows]

    def by_day(self, *, simulated: bool, days: int = 30) -> list[Totals]:
        """Totals per day for the last ``days`` days that had calls, newest first."""
        rows = self._rows(
            f"SELECT day, {_SUMS} FROM calls WHERE simulated = ? "
            "GROUP BY day ORDER BY day DESC LIMIT ?",
            (int(simulated), days),
        )
        return [_totals(r[0], "", r[1:]) for r in rows]


def _where(simulated: bool, day: str | None) -> tuple[str, tuple[Any, ...]]:
    if day is None:
        return "simulated = ?", (int(simulated),)
    return "simulated = ? AND day = ?", (int(simulated), day)


def _totals(name: str, kind: str, row: tuple[Any, ...]) -> Totals:
    requests, inp, out, cost, unpriced = row
    return Totals(
        name=name,
        kind=kind,
        requests=int(requests),
        input_tokens=int(inp),
        output_tokens=int(out),
        cost=float(cost),
        unpriced=int(unpriced),
    )
