"""The day budget: one number in USD that every kernel and the server extension read.

``%tokenhot budget 5`` writes it here, beside the usage ledger under ``TOKENHOT_HOME``, so a
budget set in one notebook holds in every kernel at its next request, and the status bar
shows what is left of it.  What counts against it is today's estimated spend in the usage
ledger (`_ledger`), of the mode in force: simulated calls against a simulated day, live
calls against a live one.  The file is made only when a budget is first set; until then
there is none and nothing is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ._ledger import Ledger
from ._sqlite import Database

FILE_NAME = "budget.sqlite3"
DAY = "day"  # the one row there is today; the table is keyed by name so others may follow
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE budgets (
        name   TEXT PRIMARY KEY,
        usd    REAL NOT NULL,
        set_at REAL NOT NULL,
        pid    INTEGER
    );
    """,
)


class Budgets(Database):
    """The budget file; opened lazily, safe to share between threads and kernels."""

    FILE_NAME = FILE_NAME
    WHAT = "budget file"
    MIGRATIONS = MIGRATIONS
    BUSY_TIMEOUT = 5.0

    def day(self) -> float | None:
        """The day budget in USD, or None when none is set."""
        if not self.path.exists():  # never set: no file is made just to say so
            return None
        rows = self._rows("SELECT usd FROM budgets WHERE name = ?", (DAY,))
        return float(rows[0][0]) if rows else None

    def set_day(self, usd: float | None) -> None:
        """Set the day budget (None: remove it)."""
        if usd is None and not self.path.exists():
            return
        with self._transaction() as conn:
            if usd is None:
                conn.execute("DELETE FROM budgets WHERE name = ?", (DAY,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO budgets (name, usd, set_at, pid) VALUES (?, ?, ?, ?)",
                    (DAY, float(usd), self._clock(), os.getpid()),
                )


@dataclass(frozen=True, kw_only=True)
class Standing:
    """A budget and what has been spent against it (estimated USD)."""

    scope: str  # "day": every kernel, from the usage ledger; "session": this kernel
    limit: float
    spent: float
    simulated: bool = False  # the spend counted is the simulator's

    @property
    def left(self) -> float:
        """What may still be spent (never below 0)."""
        return max(0.0, self.limit - self.spent)


def today(budgets: Budgets, ledger: Ledger, *, simulated: bool) -> Standing | None:
    """The day budget and today's spend in the ledger (of one mode); None without a budget."""
    limit = budgets.day()
    if limit is None:
        return None
    spent = ledger.total(simulated=simulated, day=ledger.today()).cost
    return Standing(scope="day", limit=limit, spent=spent, simulated=simulated)
