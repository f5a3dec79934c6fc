"""Figures as ``median (min–max)`` and the targets they are held to, PASS or MISS.

Every benchmark prints its target lines through `Targets`, then `Targets.summary` lists
them again in one block that an issue note can quote.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def spread(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    """``median (min–max)``."""
    low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low}–{high})"


class Targets:
    """The target lines of one run: each judged on its median."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def check(
        self, label: str, values: Sequence[float], limit: float, fmt: str = "{:.3f}", note: str = ""
    ) -> bool:
        """Print ``label: median (min–max)  target <= limit: PASS|MISS``; True when met."""
        met = statistics.median(values) <= limit
        line = f"{label}: {spread(values, fmt)}  target <= {limit:g}: {'PASS' if met else 'MISS'}"
        self.lines.append(line)
        print(f"  {line}  {note}".rstrip())
        return met

    def summary(self) -> None:
        """Every target line of the run again, with how many were met."""
        met = sum(line.endswith("PASS") for line in self.lines)
        print(f"\ntargets: {met} of {len(self.lines)} met")
        for line in self.lines:
            print(f"  {line}")
